"""``GET /api/v1/health``: the store, the bus, the VTP broker and the lag of ``run``.

Each check is bounded by ``serve.health_timeout_s`` and reports ``ok`` or ``down``
with a short reason (never a credential: connection errors are reduced to their
class and first line, and the database URL is never shown).

The lag of ``mm-broker run`` is read from its streaming checkpoint
(``<alerts.checkpoint_uri>/<serve.run_checkpoint>/coincidence``): the Kafka offsets
of the newest committed micro-batch against the topics' high watermarks, and the
age of that commit.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from fink_core.archive_files import local_path
from mm_broker.core.config import Settings
from mm_broker.core.kafka import client_config


def _reason(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:160]}"


def check_postgres(engine: Engine) -> dict[str, Any]:
    """``SELECT 1`` on the store."""
    t0 = time.monotonic()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return {"status": "down", "reason": type(exc).__name__}
    return {"status": "ok", "ms": round((time.monotonic() - t0) * 1e3, 1)}


def check_comet(settings: Settings, timeout_s: float) -> dict[str, Any]:
    """A TCP connection to the VTP broker's receiving port."""
    c = settings.comet
    t0 = time.monotonic()
    try:
        with socket.create_connection((c.host, c.receive_port), timeout=timeout_s):
            pass
    except OSError as exc:
        return {"status": "down", "reason": type(exc).__name__}
    return {"status": "ok", "ms": round((time.monotonic() - t0) * 1e3, 1)}


def _committed_offsets(folder: Path) -> tuple[dict[str, dict[str, int]], float] | None:
    """Offsets of the newest committed batch of a Spark checkpoint, and its mtime."""
    commits = folder / "commits"
    if not commits.is_dir():
        return None
    done = sorted((int(p.name) for p in commits.iterdir() if p.name.isdigit()), reverse=True)
    for batch in done:
        path = folder / "offsets" / str(batch)
        if path.is_file():
            lines = path.read_text().splitlines()
            offsets: dict[str, dict[str, int]] = {}
            for line in lines[2:]:  # "v1", the batch metadata, then one line per source
                if line.strip().startswith("{"):
                    for topic, parts in json.loads(line).items():
                        offsets[topic] = {str(k): int(v) for k, v in parts.items()}
            return offsets, (commits / str(batch)).stat().st_mtime
    return None


def check_kafka_and_lag(settings: Settings, timeout_s: float,
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bus (metadata of the cluster) and ``run``'s lag on the alert topics."""
    t0 = time.monotonic()
    folder = local_path(settings.checkpoint_uri()) / settings.serve.run_checkpoint / "coincidence"
    try:
        consumer = Consumer({**client_config(settings), "group.id": "mm-broker-serve-health",
                             "enable.auto.commit": False})
    except KafkaException as exc:
        return {"status": "down", "reason": _reason(exc)}, {"status": "unknown"}
    try:
        meta = consumer.list_topics(timeout=timeout_s)
        kafka = {"status": "ok", "brokers": len(meta.brokers),
                 "ms": round((time.monotonic() - t0) * 1e3, 1)}
        committed = _committed_offsets(folder) if folder.is_dir() else None
        if committed is None:
            return kafka, {"status": "not running", "reason": "no committed micro-batch of "
                           "mm-broker run in its checkpoint"}
        offsets, mtime = committed
        lag = 0
        for topic, parts in offsets.items():
            for part, offset in parts.items():
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, int(part)),
                                                         timeout=timeout_s)
                lag += max(0, int(high) - offset)
        return kafka, {"status": "ok", "lag_alerts": lag,
                       "last_batch_age_s": round(time.time() - mtime, 1),
                       "topics": sorted(offsets)}
    except KafkaException as exc:
        return {"status": "down", "reason": _reason(exc)}, {"status": "unknown"}
    finally:
        consumer.close()


def health(settings: Settings, engine: Engine) -> dict[str, Any]:
    """Every check; ``status`` is ``ok`` when the store, Kafka and Comet answer."""
    timeout = settings.serve.health_timeout_s
    checks = {"postgres": check_postgres(engine)}
    checks["kafka"], checks["run"] = check_kafka_and_lag(settings, timeout)
    checks["comet"] = check_comet(settings, timeout)
    ok = all(checks[k]["status"] == "ok" for k in ("postgres", "kafka", "comet"))
    return {"status": "ok" if ok else "degraded", **checks}
