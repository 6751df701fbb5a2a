"""Counterpart and retraction records onto Kafka, Avro-encoded with the schema files.

Topics (``mm`` is ``publish.topic_prefix``)::

    mm.counterparts.gw | .grb | .nu | .x     counterpart candidates of science events
    mm.retractions                           retracted science events
    mm.test.counterparts.<messenger>         the same for role != "observation"
    mm.test.retractions
    mm.coincidences | mm.test.coincidences   notice x notice coincidences (coincidence-v1)
    mm.gcn.counterparts | mm.test.gcn.counterparts
                                             counterparts as GCN-style JSON (gcn_json)

A record whose ``role`` is not ``observation`` never reaches a science topic.

Each message: key ``event_id|region_version|alert_id`` (retractions:
``event_id|notice_version|retraction``), value the Avro binary encoding
(:func:`fastavro.schemaless_writer`) of the record with the schema file, header
``schema`` naming that file (``mm_broker.counterpart/1``). The producer is idempotent
(``enable.idempotence``, ``acks=all``): a broker restart neither loses nor doubles a
record. As in confluent-kafka's examples, every ``produce`` has a delivery callback
and is followed by ``poll(0)``, and :meth:`CounterpartProducer.close` flushes.

Examples
--------
>>> topics = Topics("mm")
>>> topics.counterparts("GW", "observation"), topics.counterparts("GRB", "test")
('mm.counterparts.gw', 'mm.test.counterparts.grb')
>>> topics.retractions("observation"), topics.retractions("utility")
('mm.retractions', 'mm.test.retractions')
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from mm_broker.core.config import Settings
from mm_broker.core.errors import PublishError
from publishers import records as rec
from publishers import schema as sch
from publishers.config import PublishConfig

log = logging.getLogger("mm_broker.publish")

MESSENGERS = ("GW", "GRB", "NU", "X", "FRB")

#: ``schema`` header of our GCN-style JSON messages (``publishers/schemas/``).
GCN_SCHEMA_HEADER = b"mm_broker.gcn-counterpart/1"


@dataclass(frozen=True)
class Topics:
    """Topic names under one prefix.

    Parameters
    ----------
    prefix : str
        ``publish.topic_prefix`` (``"mm"`` in production; unique per test run).
    """

    prefix: str = "mm"

    def _base(self, role: str) -> str:
        return self.prefix if role == "observation" else f"{self.prefix}.test"

    def counterparts(self, messenger: str, role: str) -> str:
        """Topic of counterparts of a ``messenger`` event with ``role``."""
        if messenger not in MESSENGERS:
            raise ValueError(f"unknown messenger {messenger!r}")
        return f"{self._base(role)}.counterparts.{messenger.lower()}"

    def retractions(self, role: str) -> str:
        """Topic of retractions of an event with ``role``."""
        return f"{self._base(role)}.retractions"

    def coincidences(self, role: str) -> str:
        """Topic of notice × notice coincidences of events with ``role``."""
        return f"{self._base(role)}.coincidences"

    def gcn_counterparts(self, role: str) -> str:
        """Topic of our counterparts in GCN's JSON form (``publishers.gcn_json``)."""
        return f"{self._base(role)}.gcn.counterparts"

    def all(self) -> list[str]:
        """Every topic we publish to (science and test)."""
        out = []
        for role in ("observation", "test"):
            out += [self.counterparts(m, role) for m in MESSENGERS]
            out.append(self.retractions(role))
            out += [self.coincidences(role), self.gcn_counterparts(role)]
        return out


def coincidence_key(record: Mapping[str, Any]) -> str:
    """Kafka key of a coincidence record:
    ``event_id|region_version|external_event_id|external_region_version``."""
    return (f"{record['event_id']}|{record['region_version']}|{record['external_event_id']}"
            f"|{record['external_region_version']}")


@dataclass
class PublishReport:
    """What happened to one batch.

    Attributes
    ----------
    sent : int
        Records that passed validation and were handed to the producer.
    refused : list of Refusal
        ``(key, reason)`` of records refused before sending (invalid).
    delivered : int
        Records of this batch acknowledged by the brokers during the call.
    failed : list of Refusal
        ``(key, reason)`` of records Kafka reported as not delivered.
    topics : dict
        Records sent per topic.
    """

    sent: int = 0
    refused: list[rec.Refusal] = field(default_factory=list)
    delivered: int = 0
    failed: list[rec.Refusal] = field(default_factory=list)
    topics: dict[str, int] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        """Records sent whose delivery was not yet reported when the call returned."""
        return self.sent - self.delivered - len(self.failed)


