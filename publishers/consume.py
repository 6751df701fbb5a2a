"""Read counterparts as a user would: ``mm-broker consume --topic T``.

Messages are decoded with the schema file named in their ``schema`` header
(``mm_broker.counterpart/1`` → ``publishers/schemas/counterpart-v1.avsc``), so a
reader never guesses the version. The consumer assigns every partition itself
(no consumer group, nothing committed): it reads from the beginning, or from the
first message published at or after ``--since``, up to the end of the topic as it
was when reading started (``--follow`` keeps reading).

Examples
--------
Command line::

    mm-broker consume --topic mm.counterparts.gw --event LVK:S240115ak --table
    python -m publishers.consume --topic mm.test.counterparts.grb --since 2026-11-26T00:00Z

Python::

    for item in read("mm.counterparts.gw", "127.0.0.1:59092"):
        print(item.key, item.record["p_chance"])
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from mm_broker.core import config as configmod
from mm_broker.core.errors import ConsumeError, TopicNotFound
from mm_broker.core.kafka import client_config as kafka_client_config
from publishers import schema as sch

log = logging.getLogger("mm_broker.consume")

#: Columns of ``--table`` output per record kind: (field, width).
TABLE_COLUMNS: dict[str, list[tuple[str, int]]] = {
    "counterpart": [("event_id", 22), ("rv", 3), ("rank", 4), ("status", 9), ("object_id", 14),
                    ("alert_id", 20), ("alert_time", 27), ("ra", 10), ("dec", 10),
                    ("delta_t_s", 12), ("credible_level", 14), ("p_chance", 10)],
    "retraction": [("event_id", 22), ("notice_version", 14), ("region_version", 14),
                   ("retracted_at", 27), ("withdrawn", 9), ("reason", 30)],
}


@dataclass(frozen=True)
class Consumed:
    """One decoded message.

    Attributes
    ----------
    topic : str
    partition, offset : int
    timestamp_ms : int
        Kafka timestamp (publication time), milliseconds since the epoch.
    key : str or None
    schema : str
        Schema name from the header, e.g. ``"mm_broker.counterpart/1"``.
    record : dict
        The decoded record.
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    schema: str
    record: dict[str, Any]

    @property
    def kind(self) -> str:
        """``"counterpart"`` or ``"retraction"``."""
        return sch.by_name(self.schema).kind


def parse_since(value: str | datetime) -> int:
    """Milliseconds since the epoch of an ISO 8601 time (UTC unless it says otherwise).

    Examples
    --------
    >>> parse_since("1970-01-01T00:00:01Z")
    1000
    """
    t = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(round(t.timestamp() * 1000))


Headers = Sequence[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None] | None


def decode(value: bytes, headers: Headers) -> tuple[str, dict[str, Any]]:
    """Decode a message value with the schema its header names.

    Returns
    -------
    (schema name, record)

    Raises
    ------
    ConsumeError
        If the header is missing or names no schema file, or the bytes do not decode.
    """
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    named = [v for k, v in pairs if k == sch.HEADER and v is not None]
    if not named:
        raise ConsumeError(f"message has no {sch.HEADER!r} header")
    last = named[-1]
    name = last.decode() if isinstance(last, bytes) else last
    try:
        schema = sch.by_name(name)
    except sch.UnknownSchema as exc:
        raise ConsumeError(str(exc)) from exc
    try:
        return name, schema.decode(value)
    except (EOFError, ValueError, TypeError, IndexError) as exc:
        raise ConsumeError(f"cannot decode with {name}: {exc}") from exc


