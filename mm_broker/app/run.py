"""``mm-broker run``: the streaming service. Alerts from Kafka, regions from the store,
counterparts to the topics (and VOEvents through Comet).

Two Spark Structured Streaming queries read the alert topics:

* ``archive_raw`` (:mod:`fink_core.pipeline`): the bytes as received, exactly once
  through the Parquet file sink's checkpoint;
* ``coincidence``: the fink_core enrichment, then ``foreachBatch`` on the driver:

  0. the enriched micro-batch is appended to the archive with file names derived
     from the batch id (:func:`fink_core.pipeline.write_enriched_batch`): a replayed
     batch rewrites the same files, so each alert is archived once;
  1. :class:`RegionSync` compares a cheap signature of the ``regions``/``events``
     tables with the last one seen and, only when a region was added, superseded or
     withdrawn, loads the changes (:mod:`mm_broker.core.repository`) into the
     in-memory :class:`~coincidence.engine.CoincidenceEngine` (merged order-29
     boundaries, one binary search per alert). A new region version is
     retro-matched against the alerts already archived
     (:class:`~coincidence.archive_store.ArchiveAlertStore`), which covers regions
     stored while the service was down; a retracted event withdraws its candidates
     and publishes its retraction;
  2. the micro-batch's alerts are joined;
  3. the records go through the one counterpart flow
     (:class:`mm_broker.app.flow.CounterpartFlow`), with the store as its outbox: a
     micro-batch replayed after a crash publishes nothing twice.

The join runs on the driver: with one binary search per alert it handles millions of
alerts per second per core (``mm-broker bench join``), far above a micro-batch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from coincidence.archive_store import ArchiveAlertStore
from coincidence.association import Association
from coincidence.engine import CoincidenceEngine, EventMeta
from fink_core import session as sparkmod
from fink_core.catalogues import load_default_catalogues
from fink_core.pipeline import enriched_stream, start_archive, write_enriched_batch
from fink_core.stream import read_kafka
from mm_broker.app.alert_frame import (
    ALERT_COLUMNS,
    alert_extras,
    engine_frame,
    windows_from_settings,
)
from mm_broker.app.coincidences import NoticeCoincidences, side_from_row
from mm_broker.app.flow import CounterpartFlow, VersionContext
from mm_broker.app.provenance import rule_versions
from mm_broker.app.records import retraction_record
from mm_broker.core import repository
from mm_broker.core.config import Settings
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.kafka import spark_source_options
from mm_broker.core.models import Messenger, Role, Significance
from mm_broker.core.provenance import Provenance
from publishers.publish import Publisher

log = logging.getLogger(__name__)


@dataclass
class RegionSync:
    """Keeps the engine's active regions equal to the store's, through the flow.

    Each call of :meth:`sync` applies what changed in the store since the last one:
    new active region versions (retro-matched, their records emitted) and
    retractions (candidates withdrawn, the retraction record published). What the
    engine emitted but could not be handed out (a failure part-way) is kept in
    :attr:`pending` and handed out first next time.
    """

    db: Engine
    engine: CoincidenceEngine
    flow: CounterpartFlow
    applied: dict[str, int] = field(default_factory=dict)
    retracted: set[str] = field(default_factory=set)
    signature: tuple[Any, ...] | None = None
    pending: list[Association] = field(default_factory=list)
    #: Notice × notice coincidences of each version applied (None: not searched).
    coinc: NoticeCoincidences | None = None

    def sync(self) -> list[Association]:
        """Apply new region versions and retractions; return what the engine emitted
        for new regions (retractions are published here)."""
        emitted, self.pending = self.pending, []
        try:
            with self.db.connect() as conn:
                sig = repository.change_signature(conn)
                if sig == self.signature:
                    return emitted
                for row in repository.event_states(conn):
                    eid = row.event_id
                    if row.status == "retracted":
                        if eid not in self.retracted:
                            self._retract(conn, row)
                        continue
                    if row.id is None or self.applied.get(eid) == row.region_version:
                        continue
                    version = int(row.region_version)
                    self.flow.note_version(eid, version, VersionContext(
                        repository.first_ivorn(conn, eid), row.ivorn,
                        dict(row.significance or {})))
                    meta = EventMeta(eid, Messenger(row.messenger), row.mission,
                                     row.instrument, row.trigger_time,
                                     int(row.notice_version), Role(row.role),
                                     Significance.from_mapping(row.significance))
                    region = repository.load_region(conn, row)
                    emitted += self.engine.add_region(meta, version, region)
                    self.applied[eid] = version
                    if self.coinc is not None:  # notice × notice pairs of this version
                        self.coinc.on_version(side_from_row(conn, row, region),
                                              datetime.now(UTC))
            self.signature = sig
        except Exception:
            self.pending = emitted
            raise
        return emitted

    def _retract(self, conn: Any, row: Any) -> None:
        """Withdraw the event's candidates (those the engine holds, and those published
        before a restart) and publish its retraction, once."""
        eid = row.event_id
        now = datetime.now(UTC)
        withdrawn = self.engine.retract(eid) if eid in self.applied else []
        self.flow.emit(withdrawn, {}, now)
        stored = self.flow.withdrawals_from_store(eid, [a.alert_id for a in withdrawn])
        self.flow.emit_records(stored, now)
        notice = repository.retraction_notice(conn, eid)
        versions = repository.region_versions(conn, eid)
        self.flow.retract(retraction_record(
            event_id=eid, messenger=row.messenger, mission=row.mission,
            instrument=row.instrument, role=row.role,
            notice_version=notice.version if notice else 0, region_version=versions,
            trigger_time=row.trigger_time,
            retracted_at=notice.issue_time if notice else row.updated_at,
            withdrawn_alert_ids=[a.alert_id for a in withdrawn]
            + [r["alert_id"] for r in stored],
            trigger_ivorn=repository.first_ivorn(conn, eid),
            notice_ivorn=notice.ivorn if notice else None,
            provenance=self.flow.provenance), now)
        self.retracted.add(eid)
        if self.coinc is not None:
            self.coinc.on_retraction(eid, now)


class _Supervised:
    """A streaming query restarted from its checkpoint when it fails."""

    def __init__(self, name: str, start: Callable[[], Any], initial: float,
                 maximum: float) -> None:
        self.name, self.start, self.maximum = name, start, maximum
        self.query = start()
        self.delay = initial
        self.restarts = 0

    def check(self, stop: threading.Event) -> None:
        """Restart the query (after a back-off) if it stopped with an error."""
        if self.query.isActive:
            return
        exc = self.query.exception()
        if exc is None:
            return
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.error("query %s failed (%s); restarting from its checkpoint in %.0f s",
                  self.name, first[:300], self.delay)
        if stop.wait(self.delay):
            return
        self.delay = min(self.delay * 2, self.maximum)
        self.query = self.start()
        self.restarts += 1


class _Service:
    """The driver side of ``run``: the engine, the region sync and the flow."""

    def __init__(self, settings: Settings, catalogue_keys: list[str],
                 provenance: Provenance) -> None:
        self.settings = settings
        self.db = engine_for(settings)
        # Every alert is archived before it is joined, so the engine's memory need only
        # hold the recent ones (a replayed micro-batch is recognised by them).
        store = ArchiveAlertStore(settings.archive_uri(),
                                  memory_horizon_s=settings.alerts.memory_horizon_s)
        self.engine = CoincidenceEngine(store=store, windows=windows_from_settings(settings))
        self.flow = CounterpartFlow(provenance.record_fields(), store=self.db,
                                    network=Publisher.from_settings(settings))
        self.sync = RegionSync(self.db, self.engine, self.flow,
                               coinc=NoticeCoincidences(settings, self.flow))
        self.keys = catalogue_keys
        self.lock = threading.Lock()  # the engine is used by the batches and the watcher
        # Records a crash (or a failed delivery) left between insert and confirmed
        # delivery are settled before anything else is emitted: at the start, and again
        # after any failure to publish.
        self.unsettled = True
        self.counts: dict[str, Any] = {"alerts": 0, "associations": 0, "published": 0,
                                       "batches": 0, "restarts": 0,
                                       "settled": {"pending": 0, "found": 0,
                                                   "republished": 0}}

    def settle(self) -> None:
        """Settle unconfirmed records (at the start, and after a failure to publish)."""
        if self.unsettled:
            done = self.flow.settle()
            self.counts["settled"] = {k: self.counts["settled"][k] + v
                                      for k, v in done.items()}
            self.unsettled = False

    def emit(self, emitted: list[Association], extras: dict[str, dict[str, Any]]) -> int:
        try:
            n = self.flow.emit(emitted, extras, datetime.now(UTC))
        except Exception:
            self.unsettled = True
            raise
        self.counts["associations"] += len(emitted)
        self.counts["published"] += n
        return n

    def watch_regions(self) -> int:
        """Regions added, superseded or withdrawn without alert traffic (late notices)."""
        with self.lock:
            self.settle()
            return self.emit(self._synced(), {})

    def _synced(self) -> list[Association]:
        try:
            return self.sync.sync()
        except Exception:
            self.unsettled = True
            raise

    def on_batch(self, df: Any, batch_id: int,
                 on_batch_done: Callable[[dict[str, Any]], None] | None) -> None:
        full = df.toPandas()
        write_enriched_batch(full, self.settings.archive_uri(), batch_id, self.keys)
        pdf = full[ALERT_COLUMNS]
        with self.lock:
            self.settle()
            emitted = self._synced()
            extras: dict[str, dict[str, Any]] = {}
            if len(pdf):
                pdf = pdf[pdf["alert_id"].notna()]
                frame, _ = engine_frame(pdf)
                emitted += self.engine.process_alerts(frame)
                extras = alert_extras(pdf, [])
            n = self.emit(emitted, extras)
        self.counts["alerts"] += len(pdf)
        self.counts["batches"] += 1
        log.info("batch %d: %d alerts, %d associations, %d published", batch_id, len(pdf),
                 len(emitted), n)
        if on_batch_done is not None:
            on_batch_done({"batch_id": batch_id, "alerts": len(pdf),
                           "associations": len(emitted), "published": n})

    def close(self) -> None:
        self.flow.close()
        self.db.dispose()


def run(settings: Settings, once: bool = False, spark: Any = None,
        name: str = "service", stop: threading.Event | None = None,
        on_batch_done: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the streaming service.

    Parameters
    ----------
    settings : Settings
    once : bool
        Process what the alert topics hold now, then return.
    spark : SparkSession, optional
        Session to use (default: :func:`fink_core.session.session`).
    name : str
        Name of the service's checkpoint folder under ``alerts.checkpoint_uri``.
    stop : threading.Event, optional
        Set it to stop the service cleanly (the CLI sets it on SIGTERM/SIGINT).
    on_batch_done : callable, optional
        Called with a summary dict after each micro-batch (benchmarks).

    Returns
    -------
    dict
        Counts of what was done: alerts, associations, published, batches, restarts,
        and the settlement of records a crash left unconfirmed.
    """
    stop = stop or threading.Event()
    spark = spark or sparkmod.session(settings, "mm_broker-run")
    catalogues = load_default_catalogues(settings.catalogue_dir())
    provenance = Provenance.from_settings(settings, catalogues, rule_versions())
    a = settings.alerts
    topics, bootstrap = ",".join(a.topics), settings.kafka.bootstrap
    source = spark_source_options(settings)
    trigger = {"availableNow": True} if once else {"processingTime": a.trigger}
    checkpoints = f"{settings.checkpoint_uri()}/{name}"
    svc = _Service(settings, [c.key for c in catalogues], provenance)

    def start_raw() -> Any:
        return start_archive(spark, read_kafka(spark, bootstrap, topics,
                                               max_offsets=a.max_offsets_per_trigger,
                                               options=source),
                             catalogues, settings.archive_uri(), checkpoints, trigger,
                             enriched=False)[0]

    def start_coincidence() -> Any:
        # The raw archive is its own query (no decoding); the enriched archive is written
        # by this query itself (write_enriched_batch), so each alert is decoded once.
        enriched = enriched_stream(spark, read_kafka(spark, bootstrap, topics,
                                                     max_offsets=a.max_offsets_per_trigger,
                                                     options=source),
                                   catalogues, provenance)
        return (enriched.writeStream
                .foreachBatch(lambda df, bid: svc.on_batch(df, bid, on_batch_done))
                .option("checkpointLocation", f"{checkpoints}/coincidence")
                .trigger(**trigger).queryName("coincidence").start())

    supervised = [_Supervised("archive_raw", start_raw, a.restart_initial_s, a.restart_max_s),
                  _Supervised("coincidence", start_coincidence, a.restart_initial_s,
                              a.restart_max_s)]

    def watcher() -> None:
        while not stop.wait(a.region_poll_s):
            try:
                svc.watch_regions()
            except OperationalError as exc:  # database away: retried at the next period
                log.warning("region watcher: %s", str(exc).splitlines()[0])
            except Exception:  # noqa: BLE001 - e.g. Kafka away; retried at the next period
                log.exception("region watcher: late matches not published yet; retrying")

    thread = threading.Thread(target=watcher, name="region-watcher", daemon=True)
    try:
        if once:
            for q in supervised:
                q.query.awaitTermination()
                exc = q.query.exception()
                if exc is not None:
                    raise RuntimeError(f"query {q.name} failed: {exc}")
            svc.watch_regions()  # regions stored since the last alert batch
        else:
            thread.start()
            while not stop.wait(1.0):
                for q in supervised:
                    q.check(stop)
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        stop.set()
        for q in supervised:
            q.query.stop()
        if thread.is_alive():
            thread.join(timeout=30)
        svc.counts["restarts"] = sum(q.restarts for q in supervised)
        svc.close()
    return svc.counts
