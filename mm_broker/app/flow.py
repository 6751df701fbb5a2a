"""The counterpart flow: what happens to a counterpart, once, for ``run`` and ``replay``.

Both the streaming service (``run``, driven by micro-batches) and the replay (driven by
notice issue times and alert times) hand the engine's output to one
:class:`CounterpartFlow`, which

1. builds the records (:func:`mm_broker.app.records.counterpart_record`, and
   :func:`~mm_broker.app.records.retraction_record` for a retracted event);
2. writes every VOEvent to a folder when asked (the replay's ``DIR/voevents``);
3. with an outbox (the store), inserts the records first and publishes only those
   not stored before — Kafka (``mm.counterparts.*``, ``mm.retractions``) and VOEvents
   through Comet — then marks them delivered; records left unconfirmed by a crash are
   settled at the next start (:meth:`CounterpartFlow.settle`): looked for on their
   topic, sent only if missing. Nothing is lost, nothing doubles, across restarts
   and replays;
4. remembers the VOEvents it broadcast (``voevents``), so that their numbering and
   the citations of a retraction survive restarts;
5. publishes every counterpart record it sends to Kafka also as a GCN-style JSON
   message (``mm.gcn.counterparts``, :mod:`publishers.gcn_json`), under the same key,
   so the outbox that guards the Avro record guards it too;
6. publishes notice × notice coincidences (:meth:`CounterpartFlow.coincide`,
   ``mm.coincidences``) through their own outbox table.

A retraction always publishes one retraction record (and one retraction VOEvent),
whether or not the event had candidates; its candidates are withdrawn first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
from sqlalchemy import Engine

from coincidence.association import Association
from mm_broker.app import outbox
from mm_broker.app.records import counterpart_record
from mm_broker.core.errors import DeliveryError
from publishers import gcn_json
from publishers.consume import TopicNotFound, read
from publishers.kafka import Topics, coincidence_key
from publishers.publish import PublicationReport, Publisher
from publishers.records import counterpart_key, retraction_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionContext:
    """What a record of one region version cites: IVORNs and significance."""

    trigger_ivorn: str | None
    notice_ivorn: str | None
    significance: Mapping[str, Any] = field(default_factory=dict)


def _check(report: PublicationReport, what: str) -> None:
    if report.kafka is not None and (report.kafka.failed or report.kafka.pending):
        raise DeliveryError(f"{len(report.kafka.failed)} {what} not delivered, "
                            f"{report.kafka.pending} unconfirmed")


class CounterpartFlow:
    """Records, outbox, publishing, withdrawal and retraction, in one place.

    Parameters
    ----------
    provenance : mapping
        :meth:`~mm_broker.core.provenance.Provenance.record_fields` of the run.
    files : Publisher, optional
        Writes every VOEvent of the flow to its folder, keeps no outbox (the replay's
        deterministic ``DIR/voevents``).
    network : Publisher, optional
        Kafka and Comet; with ``store``, only what the store has not published before.
    store : Engine, optional
        The outbox. Without it the network gets every record (tests of the publishers).
    keep : bool
        Keep every record in :attr:`records` and :attr:`retractions` (the replay's
        output files; ``run`` keeps nothing).
    """

    def __init__(self, provenance: Mapping[str, Any], *, files: Publisher | None = None,
                 network: Publisher | None = None, store: Engine | None = None,
                 keep: bool = False) -> None:
        self.provenance = dict(provenance)
        self.files, self.network, self.store, self.keep = files, network, store, keep
        self.context: dict[tuple[str, int], VersionContext] = {}
        self.records: list[dict[str, Any]] = []
        self.retractions: list[dict[str, Any]] = []
        self.coincidences: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {"records": 0, "new_records": 0, "voevents": 0,
                                       "voevents_broadcast": 0, "kafka_sent": 0,
                                       "records_refused": 0, "retractions": 0,
                                       "new_retractions": 0, "coincidences": 0,
                                       "new_coincidences": 0, "gcn_sent": 0,
                                       "gcn_refused": 0}
        self._backlog: list[dict[str, Any]] = []
        if network is not None and store is not None:
            for event_id, region_version, ivorn in outbox.issued_voevents(store):
                network.author.remember(event_id, region_version, ivorn)

    # ------------------------------------------------------------------ records

    def note_version(self, event_id: str, region_version: int, context: VersionContext) -> None:
        """What the records of ``(event_id, region_version)`` cite."""
        self.context[(event_id, region_version)] = context

    def record(self, assoc: Association, extras: Mapping[str, Mapping[str, Any]]
               ) -> dict[str, Any]:
        """The published record of an association."""
        ctx = self.context.get((assoc.event_id, assoc.region_version),
                               VersionContext(None, None))
        return counterpart_record(assoc, extras, ctx.trigger_ivorn, ctx.notice_ivorn,
                                  ctx.significance, self.provenance)

    # ------------------------------------------------------------------ counterparts

    def emit(self, assocs: Sequence[Association], extras: Mapping[str, Mapping[str, Any]],
             at: datetime) -> int:
        """Publish the engine's associations (candidates and withdrawals).

        Returns
        -------
        int
            How many records were new to the network (all of them without an outbox).

        Raises
        ------
        DeliveryError, sqlalchemy.exc.OperationalError
            The broker or the store is away; the records are kept and sent first at
            the next call.
        """
        return self.emit_records([self.record(a, extras) for a in assocs], at)

    def emit_records(self, recs: list[dict[str, Any]], at: datetime) -> int:
        """:meth:`emit` for records already built (e.g. withdrawals read from the store)."""
        if self.keep:
            self.records.extend(recs)
        self.counts["records"] += len(recs)
        if self.files is not None and recs:
            report = self.files.counterparts(recs, authored=at)
            self.counts["voevents"] += len(report.voevents)
            self.counts["records_refused"] += len(report.refused_records)
        if self.network is None:
            return 0
        # Records of an earlier attempt that failed (store or broker away) go first:
        # retro-matches of a region already applied would otherwise be lost.
        pending, self._backlog = self._backlog + recs, []
        try:
            return self._send(pending, at)
        except Exception:
            self._backlog = pending
            raise

    def _send(self, recs: list[dict[str, Any]], at: datetime) -> int:
        assert self.network is not None
        fresh = recs if self.store is None else outbox.insert_counterparts(self.store, recs)
        if not fresh:
            return 0
        report = self.network.counterparts(fresh, authored=at, wait=True)
        self._account(report, at)
        _check(report, "counterparts")
        self._send_gcn(fresh, at)
        if self.store is not None:
            outbox.mark_counterparts(self.store, [outbox.key(r) for r in fresh])
        self.counts["new_records"] += len(fresh)
        return len(fresh)

    def _send_gcn(self, recs: list[dict[str, Any]], at: datetime) -> None:
        """The GCN-style JSON twins of counterpart records just sent to Kafka."""
        producer = self.network.producer if self.network is not None else None
        if producer is None or not recs:
            return
        messages = []
        for r in recs:
            try:
                messages.append(gcn_json.encode(r, at))
            except (jsonschema.ValidationError, KeyError, TypeError, ValueError) as exc:
                self.counts["gcn_refused"] += 1
                log.warning("no GCN-style message for %s: %s", counterpart_key(r),
                            str(exc).splitlines()[0])
        report = producer.publish_gcn(messages, wait=True)
        if report.failed or report.pending:
            raise DeliveryError(f"{len(report.failed)} GCN-style messages not delivered, "
                                f"{report.pending} unconfirmed")
        self.counts["gcn_sent"] += report.sent

    # ------------------------------------------------------------------ coincidences

    def coincide(self, records: Sequence[Mapping[str, Any]], at: datetime) -> int:
        """Publish notice × notice coincidence records (candidates and withdrawals) on
        ``mm.coincidences``, once with an outbox.

        Returns
        -------
        int
            How many were new to the network.
        """
        recs = [{**self._coinc_provenance(), **r} for r in records]
        if self.keep:
            self.coincidences.extend(recs)
        self.counts["coincidences"] += len(recs)
        if self.network is None or self.network.producer is None or not recs:
            return 0
        fresh = recs if self.store is None else outbox.insert_coincidences(self.store, recs)
        if not fresh:
            return 0
        self._send_coincidences(fresh)
        return len(fresh)

    def _coinc_provenance(self) -> dict[str, Any]:
        return {k: self.provenance[k] for k in ("mm_broker_version", "config_hash")
                if k in self.provenance}

    def _send_coincidences(self, recs: list[dict[str, Any]]) -> None:
        assert self.network is not None and self.network.producer is not None
        report = self.network.producer.publish_coincidences(recs, wait=True)
        if report.refused:
            log.error("coincidence records refused: %s", report.refused)
        if report.failed or report.pending:
            raise DeliveryError(f"{len(report.failed)} coincidences not delivered, "
                                f"{report.pending} unconfirmed")
        if self.store is not None:
            outbox.mark_coincidences(self.store, [outbox.coincidence_key(r) for r in recs])
        self.counts["new_coincidences"] += len(recs)

    def _account(self, report: PublicationReport, authored: datetime) -> None:
        self.counts["kafka_sent"] += report.kafka.sent if report.kafka else 0
        self.counts["voevents_broadcast"] += len(report.submissions)
        if self.store is not None and report.voevents:
            acked = [s.ivorn for s in report.submissions if s.status == "ack"]
            outbox.store_voevents(self.store, report.voevents, acked, authored=authored)

    # ------------------------------------------------------------------ retractions

    def withdrawals_from_store(self, event_id: str, known: Iterable[str]) -> list[dict[str, Any]]:
        """Withdrawn records for the event's live candidates in the store that are not
        in ``known`` (alert ids the engine withdrew itself): after a restart the engine
        no longer holds the candidates published before it."""
        if self.store is None:
            return []
        seen = set(known)
        return [{**r, "status": "withdrawn"} for r in outbox.live_candidates(self.store, event_id)
                if r["alert_id"] not in seen]

    def retract(self, record: dict[str, Any], at: datetime) -> bool:
        """Publish an event's retraction record and VOEvent (once, with an outbox).

        Returns
        -------
        bool
            Whether the network got it now (False: published before, or no network).
        """
        if self.keep:
            self.retractions.append(record)
        self.counts["retractions"] += 1
        if self.files is not None:
            self.counts["voevents"] += len(self.files.retraction(record, authored=at).voevents)
        if self.network is None:
            return False
        if self.store is not None and not outbox.insert_retraction(self.store, record):
            return False
        self._send_retraction(record, at)
        return True

    def _send_retraction(self, record: dict[str, Any], at: datetime) -> None:
        assert self.network is not None
        report = self.network.retraction(record, authored=at, wait=True)
        self._account(report, at)
        _check(report, "retractions")
        if self.store is not None:
            outbox.mark_retraction(self.store, str(record["event_id"]))
        self.counts["new_retractions"] += 1

    # ------------------------------------------------------------------ restarts

    def settle(self, on_topics: Callable[[set[str], datetime], set[str]] | None = None
               ) -> dict[str, int]:
        """Settle what a crash left between insert and confirmed delivery.

        Each unconfirmed record is looked for on its topic (from a little before its
        row was created): found ones are only marked, the others are published and
        marked. ``on_topics(topics, since)`` gives the keys on those topics since then
        (default: :meth:`keys_on_topics`).

        Returns
        -------
        dict
            ``pending``, ``found`` on the topic, ``republished`` (counterparts and
            retractions together).
        """
        if self.network is None or self.store is None:
            return {"pending": 0, "found": 0, "republished": 0}
        find = on_topics or self.keys_on_topics
        done = {"pending": 0, "found": 0, "republished": 0}
        rows = outbox.pending_counterparts(self.store)
        if rows:
            recs = [r for r, _ in rows]
            topics = {self._topics.counterparts(r["messenger"], r["role"]) for r in recs}
            present = find(topics, min(t for _, t in rows) - timedelta(minutes=5))
            missing = [r for r in recs if counterpart_key(r) not in present]
            if missing:
                now = datetime.now(UTC)
                report = self.network.counterparts(missing, authored=now, wait=True)
                self._account(report, now)
                _check(report, "counterparts")
                self._send_gcn(missing, datetime.now(UTC))
            outbox.mark_counterparts(self.store, [outbox.key(r) for r in recs])
            done = {"pending": len(recs), "found": len(recs) - len(missing),
                    "republished": len(missing)}
        coincs = outbox.pending_coincidences(self.store)
        if coincs and self.network.producer is not None:
            # the rows hold no creation time of their own here: look back a day
            present = find({self._topics.coincidences(r["role"]) for r in coincs},
                           datetime.now(UTC) - timedelta(days=1))
            missing = [r for r in coincs if coincidence_key(r) not in present]
            if missing:
                self._send_coincidences(missing)
            outbox.mark_coincidences(self.store, [outbox.coincidence_key(r) for r in coincs])
            done["pending"] += len(coincs)
            done["found"] += len(coincs) - len(missing)
            done["republished"] += len(missing)
        for record, created in outbox.pending_retractions(self.store):
            present = find({self._topics.retractions(record["role"])},
                           created - timedelta(minutes=5))
            done["pending"] += 1
            if retraction_key(record) in present:
                outbox.mark_retraction(self.store, str(record["event_id"]))
                done["found"] += 1
            else:
                self._send_retraction(record, datetime.now(UTC))
                done["republished"] += 1
        if done["pending"]:
            log.info("unconfirmed records after a restart: %d, already on the topics %d, "
                     "republished %d", done["pending"], done["found"], done["republished"])
        return done

    @property
    def _topics(self) -> Topics:
        assert self.network is not None and self.network.producer is not None
        return self.network.producer.topics

    def keys_on_topics(self, topics: set[str], since: datetime) -> set[str]:
        """Keys of the messages on ``topics`` since ``since``."""
        assert self.network is not None and self.network.producer is not None
        producer = self.network.producer
        conf = {k: v for k, v in producer.config.kafka.items()
                if k.startswith(("security.", "sasl.", "ssl.", "log"))}  # log: librdkafka's
        bootstrap = str(producer.config.kafka["bootstrap.servers"])
        keys: set[str] = set()
        for topic in sorted(topics):
            try:
                keys.update(m.key for m in read(topic, bootstrap, since=since, timeout=5,
                                                 client_config=conf) if m.key is not None)
            except TopicNotFound:  # any other error (broker away) is raised: settle later
                log.info("%s: nothing of ours on it yet", topic)
        return keys

    def close(self) -> None:
        """Flush the publishers."""
        for p in (self.files, self.network):
            if p is not None:
                p.close()