def read(topic: str, bootstrap: str, *, event: str | None = None,
         since: str | datetime | None = None, max_messages: int | None = None,
         timeout: float | None = 10.0, follow: bool = False,
         client_config: Mapping[str, Any] | None = None) -> Iterator[Consumed]:
    """Yield the decoded messages of ``topic``.

    Parameters
    ----------
    topic : str
    bootstrap : str
        Kafka bootstrap servers.
    event : str, optional
        Only this ``event_id``.
    since : str or datetime, optional
        Only messages published at or after this time (ISO 8601; UTC if naive).
    max_messages : int, optional
        Stop after yielding this many.
    timeout : float or None
        Stop after this many seconds without a message (``None``: never, with
        ``follow``).
    follow : bool
        Keep reading past the end of the topic.
    client_config : mapping, optional
        Extra confluent-kafka settings (security, SASL).

    Raises
    ------
    ConsumeError
        If the topic does not exist or a message cannot be decoded.
    """
    conf: dict[str, Any] = {**(client_config or {}), "bootstrap.servers": bootstrap,
                            "group.id": f"mm-broker-consume-{uuid.uuid4().hex}",
                            "enable.auto.commit": False, "enable.auto.offset.store": False,
                            "enable.partition.eof": True, "auto.offset.reset": "earliest"}
    since_ms = None if since is None else parse_since(since)
    meta_timeout = 10.0 if timeout is None else max(timeout, 1.0)
    consumer = Consumer(conf)
    try:
        md = consumer.list_topics(topic, timeout=meta_timeout)
        tmd = md.topics.get(topic)
        if tmd is None or tmd.error is not None or not tmd.partitions:
            why = tmd.error if tmd is not None and tmd.error is not None else "no partitions"
            raise TopicNotFound(f"topic {topic!r} not found ({why})")
        parts = sorted(tmd.partitions)
        marks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p),
                                                   timeout=meta_timeout) for p in parts}
        if since_ms is None:
            starts = {p: marks[p][0] for p in parts}
        else:
            found = consumer.offsets_for_times([TopicPartition(topic, p, since_ms)
                                                for p in parts], timeout=meta_timeout)
            # An offset < 0 means: no message at or after `since` in that partition.
            starts = {tp.partition: tp.offset if tp.offset >= 0 else marks[tp.partition][1]
                      for tp in found}
        todo = {p for p in parts if starts[p] < marks[p][1]}
        if not follow and not todo:
            return
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in parts])
        yielded = 0
        idle_since = time.monotonic()
        prefix = None if event is None else f"{event}|"
        while follow or todo:
            msg = consumer.poll(0.2)
            if msg is None:
                if timeout is not None and time.monotonic() - idle_since > timeout:
                    if todo and not follow:
                        log.warning("%s: stopped after %.0f s without messages before "
                                    "reaching the end of partitions %s", topic, timeout,
                                    sorted(todo))
                    return
                continue
            idle_since = time.monotonic()
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    todo.discard(msg.partition())
                    continue
                raise ConsumeError(f"{topic}: {err}")
            partition, offset = msg.partition(), msg.offset()
            if partition is None or offset is None:
                raise ConsumeError(f"{topic}: message without partition or offset")
            if offset >= marks[partition][1] - 1:
                todo.discard(partition)
            _, ts = msg.timestamp()
            if since_ms is not None and ts < since_ms:
                continue
            raw_key = msg.key()
            key = None if raw_key is None else raw_key.decode()
            if prefix is not None and key is not None and not key.startswith(prefix):
                continue
            value = msg.value()
            if value is None:
                continue  # a tombstone: nothing to show
            try:
                name, record = decode(value, msg.headers())
            except ConsumeError as exc:
                raise ConsumeError(f"{topic}[{partition}]@{offset}: {exc}") from exc
            if event is not None and record.get("event_id") != event:
                continue
            yield Consumed(topic, partition, offset, ts, key, name, record)
            yielded += 1
            if max_messages is not None and yielded >= max_messages:
                return
    except KafkaException as exc:
        raise ConsumeError(f"{topic}: {exc}") from exc
    finally:
        consumer.close()


def _cell(record: Mapping[str, Any], name: str) -> str:
    if name == "rv":
        value = record.get("region_version")
    elif name == "withdrawn":
        value = len(record.get("withdrawn_alert_ids") or [])
    else:
        value = record.get(name)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}" if name not in ("ra", "dec") else f"{value:.5f}"
    return str(value)


def format_table_header(kind: str) -> str:
    """Header line of ``--table`` output for ``kind``."""
    return " ".join(name.ljust(width) for name, width in TABLE_COLUMNS[kind]).rstrip()


