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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import OperationalError

from mm_broker import __version__
from mm_broker.config import Settings
from mm_broker.db.schema import associations, events, notices, region_ranges, region_tiles, regions
from mm_broker.models import Messenger, Region, Role

log = logging.getLogger("mm_broker.run")

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

    def _signature(self, conn: Any) -> tuple[Any, ...]:
        return tuple(conn.execute(select(
            select(func.count(regions.c.id)).scalar_subquery(),
            select(func.max(regions.c.id)).scalar_subquery(),
            select(func.max(events.c.updated_at)).scalar_subquery())).one())

    def sync(self) -> list[Any]:
        """Apply new region versions and retractions; return what the engine emitted."""
        from coincidence.engine import EventMeta

        emitted: list[Any] = []
        with self.db.connect() as conn:
            sig = self._signature(conn)
            if sig == self.signature:
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
        return emitted


def _record(a: Any, sync: RegionSync, extras: dict[str, dict[str, Any]],
            config_hash: str) -> dict[str, Any]:
    from mm_broker.replay import counterpart_record

    trig, note, sig = sync.ivorns.get(a.event_id, (None, None, {}))
    return counterpart_record(a, extras, trig, note, sig,
                              {"mm_broker_version": __version__, "config_hash": config_hash})


def persist_and_publish(db: Engine, records: list[dict[str, Any]],
                        publish: Callable[[list[dict[str, Any]]], Any]) -> int:
    """Insert records; publish only those not stored before; commit after delivery."""
    if not records:
        return 0
    now = datetime.now(UTC)
    by_key = {(r["event_id"], int(r["region_version"]), str(r["alert_id"]), r["status"]): r
              for r in records}
    with db.begin() as conn:
        inserted: set[tuple[str, int, str, str]] = set()
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
        fresh = [by_key[k] for k in keys if k in inserted]
        if fresh:
            publish(fresh)
    return len(fresh)


def run(settings: Settings, once: bool = False, spark: Any = None,
        name: str = "service") -> dict[str, Any]:
    """Run the streaming service until stopped (or, with ``once``, over what the
    alert topics hold now). Returns counts of what was done."""
    from coincidence.archive_store import ArchiveAlertStore
    from coincidence.engine import CoincidenceEngine
    from fink_core.catalogues import load_default_catalogues
    from fink_core.pipeline import enriched_stream, start_archive, write_enriched_batch
    from fink_core.stream import read_kafka
    from mm_broker import spark as sparkmod
    from mm_broker.db.migrate import engine_for
    from mm_broker.replay import alert_extras, engine_frame, windows_from_settings
    from publishers.publish import Publisher

    spark = spark or sparkmod.session(settings, "mm_broker-run")
    catalogues = load_default_catalogues(settings.catalogue_dir())
    topics = ",".join(settings.get("alerts.topics"))
    bootstrap = str(settings.get("kafka.bootstrap"))
    max_offsets = int(settings.get("alerts.max_offsets_per_trigger"))
    trigger = {"availableNow": True} if once else \
        {"processingTime": str(settings.get("alerts.trigger"))}
    checkpoints = f"{settings.checkpoint_uri()}/{name}"
    # The raw archive is its own query (no decoding); the enriched archive is written by
    # the coincidence query itself (write_enriched_batch), so each alert is decoded once.
    queries = start_archive(spark, read_kafka(spark, bootstrap, topics, max_offsets=max_offsets),
                            catalogues, settings.archive_uri(), checkpoints, trigger,
                            enriched=False)
    keys = [c.key for c in catalogues]

    db = engine_for(settings)
    coinc = CoincidenceEngine(store=ArchiveAlertStore(settings.archive_uri()),
                              windows=windows_from_settings(settings))
    sync = RegionSync(db, coinc)
    publisher = Publisher.from_settings(settings)
    config_hash = settings.hash()
    counts = {"alerts": 0, "associations": 0, "published": 0, "batches": 0}
    # The engine starts from the store's regions; its alerts come from the archive.

    def publish(recs: list[dict[str, Any]]) -> None:
        report = publisher.counterparts(recs, authored=datetime.now(UTC), wait=True)
        if report.kafka is not None and report.kafka.failed:
            raise RuntimeError(f"{report.kafka.failed} counterparts not delivered")

    lock = threading.Lock()  # the engine is used by the batches and the region watcher

    def emit(emitted: list[Any], extras: dict[str, dict[str, Any]]) -> int:
        recs = [_record(a, sync, extras, config_hash) for a in emitted]
        n = persist_and_publish(db, recs, publish)
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

    enriched = enriched_stream(spark, read_kafka(spark, bootstrap, topics,
                                                 max_offsets=max_offsets), catalogues)
    coinc_q = (enriched.writeStream.foreachBatch(on_batch)
               .option("checkpointLocation", f"{checkpoints}/coincidence")
               .trigger(**trigger).queryName("coincidence").start())
    queries.append(coinc_q)
    stop = threading.Event()
    period = float(settings.get("alerts.region_poll_s"))

    def watcher() -> None:
        while not stop.wait(period):
            try:
                watch_regions()
            except OperationalError as exc:  # database away: retried at the next period
                log.warning("region watcher: %s", str(exc).splitlines()[0])

    thread = threading.Thread(target=watcher, name="region-watcher", daemon=True)
    if not once:
        thread.start()
    try:
        for q in queries:
            q.awaitTermination()
        if once:
            watch_regions()  # regions stored since the last alert batch
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        stop.set()
        for q in queries:
            q.stop()
        publisher.close()
        db.dispose()
    return counts
