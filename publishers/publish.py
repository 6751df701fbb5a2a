"""One entry point for the ``run`` and ``replay`` commands: Kafka, VOEvents, Comet.

The parts are made elsewhere and handed in (Comet's ``broker.py`` style);
:meth:`Publisher.from_settings` assembles the usual set. Each part is optional:
the replay typically writes VOEvents to ``DIR/voevents/`` without broadcasting, the
streaming service publishes to Kafka and broadcasts through the local Comet.

Examples
--------
Streaming service (``mm-broker run``)::

    pub = Publisher.from_settings(settings)
    report = pub.counterparts(batch_records, authored=datetime.now(UTC), wait=False)
    ...
    pub.close()

Replay (``mm-broker replay --out DIR``), deterministic::

    pub = Publisher.from_settings(settings, kafka=False, broadcast=False,
                                  voevent_dir=out / "voevents")
    pub.counterparts(records_at_t, authored=t)      # t: the replay clock
    pub.retraction(retraction_record, authored=t)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from mm_broker.core.config import Settings
from publishers import records as rec
from publishers import schema as sch
from publishers.config import PublishConfig
from publishers.kafka import CounterpartProducer, PublishReport
from publishers.voevent import VOEventAuthor, write_voevents
from publishers.voevent_build import VOEventDoc
from publishers.voevent_check import InvalidVOEvent
from publishers.vtp import Submission, VTPClient

log = logging.getLogger("mm_broker.publish")


@dataclass
class PublicationReport:
    """What one call of :class:`Publisher` did.

    Attributes
    ----------
    kafka : PublishReport or None
        The Kafka outcome (``None`` when no producer was handed in).
    voevents : list of VOEventDoc
        VOEvents authored.
    refused_records : list of Refusal
        Invalid records, left out of the VOEvents (and refused by Kafka).
    refused_voevents : list of Refusal
        ``(event_id|region_version, reason)`` of VOEvents that could not be made.
    submissions : list of Submission
        One per VOEvent broadcast (empty without a VTP client).
    written : list of Path
        VOEvent files written.
    """

    kafka: PublishReport | None = None
    voevents: list[VOEventDoc] = field(default_factory=list)
    refused_records: list[rec.Refusal] = field(default_factory=list)
    refused_voevents: list[rec.Refusal] = field(default_factory=list)
    submissions: list[Submission] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)


class Publisher:
    """Publish counterpart records and retractions through the parts handed in.

    Parameters
    ----------
    author : VOEventAuthor
        Authors our VOEvents (and remembers what was issued per event).
    producer : CounterpartProducer, optional
        Kafka producer; without it nothing goes to Kafka.
    vtp : VTPClient, optional
        Broker to broadcast VOEvents to; without it nothing is broadcast.
    voevent_dir : path, optional
        Folder where every VOEvent authored is also written.
    """

    def __init__(self, author: VOEventAuthor, producer: CounterpartProducer | None = None,
                 vtp: VTPClient | None = None, voevent_dir: str | Path | None = None) -> None:
        self.author = author
        self.producer = producer
        self.vtp = vtp
        self.voevent_dir = None if voevent_dir is None else Path(voevent_dir)

    @classmethod
    def from_settings(cls, settings: Settings, *, kafka: bool = True, broadcast: bool = True,
                      voevent_dir: str | Path | None = None,
                      topic_prefix: str | None = None) -> Publisher:
        """The usual assembly: producer and VTP client from ``settings``.

        Parameters
        ----------
        settings : Settings
        kafka : bool
            Make a Kafka producer.
        broadcast : bool
            Make a VTP client for the configured Comet.
        voevent_dir : path, optional
        topic_prefix : str, optional
            Override ``publish.topic_prefix``.
        """
        config = PublishConfig.from_settings(settings)
        if topic_prefix is not None:
            config = config.with_prefix(topic_prefix)
        return cls(VOEventAuthor.from_config(config),
                   CounterpartProducer(config) if kafka else None,
                   VTPClient.from_config(config) if broadcast else None,
                   voevent_dir)

    def _voevents(self, docs: list[VOEventDoc], report: PublicationReport) -> None:
        report.voevents += docs
        if self.voevent_dir is not None and docs:
            report.written += write_voevents(docs, self.voevent_dir)
        if self.vtp is not None and docs:
            report.submissions += self.vtp.broadcast(docs)

    def counterparts(self, records: Iterable[Mapping[str, Any]], authored: datetime, *,
                     wait: bool = True) -> PublicationReport:
        """Publish counterpart records: all to Kafka, one VOEvent per event version
        with candidates.

        Parameters
        ----------
        records : iterable of mapping
            Counterpart records (candidates and withdrawn ones).
        authored : datetime
            Authoring date of the VOEvents (the replay's clock, or now).
        wait : bool
            Wait for Kafka deliveries (see :meth:`CounterpartProducer.publish`).
        """
        batch = list(records)
        report = PublicationReport()
        if self.producer is not None:
            report.kafka = self.producer.publish(batch, wait=wait)
        schema = sch.load("counterpart")
        valid = []
        for i, r in enumerate(batch):
            try:
                valid.append(rec.validate(r, schema))
            except rec.InvalidRecord as exc:
                key = rec.key_or_none(r, "counterpart")
                report.refused_records.append(rec.Refusal(key, f"record #{i}: {exc}"))
                log.warning("record %s left out of the VOEvents: %s", key, exc)
        groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for r in valid:
            groups.setdefault((r["event_id"], r["region_version"]), []).append(r)
        docs = []
        for (event_id, region_version), group in groups.items():
            try:
                docs += self.author.counterparts(group, authored)
            except InvalidVOEvent as exc:
                key = f"{event_id}|{region_version}"
                report.refused_voevents.append(rec.Refusal(key, str(exc)))
                log.error("no VOEvent for %s: %s", key, exc)
        self._voevents(docs, report)
        return report

    def retraction(self, record: Mapping[str, Any], authored: datetime, *,
                   wait: bool = True) -> PublicationReport:
        """Publish a retraction: to Kafka, and as a VOEvent if we announced the event."""
        report = PublicationReport()
        if self.producer is not None:
            report.kafka = self.producer.publish_retractions([record], wait=wait)
        try:
            doc = self.author.retraction(record, authored)
        except InvalidVOEvent as exc:
            key = rec.key_or_none(record, "retraction")
            report.refused_voevents.append(rec.Refusal(key, str(exc)))
            log.error("no retraction VOEvent for %s: %s", key, exc)
            return report
        self._voevents([] if doc is None else [doc], report)
        return report

    def close(self) -> None:
        """Flush the Kafka producer."""
        if self.producer is not None:
            self.producer.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
