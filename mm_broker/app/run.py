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
     withdrawn, loads the changes into the in-memory
     :class:`~coincidence.engine.CoincidenceEngine` (merged order-29 boundaries, one
     binary search per alert). A new region version is retro-matched against the
     alerts already archived (:class:`~coincidence.archive_store.ArchiveAlertStore`),
     which covers regions stored while the service was down;
  2. the micro-batch's alerts are joined;
  3. new associations are inserted in ``associations`` (unique on event, region
     version, alert and status) and only the rows actually inserted are published;
     the transaction commits after Kafka confirmed delivery. A micro-batch replayed
     after a crash therefore publishes nothing twice.

The join runs on the driver: with one binary search per alert it handles millions of
alerts per second per core (``mm-broker bench join``), far above a micro-batch.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import OperationalError

from mm_broker.core.config import Settings
from mm_broker.core.db.schema import (
    associations,
    events,
    notices,
    region_ranges,
    region_tiles,
    regions,
)
from mm_broker.core.kafka import spark_source_options
from mm_broker.core.models import Messenger, Region, Role

log = logging.getLogger("mm_broker.app.run")

#: Columns of the enriched alerts the coincidence step needs.
ALERT_COLUMNS = ["alert_id", "object_id", "survey", "ra", "dec", "obs_jd", "bad_coordinates",
                 "first_detection_jd", "ztf_jdstarthist", "lsst_first_dia_source_jd",
                 "quality_ok", "mag", "mag_err", "band", "classification",
                 "classification_rule"]


def _ranges(value: Any) -> tuple[int, int]:
    return int(value.lower), int(value.upper)


def load_region(conn: Any, row: Any) -> Region:
    """Rebuild a :class:`Region` from its stored rows."""
    rngs = conn.execute(select(region_ranges.c.rng).where(region_ranges.c.region_id == row.id)
                        ).scalars().all()
    ranges = np.array(sorted(_ranges(r) for r in rngs), dtype=np.uint64).reshape(-1, 2)
    tiles = conn.execute(select(region_tiles.c.rng, region_tiles.c.credible_level,
                                region_tiles.c.density_deg2)
                         .where(region_tiles.c.region_id == row.id)).all()
    tiles = sorted(tiles, key=lambda t: _ranges(t.rng))
    return Region(
        kind=row.kind, ranges=ranges, area_deg2=row.area_deg2,
        credible_level=row.credible_level,
        tile_ranges=np.array([_ranges(t.rng) for t in tiles], dtype=np.uint64).reshape(-1, 2),
        tile_credible_level=np.array([t.credible_level for t in tiles], dtype=float),
        tile_density_deg2=np.array([t.density_deg2 for t in tiles], dtype=float),
        center_ra=row.center_ra, center_dec=row.center_dec, radius90_deg=row.radius90_deg,
        sigma_deg=row.sigma_deg, convention=row.convention, distance=dict(row.distance or {}))


