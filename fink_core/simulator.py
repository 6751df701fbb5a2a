"""Alert simulator: replay real alert files into a Kafka topic at a chosen rate.

In the spirit of fink-alert-simulator: each Avro alert file (one alert packet, as the
survey sends it) becomes one Kafka message, keyed by the file's stem (ZTF ``candid``
or LSST ``diaSourceId``), in file-name order, optionally looped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


def alert_files(paths: Iterable[str | Path]) -> list[Path]:
    """Avro alert files under ``paths`` (files or folders, searched recursively), sorted."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.avro") if p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no alert file or folder at {path}")
    return found


def payloads(paths: Iterable[str | Path]) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(key, value)`` for each alert file: key is the file stem."""
    for path in alert_files(paths):
        yield path.stem.encode(), path.read_bytes()


@dataclass
class SendReport:
    """What :func:`send` did."""

    sent: int
    delivered: int
    failed: int
    seconds: float

    @property
    def rate(self) -> float:
        """Achieved messages per second."""
        return self.sent / self.seconds if self.seconds > 0 else float("inf")


def send(paths: Iterable[str | Path], topic: str, bootstrap: str, rate: float | None = None,
         repeat: int = 1, extra_config: dict[str, str] | None = None) -> SendReport:
    """Produce the alert files to ``topic`` at about ``rate`` messages per second.

    Parameters
    ----------
    paths : iterable of path-like
        Alert files or folders.
    topic : str
        Destination Kafka topic.
    bootstrap : str
        Kafka bootstrap servers.
    rate : float, optional
        Target messages per second (``None``: as fast as possible).
    repeat : int
        Number of passes over the files.
    extra_config : dict, optional
        More confluent-kafka producer settings (security, for instance).

    Returns
    -------
    SendReport
    """
    from confluent_kafka import Producer  # heavy (librdkafka): only when sending

    conf = {"bootstrap.servers": bootstrap, "enable.idempotence": True,
            "linger.ms": 5, "compression.type": "lz4", "message.max.bytes": 16_000_000}
    conf.update(extra_config or {})
    producer = Producer(conf)
    items = list(payloads(paths))
    counts = {"ok": 0, "err": 0}

    def on_delivery(err: object, msg: object) -> None:
        if err is None:
            counts["ok"] += 1
        else:
            counts["err"] += 1
            log.error("delivery failed: %s", err)

    start = time.monotonic()
    sent = 0
    for _ in range(repeat):
        for key, value in items:
            if rate:
                due = start + sent / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            while True:
                try:
                    producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
            sent += 1
    producer.flush(60)
    return SendReport(sent=sent, delivered=counts["ok"], failed=counts["err"],
                      seconds=time.monotonic() - start)