def format_table_row(record: Mapping[str, Any], kind: str) -> str:
    """One ``--table`` line."""
    return " ".join(_cell(record, name)[:width].ljust(width)
                    for name, width in TABLE_COLUMNS[kind]).rstrip()


def consume(topic: str, bootstrap: str, event: str | None = None,
            since: str | datetime | None = None, fmt: str = "json",
            max_messages: int | None = None, timeout: float | None = 10.0, *,
            follow: bool = False, out: TextIO | None = None,
            client_config: Mapping[str, Any] | None = None) -> int:
    """Print the records of ``topic`` as JSON lines or as a table; return the count.

    Parameters
    ----------
    topic, bootstrap, event, since, max_messages, timeout, follow, client_config
        As for :func:`read`.
    fmt : {"json", "table"}
        One JSON object per line, or fixed-width columns with a header.
    out : text stream, optional
        Where to write (standard output by default).
    """
    if fmt not in ("json", "table"):
        raise ValueError(f"fmt must be 'json' or 'table', not {fmt!r}")
    stream = sys.stdout if out is None else out
    n = 0
    header_for: str | None = None
    for item in read(topic, bootstrap, event=event, since=since, max_messages=max_messages,
                     timeout=timeout, follow=follow, client_config=client_config):
        if fmt == "json":
            stream.write(json.dumps(item.record) + "\n")
        else:
            kind = item.kind
            if header_for != kind:
                stream.write(format_table_header(kind) + "\n")
                header_for = kind
            stream.write(format_table_row(item.record, kind) + "\n")
        stream.flush()
        n += 1
    return n


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``consume`` to ``p`` (used by ``mm-broker consume``)."""
    p.add_argument("--topic", required=True, help="topic, e.g. mm.counterparts.gw")
    p.add_argument("--event", help="only this event_id")
    p.add_argument("--since", help="only records published at or after this ISO 8601 time")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", dest="fmt", action="store_const", const="json",
                     help="one JSON object per line (default)")
    fmt.add_argument("--table", dest="fmt", action="store_const", const="table",
                     help="fixed-width table")
    p.set_defaults(fmt="json")
    p.add_argument("--max", dest="max_messages", type=int, help="stop after N records")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="stop after this many seconds without a message (default 10)")
    p.add_argument("--follow", action="store_true", help="keep reading past the end")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: kafka.bootstrap)")
    return p


def parser() -> argparse.ArgumentParser:
    """Argument parser of the stand-alone ``python -m publishers.consume``."""
    p = argparse.ArgumentParser(prog="mm-broker consume",
                                description="Read mm_broker counterparts or retractions.")
    p.add_argument("--config", help="site configuration TOML (default: $MM_CONFIG)")
    return add_arguments(p)


def run_cli(args: argparse.Namespace, settings: configmod.Settings) -> int:
    """Run ``consume`` for parsed arguments (the ``mm-broker consume`` handler).

    Returns
    -------
    int
        Exit status: 0, or 1 if the topic cannot be read.
    """
    if args.since is not None:
        try:
            parse_since(args.since)
        except ValueError:
            print(f"mm-broker consume: --since {args.since!r} is not an ISO 8601 time",
                  file=sys.stderr)
            return 2
    client = kafka_client_config(settings)
    bootstrap = args.bootstrap or client.pop("bootstrap.servers")
    client.pop("bootstrap.servers", None)
    try:
        consume(args.topic, bootstrap, event=args.event, since=args.since, fmt=args.fmt,
                max_messages=args.max_messages, timeout=args.timeout, follow=args.follow,
                client_config=client)
    except ConsumeError as exc:
        print(f"mm-broker consume: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m publishers.consume``."""
    args = parser().parse_args(argv)
    try:
        settings = configmod.load(args.config)
    except configmod.ConfigError as exc:
        print(f"mm-broker consume: configuration error: {exc}", file=sys.stderr)
        return 2
    return run_cli(args, settings)


if __name__ == "__main__":
    sys.exit(main())