@dataclass
class RegionSync:
    """Keeps the engine's active regions equal to the store's."""

    db: Engine
    engine: Any
    applied: dict[str, int] = field(default_factory=dict)
    retracted: set[str] = field(default_factory=set)
    ivorns: dict[str, tuple[str | None, str | None, dict[str, Any]]] = field(
        default_factory=dict)
    signature: tuple[Any, ...] | None = None
    #: Emitted by the engine but not yet handed out (a failure part-way through a sync).
    pending: list[Any] = field(default_factory=list)

    def _signature(self, conn: Any) -> tuple[Any, ...]:
        return tuple(conn.execute(select(
            select(func.count(regions.c.id)).scalar_subquery(),
            select(func.max(regions.c.id)).scalar_subquery(),
            select(func.max(events.c.updated_at)).scalar_subquery())).one())

    def sync(self) -> list[Any]:
        """Apply new region versions and retractions; return what the engine emitted."""
        from coincidence.engine import EventMeta

        emitted = self.pending  # kept across a failure part-way through
        with self.db.connect() as conn:
            sig = self._signature(conn)
            if sig == self.signature:
                self.pending = []
                return emitted
            rows = conn.execute(
                select(events, regions.c.id, regions.c.version.label("region_version"),
                       regions.c.kind, regions.c.area_deg2, regions.c.credible_level,
                       regions.c.center_ra, regions.c.center_dec, regions.c.radius90_deg,
                       regions.c.sigma_deg, regions.c.convention, regions.c.distance,
                       notices.c.version.label("notice_version"), notices.c.ivorn,
                       notices.c.significance)
                .outerjoin(regions, regions.c.id == events.c.active_region_id)
                .outerjoin(notices, notices.c.id == regions.c.notice_id)
                .order_by(events.c.updated_at, events.c.event_id)).all()
            for row in rows:
                eid = row.event_id
                if row.status == "retracted":
                    if eid in self.applied and eid not in self.retracted:
                        emitted += self.engine.retract(eid)
                    self.retracted.add(eid)
                    continue
                if row.id is None or self.applied.get(eid) == row.region_version:
                    continue
                meta = EventMeta(eid, Messenger(row.messenger), row.mission, row.instrument,
                                 row.trigger_time, int(row.notice_version), Role(row.role))
                first_ivorn = conn.execute(
                    select(notices.c.ivorn).where(notices.c.event_id == eid)
                    .order_by(notices.c.issue_time).limit(1)).scalar_one_or_none()
                self.ivorns[eid] = (first_ivorn, row.ivorn, dict(row.significance or {}))
                emitted += self.engine.add_region(meta, int(row.region_version),
                                                  load_region(conn, row))
                self.applied[eid] = int(row.region_version)
        self.signature = sig
        self.pending = []
        return emitted


def _record(a: Any, sync: RegionSync, extras: dict[str, dict[str, Any]],
            provenance: dict[str, Any]) -> dict[str, Any]:
    from mm_broker.app.replay import counterpart_record

    trig, note, sig = sync.ivorns.get(a.event_id, (None, None, {}))
    return counterpart_record(a, extras, trig, note, sig, provenance)


def _key(r: Mapping[str, Any]) -> tuple[str, int, str, str]:
    return (str(r["event_id"]), int(r["region_version"]), str(r["alert_id"]), str(r["status"]))


def _mark_published(db: Engine, keys: list[tuple[str, int, str, str]]) -> None:
    now = datetime.now(UTC)
    with db.begin() as conn:
        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            conn.execute(update(associations)
                         .where(tuple_(associations.c.event_id, associations.c.region_version,
                                       associations.c.alert_id, associations.c.status)
                                .in_(chunk))
                         .values(published_at=now))


def persist_and_publish(db: Engine, records: list[dict[str, Any]],
                        publish: Callable[[list[dict[str, Any]]], Any]) -> int:
    """Store records, publish those not stored before, then mark them published.

    The insert commits first (``published_at`` NULL), so a record is never published
    without a row; the row is marked once Kafka confirmed delivery. A crash in
    between leaves the row unmarked, and :func:`republish_pending` settles it at the
    next start. A replayed micro-batch finds its rows and publishes nothing.
    """
    if not records:
        return 0
    now = datetime.now(UTC)
    by_key = {_key(r): r for r in records}
    inserted: set[tuple[str, int, str, str]] = set()
    with db.begin() as conn:
        keys = list(by_key)
        for start in range(0, len(keys), 1000):  # one statement per thousand records
            chunk = keys[start:start + 1000]
            rows = conn.execute(
                pg_insert(associations).values([
                    {"event_id": k[0], "region_version": k[1], "alert_id": k[2],
                     "status": k[3], "created_at": now,
                     "record": json.loads(json.dumps(by_key[k], default=str))}
                    for k in chunk])
                .on_conflict_do_nothing(constraint="uq_associations_key")
                .returning(associations.c.event_id, associations.c.region_version,
                           associations.c.alert_id, associations.c.status)).all()
            inserted.update((r[0], int(r[1]), r[2], r[3]) for r in rows)
    fresh_keys = [k for k in by_key if k in inserted]
    if fresh_keys:
        publish([by_key[k] for k in fresh_keys])
        _mark_published(db, fresh_keys)
    return len(fresh_keys)