def ensure_topics(admin: AdminClient, names: Iterable[str], partitions: int,
                  replication_factor: int, retention_ms: int,
                  timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Existing topics are left as they are (idempotent).

    Raises
    ------
    PublishError
        If a topic can neither be created nor found to exist.
    """
    new = [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor,
                    config={"retention.ms": str(retention_ms)}) for name in names]
    futures = admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
    created = []
    for name, fut in futures.items():
        try:
            fut.result(timeout)
            created.append(name)
        except KafkaException as exc:
            err = exc.args[0]
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise PublishError(f"cannot create topic {name}: {err}") from exc
    if created:
        _wait_visible(admin, created, timeout)
        log.info("created topics %s", ", ".join(sorted(created)))
    return created


def _wait_visible(admin: AdminClient, names: list[str], timeout: float) -> None:
    """Wait until the broker's metadata lists the topics just created.

    A creation is acknowledged by the controller before every broker's metadata cache
    has it (KRaft): a client that lists or describes the topic at once (a test, the
    portal's health check, a consumer assigned by name) could find nothing. Created
    means visible here.
    """
    deadline = time.monotonic() + timeout
    missing = set(names)
    while missing:
        meta = admin.list_topics(timeout=max(1.0, deadline - time.monotonic()))
        missing = {n for n in missing if n not in meta.topics or meta.topics[n].error}
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise PublishError(f"topics created but not visible after {timeout:.0f} s: "
                               f"{', '.join(sorted(missing))}")
        time.sleep(0.1)


class CounterpartProducer:
    """Publish counterpart and retraction records to Kafka.

    Parameters
    ----------
    config : PublishConfig
        Connection, topics and schema versions (:meth:`PublishConfig.from_settings`).

    Examples
    --------
    ::

        with CounterpartProducer.from_settings(settings) as producer:
            report = producer.publish(records)
            for key, reason in report.refused:
                log.warning("refused %s: %s", key, reason)
    """

    def __init__(self, config: PublishConfig) -> None:
        self.config = config
        self.topics = Topics(config.topic_prefix)
        self.counterpart_schema = sch.load("counterpart", config.counterpart_schema_version)
        self.retraction_schema = sch.load("retraction", config.retraction_schema_version)
        self.coincidence_schema = sch.load("coincidence", 1)
        self._producer = Producer({
            **config.kafka,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "compression.type": "lz4",
            "message.timeout.ms": config.delivery_timeout_ms,
            "client.id": "mm-broker-publisher",
        })
        self._topics_ready = False
        self._fatal: str | None = None
        #: Records acknowledged by Kafka since the producer was made.
        self.delivered = 0
        #: Records Kafka reported as lost since the producer was made.
        self.failed: list[rec.Refusal] = []

    @classmethod
    def from_settings(cls, settings: Settings, topic_prefix: str | None = None
                      ) -> CounterpartProducer:
        """A producer configured from mm_broker's settings (optionally another prefix)."""
        config = PublishConfig.from_settings(settings)
        if topic_prefix is not None:
            config = config.with_prefix(topic_prefix)
        return cls(config)

    # -- topics ----------------------------------------------------------- #

    def ensure_topics(self, timeout: float = 30.0) -> list[str]:
        """Create our topics (partitions, replication, retention from the configuration)
        where they do not exist; return those created."""
        admin = AdminClient(dict(self.config.kafka))
        created = ensure_topics(admin, self.topics.all(), self.config.partitions,
                                self.config.replication_factor, self.config.retention_ms,
                                timeout)
        self._topics_ready = True
        return created

    # -- publishing ------------------------------------------------------- #

    def publish(self, records: Iterable[Mapping[str, Any]], *, wait: bool = True,
                timeout: float | None = None) -> PublishReport:
        """Validate and send counterpart records; invalid ones are refused, the rest go.

        Parameters
        ----------
        records : iterable of mapping
            Counterpart records (fields of ``counterpart-vN.avsc``).
        wait : bool
            Flush before returning, so that :attr:`PublishReport.delivered` and
            ``failed`` cover the whole batch. The streaming service passes ``False``
            and relies on :meth:`close`.
        timeout : float, optional
            Seconds to wait when ``wait``; default ``delivery_timeout_ms``.

        Returns
        -------
        PublishReport
        """
        return self._publish(records, "counterpart", wait, timeout)

    def publish_retractions(self, records: Iterable[Mapping[str, Any]], *, wait: bool = True,
                            timeout: float | None = None) -> PublishReport:
        """Validate and send retraction records (see :meth:`publish`)."""
        return self._publish(records, "retraction", wait, timeout)

    def publish_coincidences(self, records: Iterable[Mapping[str, Any]], *, wait: bool = True,
                             timeout: float | None = None) -> PublishReport:
        """Validate and send notice × notice coincidence records (see :meth:`publish`)."""
        return self._publish(records, "coincidence", wait, timeout)

    def publish_gcn(self, messages: Iterable[tuple[str, str, bytes]], *, wait: bool = True,
                    timeout: float | None = None) -> PublishReport:
        """Send GCN-style JSON messages ``(role, key, value)`` (already validated by
        :func:`publishers.gcn_json.encode`) to ``gcn.counterparts``, header ``schema``
        naming our JSON schema file."""
        if self._fatal is not None:
            raise PublishError(f"producer stopped after a fatal error: {self._fatal}")
        if not self._topics_ready:
            self.ensure_topics()
        header: list[tuple[str, str | bytes | None]] = [(sch.HEADER, GCN_SCHEMA_HEADER)]
        report = PublishReport()
        for role, key, value in messages:
            topic = self.topics.gcn_counterparts(role)
            self._produce(topic, key, value, header, report)
            report.sent += 1
            report.topics[topic] = report.topics.get(topic, 0) + 1
        if wait:
            self.flush(self.config.delivery_timeout_ms / 1000 if timeout is None else timeout)
        return report

    def _publish(self, records: Iterable[Mapping[str, Any]], kind: str, wait: bool,
                 timeout: float | None) -> PublishReport:
        if self._fatal is not None:
            raise PublishError(f"producer stopped after a fatal error: {self._fatal}")
        if not self._topics_ready:
            self.ensure_topics()
        schema = {"counterpart": self.counterpart_schema, "retraction": self.retraction_schema,
                  "coincidence": self.coincidence_schema}[kind]
        header: list[tuple[str, str | bytes | None]] = [(sch.HEADER, schema.name.encode())]
        report = PublishReport()
        for i, raw in enumerate(records):
            try:
                record = rec.validate({**self.config.provenance, **raw}
                                      if isinstance(raw, Mapping) else raw, schema)
            except rec.InvalidRecord as exc:
                key = rec.key_or_none(raw, kind) if kind != "coincidence" else None
                report.refused.append(rec.Refusal(key, f"record #{i}: {exc}"))
                log.warning("refused %s record %s: %s", kind, key, exc)
                continue
            if kind == "counterpart":
                key = rec.counterpart_key(record)
                topic = self.topics.counterparts(record["messenger"], record["role"])
            elif kind == "coincidence":
                key = coincidence_key(record)
                topic = self.topics.coincidences(record["role"])
            else:
                key = rec.retraction_key(record)
                topic = self.topics.retractions(record["role"])
            try:
                value = schema.encode(record)
            except (ValueError, TypeError, OverflowError, UnicodeError) as exc:
                report.refused.append(rec.Refusal(key, f"record #{i}: cannot be encoded "
                                                       f"with {schema.name}: {exc}"))
                log.warning("refused %s record %s: %s", kind, key, exc)
                continue
            self._produce(topic, key, value, header, report)
            report.sent += 1
            report.topics[topic] = report.topics.get(topic, 0) + 1
        if wait:
            self.flush(self.config.delivery_timeout_ms / 1000 if timeout is None else timeout)
        return report

    def _produce(self, topic: str, key: str, value: bytes,
                 headers: list[tuple[str, str | bytes | None]],
                 report: PublishReport) -> None:
        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                report.delivered += 1
                self.delivered += 1
                return
            if err.fatal():
                self._fatal = str(err)
            lost = rec.Refusal(key, f"not delivered to {topic}: {err}")
            report.failed.append(lost)
            self.failed.append(lost)
            log.error("record %s not delivered to %s: %s", key, topic, err)

        while True:
            try:
                self._producer.produce(topic, key=key.encode(), value=value, headers=headers,
                                       on_delivery=on_delivery)
                break
            except BufferError:
                # Local queue full: serve delivery reports until there is room.
                self._producer.poll(0.5)
        self._producer.poll(0)

    def flush(self, timeout: float = 60.0) -> int:
        """Wait for outstanding deliveries; return how many are still pending."""
        return int(self._producer.flush(timeout))

    def close(self, timeout: float | None = None) -> int:
        """Flush (``delivery_timeout_ms`` by default); return records still undelivered."""
        remaining = self.flush(self.config.delivery_timeout_ms / 1000
                               if timeout is None else timeout)
        if remaining:
            log.error("%d records still undelivered at close", remaining)
        return remaining

    def __enter__(self) -> CounterpartProducer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def delete_topics(config: PublishConfig, names: Iterable[str], timeout: float = 30.0) -> None:
    """Delete topics (test and benchmark clean-up); missing topics are ignored."""
    admin = AdminClient(dict(config.kafka))
    futures = admin.delete_topics(list(names), operation_timeout=timeout,
                                  request_timeout=timeout)
    for name, fut in futures.items():
        try:
            fut.result(timeout)
        except KafkaException as exc:
            err = exc.args[0]
            if isinstance(err, KafkaError) and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                continue
            raise PublishError(f"cannot delete topic {name}: {err}") from exc