def republish_pending(db: Engine, publish: Callable[[list[dict[str, Any]]], Any],
                      already_on_topic: Callable[[list[dict[str, Any]], datetime], set[str]],
                      ) -> dict[str, int]:
    """Settle the rows a crash left between insert and confirmed delivery.

    Each such record is looked for on its topic (from a little before the row was
    created): found ones are only marked, the others are published and marked. So
    a crash neither loses nor doubles a counterpart on the topics.

    Returns
    -------
    dict
        ``pending``, ``found`` on the topic, ``republished``.
    """
    with db.connect() as conn:
        rows = conn.execute(select(associations.c.record, associations.c.created_at)
                            .where(associations.c.published_at.is_(None))
                            .order_by(associations.c.id)).all()
    if not rows:
        return {"pending": 0, "found": 0, "republished": 0}
    records = [dict(r.record) for r in rows]
    since = min(r.created_at for r in rows) - timedelta(minutes=5)
    present = already_on_topic(records, since)
    from publishers.records import counterpart_key

    missing = [r for r in records if counterpart_key(r) not in present]
    if missing:
        publish(missing)
    _mark_published(db, [_key(r) for r in records])
    log.info("pending counterparts after a restart: %d, already on the topics %d, "
             "republished %d", len(records), len(records) - len(missing), len(missing))
    return {"pending": len(records), "found": len(records) - len(missing),
            "republished": len(missing)}


def _keys_on_topics(publisher: Any, records: list[dict[str, Any]], since: datetime) -> set[str]:
    """Keys of the counterpart messages on the topics these records go to."""
    from publishers.consume import TopicNotFound, read

    producer = publisher.producer
    conf = {k: v for k, v in producer.config.kafka.items()
            if k.startswith(("security.", "sasl.", "ssl."))}
    bootstrap = str(producer.config.kafka["bootstrap.servers"])
    topics = {producer.topics.counterparts(r["messenger"], r["role"]) for r in records}
    keys: set[str] = set()
    for topic in sorted(topics):
        try:
            keys.update(m.key for m in read(topic, bootstrap, since=since, timeout=5,
                                             client_config=conf) if m.key is not None)
        except TopicNotFound:  # any other error (broker away) is raised: settle later
            log.info("%s: nothing of ours on it yet", topic)
    return keys


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
        and the settlement of counterparts a crash left unconfirmed.
    """
    from coincidence.archive_store import ArchiveAlertStore
    from coincidence.engine import CoincidenceEngine
    from fink_core import session as sparkmod
    from fink_core.catalogues import load_default_catalogues
    from fink_core.pipeline import enriched_stream, start_archive, write_enriched_batch
    from fink_core.stream import read_kafka
    from mm_broker.app.replay import alert_extras, engine_frame, windows_from_settings
    from mm_broker.core.db.migrate import engine_for
    from mm_broker.core.provenance import Provenance
    from publishers.publish import Publisher

    stop = stop or threading.Event()
    spark = spark or sparkmod.session(settings, "mm_broker-run")
    catalogues = load_default_catalogues(settings.catalogue_dir())
    provenance = Provenance.from_settings(settings, catalogues)
    topics = ",".join(settings.get("alerts.topics"))
    bootstrap = str(settings.get("kafka.bootstrap"))
    source = spark_source_options(settings)
    max_offsets = int(settings.get("alerts.max_offsets_per_trigger"))
    trigger = {"availableNow": True} if once else \
        {"processingTime": str(settings.get("alerts.trigger"))}
    checkpoints = f"{settings.checkpoint_uri()}/{name}"
    keys = [c.key for c in catalogues]

    db = engine_for(settings)
    # Every alert is archived before it is joined, so the engine's memory need only
    # hold the recent ones (a replayed micro-batch is recognised by them).
    store = ArchiveAlertStore(settings.archive_uri(),
                              memory_horizon_s=float(settings.get("alerts.memory_horizon_s")))
    coinc = CoincidenceEngine(store=store,
                              windows=windows_from_settings(settings))
    sync = RegionSync(db, coinc)
    publisher = Publisher.from_settings(settings)
    record_provenance = provenance.record_fields()
    counts: dict[str, Any] = {"alerts": 0, "associations": 0, "published": 0, "batches": 0,
                              "restarts": 0}

    def publish(recs: list[dict[str, Any]]) -> None:
        report = publisher.counterparts(recs, authored=datetime.now(UTC), wait=True)
        if report.kafka is not None and (report.kafka.failed or report.kafka.pending):
            raise RuntimeError(f"{len(report.kafka.failed)} counterparts not delivered, "
                               f"{report.kafka.pending} unconfirmed")

    lock = threading.Lock()  # the engine is used by the batches and the region watcher
    # Counterparts a crash (or a failed delivery) left between insert and confirmed
    # delivery are settled before anything else is emitted: at the start, and again
    # after any failure to publish.
    unsettled = [True]
    backlog: list[dict[str, Any]] = []
    counts["settled"] = {"pending": 0, "found": 0, "republished": 0}

    def emit(emitted: list[Any], extras: dict[str, dict[str, Any]]) -> int:
        if unsettled[0]:
            done = republish_pending(
                db, publish, lambda recs, since: _keys_on_topics(publisher, recs, since))
            counts["settled"] = {k: counts["settled"][k] + v for k, v in done.items()}
            unsettled[0] = False
        # Records of an earlier attempt that failed (store or broker away) go first:
        # retro-matches of a region already applied would otherwise be lost.
        recs = backlog + [_record(a, sync, extras, record_provenance) for a in emitted]
        try:
            n = persist_and_publish(db, recs, publish)
        except Exception:
            backlog[:] = recs
            unsettled[0] = True
            raise
        backlog.clear()
        counts["associations"] += len(recs)
        counts["published"] += n
        return n

    def watch_regions() -> int:
        """Regions added, superseded or withdrawn without alert traffic (late notices)."""
        with lock:
            return emit(sync.sync(), {})

    def on_batch(df: Any, batch_id: int) -> None:
        full = df.toPandas()
        write_enriched_batch(full, settings.archive_uri(), batch_id, keys)
        pdf = full[ALERT_COLUMNS]
        with lock:
            emitted = sync.sync()
            extras: dict[str, dict[str, Any]] = {}
            if len(pdf):
                pdf = pdf[pdf["alert_id"].notna()]
                frame, _ = engine_frame(pdf)
                emitted += coinc.process_alerts(frame)
                extras = alert_extras(pdf, [])
            n = emit(emitted, extras)
        counts["alerts"] += len(pdf)
        counts["batches"] += 1
        log.info("batch %d: %d alerts, %d associations, %d published", batch_id, len(pdf),
                 len(emitted), n)
        if on_batch_done is not None:
            on_batch_done({"batch_id": batch_id, "alerts": len(pdf),
                           "associations": len(emitted), "published": n})

    def start_raw() -> Any:
        return start_archive(spark, read_kafka(spark, bootstrap, topics, max_offsets=max_offsets,
                                               options=source),
                             catalogues, settings.archive_uri(), checkpoints, trigger,
                             enriched=False)[0]

    def start_coincidence() -> Any:
        # The raw archive is its own query (no decoding); the enriched archive is written
        # by this query itself (write_enriched_batch), so each alert is decoded once.
        enriched = enriched_stream(spark, read_kafka(spark, bootstrap, topics,
                                                     max_offsets=max_offsets, options=source),
                                   catalogues, provenance)
        return (enriched.writeStream.foreachBatch(on_batch)
                .option("checkpointLocation", f"{checkpoints}/coincidence")
                .trigger(**trigger).queryName("coincidence").start())

    backoff = (float(settings.get("alerts.restart_initial_s")),
               float(settings.get("alerts.restart_max_s")))
    supervised = [_Supervised("archive_raw", start_raw, *backoff),
                  _Supervised("coincidence", start_coincidence, *backoff)]
    period = float(settings.get("alerts.region_poll_s"))

    def watcher() -> None:
        while not stop.wait(period):
            try:
                watch_regions()
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
            watch_regions()  # regions stored since the last alert batch
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
        counts["restarts"] = sum(q.restarts for q in supervised)
        publisher.close()
        db.dispose()
    return counts
