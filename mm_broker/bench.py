"""``mm-broker bench NAME --json``: one benchmark, one JSON object of figures.

Each benchmark returns a dict of figures with their units in the key names
(``_ms``, ``_per_s``) plus the machine's core count; ``benchmarks/README.md`` lists
them. Benchmarks run against the real local services where the figure is about
them (``notices``: PostgreSQL), never inside the test suite.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, select

from mm_broker.config import Settings

#: Real notices used by ``bench notices``, relative to the data directory.
CIRCLE_NOTICE = "notices/swift/BAT_GRB_Pos_655721-214.xml"
MAP_NOTICE_DIR = "notices/lvk"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    load = os.getloadavg()
    return {"cores": os.cpu_count(), "loadavg_1min": round(load[0], 2),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"median_ms": round(statistics.median(ordered) * 1e3, 2),
            "p95_ms": round(p95 * 1e3, 2), "n": len(ordered)}


def _forget_event(engine: Any, event_id: str) -> None:
    """Remove an event and everything stored for it (between benchmark iterations)."""
    from mm_broker.db.schema import events, notices, raw_journal, regions

    with engine.begin() as conn:
        jids = conn.execute(select(notices.c.journal_id)
                            .where(notices.c.event_id == event_id)).scalars().all()
        conn.execute(events.update().where(events.c.event_id == event_id)
                     .values(active_region_id=None))
        conn.execute(raw_journal.update().where(raw_journal.c.id.in_(jids))
                     .values(notice_id=None))
        conn.execute(delete(regions).where(regions.c.event_id == event_id))
        conn.execute(delete(notices).where(notices.c.event_id == event_id))
        conn.execute(delete(events).where(events.c.event_id == event_id))
        conn.execute(delete(raw_journal).where(raw_journal.c.id.in_(jids)))


def _lvk_map_notice(data_dir: Path) -> Path:
    for path in sorted((data_dir / MAP_NOTICE_DIR).rglob("*.json")):
        text = path.read_bytes()
        if b'"skymap"' in text and b'"PRELIMINARY"' in text or b'"INITIAL"' in text:
            if b'"skymap": null' not in text and len(text) > 10_000:
                return path
    raise FileNotFoundError(f"no igwn.gwalert JSON with an embedded map under {data_dir}")


def bench_notices(settings: Settings, repeat: int = 30) -> dict[str, Any]:
    """Notice received → region stored and active, for a circle and an LVK map notice."""
    from mm_broker.db.scratch import temporary_database

    with temporary_database(settings, "mm_bench") as scratch:
        return _bench_notices(scratch, repeat)


def _bench_notices(settings: Settings, repeat: int) -> dict[str, Any]:
    from mm_broker.db.migrate import engine_for
    from mm_broker.ingest import Limits, ingest

    engine = engine_for(settings)
    limits = Limits.from_settings(settings)
    out: dict[str, Any] = {"benchmark": "notices", **machine()}
    cases = {"circle": settings.data_dir / CIRCLE_NOTICE,
             "skymap": _lvk_map_notice(settings.data_dir)}
    try:
        for name, path in cases.items():
            payload = path.read_bytes()
            samples = []
            for i in range(repeat + 2):
                # Trailing whitespace makes new bytes (no duplicate) with the same content.
                data = payload + b" " * (i + 1)
                t0 = time.perf_counter()
                result = ingest(engine, data, "bench", "bench", limits=limits)
                dt = time.perf_counter() - t0
                if result.status != "stored":
                    raise RuntimeError(f"{path}: {result.status} {result.reason}")
                if i >= 2:  # the first two warm imports and caches
                    samples.append(dt)
                assert result.notice is not None
                _forget_event(engine, result.notice.event_id)
            out[name] = {"file": str(path.relative_to(settings.data_dir)),
                         **_percentiles(samples)}
        out["goal_ms_p95"] = {"circle": 20, "skymap": 300}
    finally:
        engine.dispose()
    return out


def bench_pipeline(settings: Settings, n_alerts: int = 40_000) -> dict[str, Any]:
    """Alerts per second through decode + flags + annotation in Spark ``local[*]``.

    The real Avro alerts of the shared data (ZTF and LSST) are cycled to ``n_alerts``
    payloads in a DataFrame (cached before the clock starts), then the fink_core
    ``mapInPandas`` enrichment runs over them and its output is counted.
    """
    from fink_core.catalogues import load_default_catalogues
    from fink_core.pipeline import enriched_stream
    from fink_core.provenance import Provenance
    from fink_core.simulator import alert_files
    from mm_broker import spark as sparkmod

    files = alert_files([settings.data_dir / "alerts/ztf/avro",
                         settings.data_dir / "alerts/lsst/avro"])
    pool = [(f.read_bytes(), "bench", 0, i) for i, f in enumerate(files)]
    copies = max(1, n_alerts // len(pool))
    n_alerts = copies * len(pool)
    spark = sparkmod.session(settings, "mm_broker-bench-pipeline")
    cores = spark.sparkContext.defaultParallelism
    # The real payloads go to the JVM once and are replicated there (not through Python).
    base = spark.createDataFrame(pool, "value binary, topic string, partition int, offset long")
    df = base.crossJoin(spark.range(copies).withColumnRenamed("id", "copy")) \
        .drop("copy").repartition(cores).cache()
    df.count()
    catalogues = load_default_catalogues(settings.catalogue_dir())
    provenance = Provenance.from_settings(settings, catalogues)
    t0 = time.perf_counter()
    n_out = enriched_stream(spark, df, catalogues, provenance).count()
    dt = time.perf_counter() - t0
    df.unpersist()
    rate = n_alerts / dt
    return {"benchmark": "pipeline", **machine(), "spark_master": spark.sparkContext.master,
            "spark_parallelism": cores, "alerts": n_alerts, "rows_out": int(n_out),
            "seconds": round(dt, 2), "alerts_per_s": round(rate, 1),
            "alerts_per_s_per_core": round(rate / cores, 1), "goal_alerts_per_s": 1700,
            "catalogues": [c.key for c in catalogues]}


def bench_join(settings: Settings) -> dict[str, Any]:
    """Join kernel against 100 active regions vs the bare numpy limit (same run)."""
    from coincidence.bench import run_join_bench

    return {"benchmark": "join", **machine(), **run_join_bench()}


def bench_publish(settings: Settings) -> dict[str, Any]:
    """Records/s to Kafka and VOEvents/s through Comet."""
    from publishers.bench import bench_publish as run

    return {"benchmark": "publish", **machine(), **run(settings)}


RETRO_MAP = "skymaps/gw/S230518h-INITIAL-20230518T160718Z.multiorder.fits"


def _synthetic_archive(root: Path, n_alerts: int, t0_jd: float, nights: int = 20,
                       seed: int = 7) -> None:
    """Write ``n_alerts`` alerts uniform on the sky over ``nights`` nights after t0 into
    an archive laid out as fink_core's (``enriched/night=…/hpx1=…``, the columns the
    retro-match reads), one file per partition (as after a nightly compaction)."""
    import healpy as hp
    import pyarrow as pa
    import pyarrow.dataset as ds

    from fink_core.pipeline import PARTITION_ORDER

    rng = np.random.default_rng(seed)
    per_night = n_alerts // nights
    first_night = int(np.floor(t0_jd - 0.5))
    for k in range(nights):
        n = per_night if k < nights - 1 else n_alerts - per_night * (nights - 1)
        start = k * per_night
        ra = rng.uniform(0, 360, n)
        dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
        ipix = hp.ang2pix(2**29, ra, dec, nest=True, lonlat=True).astype(np.int64)
        jd = first_night + k + 0.5 + rng.uniform(0, 1, n)
        first = jd - rng.exponential(5.0, n)
        day = pd.Timestamp((first_night + k + 0.5 - 2440587.5) * 86400, unit="s")
        table = pa.table({
            "alert_id": pa.array((np.arange(start, start + n) + 10**15).astype(str)),
            "object_id": pa.array((np.arange(start, start + n) % 5_000_000).astype(str)),
            "survey": pa.array(np.full(n, "ztf")),
            "ra": ra, "dec": dec, "ipix29": ipix, "obs_jd": jd, "first_detection_jd": first,
            "quality_ok": np.ones(n, dtype=bool),
            "night": pa.array(np.full(n, day.strftime("%Y%m%d"))),
            "hpx1": (ipix >> (2 * (29 - PARTITION_ORDER))).astype(np.int32),
        }).sort_by("ipix29")
        ds.write_dataset(table, str(root / "enriched"), format="parquet",
                         partitioning=["night", "hpx1"], partitioning_flavor="hive",
                         existing_data_behavior="overwrite_or_ignore",
                         basename_template=f"part-{k}-{{i}}.parquet")


def bench_retro(settings: Settings, n_alerts: int = 10_000_000) -> dict[str, Any]:
    """A new region (the real S230518h map, 666 deg²) against ``n_alerts`` archived
    alerts spread over 20 nights: seconds until all its associations are emitted."""
    from astropy.time import Time

    import skymaps
    from coincidence.archive_store import ArchiveAlertStore
    from coincidence.engine import CoincidenceEngine, EventMeta
    from coincidence.pchance import FixedRate
    from mm_broker.models import Messenger, Role, SkyMap

    region = skymaps.region_for(SkyMap((settings.data_dir / RETRO_MAP).read_bytes()))
    t0 = datetime(2023, 5, 18, 12, 59, 8, 167000, tzinfo=UTC)
    root = settings.state_dir / "bench" / f"retro-v2-{n_alerts}"
    marker = root / ".complete"
    t_gen = 0.0
    if not marker.exists():
        t1 = time.perf_counter()
        _synthetic_archive(root, n_alerts, float(Time(t0).jd))
        marker.write_text("ok\n")
        t_gen = time.perf_counter() - t1
    store = ArchiveAlertStore(str(root))
    engine = CoincidenceEngine(store=store, rate=FixedRate(0.5))
    meta = EventMeta("LVK:S230518h", Messenger.GW, "LVK", "H1,L1", t0, 1, Role.OBSERVATION)
    t1 = time.perf_counter()
    emitted = engine.add_region(meta, 1, region)
    dt = time.perf_counter() - t1
    return {"benchmark": "retro", **machine(), "archived_alerts": n_alerts, "nights": 20,
            "region": RETRO_MAP, "region_area_deg2": round(region.area_deg2, 1),
            "associations": len(emitted), "seconds": round(dt, 3), "goal_seconds": 10,
            "archive_generation_s": round(t_gen, 1)}


LATENCY_ALERT = "alerts/ztf/avro/20181129_fink-alert-simulator/697251920115015007.avro"


def _alert_copies(template: Path, n: int, base: int) -> list[tuple[bytes, bytes]]:
    """``n`` copies of a real ZTF alert with new candids (Avro container bytes)."""
    import io

    import fastavro

    reader = fastavro.reader(io.BytesIO(template.read_bytes()))
    schema = reader.writer_schema
    rec: Any = next(reader)
    parsed = fastavro.parse_schema(schema)
    out = []
    for i in range(n):
        rec["candid"] = base + i
        rec["candidate"]["candid"] = base + i
        buf = io.BytesIO()
        fastavro.writer(buf, parsed, [rec], codec="null")
        out.append((str(base + i).encode(), buf.getvalue()))
    return out


def bench_latency(settings: Settings, rate: float = 1000.0, seconds: float = 30.0,
                  ) -> dict[str, Any]:
    """Alert written to the input topic → its counterpart on the output topic, at
    ``rate`` alerts/s, through ``mm-broker run`` (a subprocess) on the local services."""
    import json as _json
    import signal
    import subprocess
    import sys
    import uuid

    from confluent_kafka import Consumer, Producer

    from fink_core.decode import read_alert_files
    from mm_broker.db.migrate import engine_for
    from mm_broker.db.scratch import temporary_database
    from mm_broker.ingest import Limits, ingest

    tag = uuid.uuid4().hex[:8]
    template = settings.data_dir / LATENCY_ALERT
    alert = read_alert_files([template]).iloc[0]
    t0_jd = float(alert["ztf_jdstarthist"]) - 60 / 86400
    t0 = datetime(2000, 1, 1, 12, tzinfo=UTC) + timedelta(days=t0_jd - 2451545.0)
    notice = {"$schema": "https://gcn.nasa.gov/schema/main/gcn/notices/einstein_probe/wxt/"
                         "alert.schema.json", "instrument": "WXT",
              "trigger_time": t0.isoformat().replace("+00:00", "Z"), "id": [f"8{tag}"],
              "ra": float(alert["ra"]), "dec": float(alert["dec"]), "ra_dec_error": 1.0}
    n = int(rate * seconds)
    payloads = _alert_copies(template, n, 10**17 + int(uuid.uuid4().int % 10**12) * 1000)
    bootstrap = str(settings.get("kafka.bootstrap"))
    topic_in, prefix = f"bench.latency.{tag}", f"bench{tag}"
    with temporary_database(settings, "mm_bench") as scratch:
        db = engine_for(scratch)
        ingest(db, _json.dumps(notice).encode(), "bench", None, limits=Limits.from_settings(
            scratch))
        db.dispose()
        env = {**os.environ, "MM_POSTGRES__DATABASE": str(scratch.get("postgres.database")),
               "MM_ALERTS__TOPICS": f'["{topic_in}"]', "MM_PUBLISH__TOPIC_PREFIX": prefix,
               "MM_ALERTS__TRIGGER": "500 milliseconds",
               "MM_ALERTS__ARCHIVE_URI": (settings.state_dir / "bench" / tag / "a").as_uri(),
               "MM_ALERTS__CHECKPOINT_URI": (settings.state_dir / "bench" / tag / "c").as_uri()}
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
        producer.produce(topic_in, b"warm-up")  # creates the topic before the service
        producer.flush(30)
        log_path = settings.state_dir / "logs" / f"bench-latency-{tag}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(log_path, "wb")  # noqa: SIM115 - closed after the process ends
        proc = subprocess.Popen([sys.executable, "-m", "mm_broker.cli", "run"], env=env,
                                stdout=log_file, stderr=subprocess.STDOUT)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{tag}",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe([f"{prefix}.counterparts.x"])
        try:
            time.sleep(25)  # Spark session and the three queries start
            sent_at: dict[str, float] = {}
            start = time.time()
            for i, (key, value) in enumerate(payloads):
                due = start + i / rate
                while time.time() < due:
                    producer.poll(0)
                    time.sleep(min(0.001, max(0.0, due - time.time())))
                producer.produce(topic_in, value=value, key=key)
                sent_at[key.decode()] = time.time()
                producer.poll(0)
            producer.flush(30)
            latencies: list[float] = []
            deadline = time.time() + 60
            while len(latencies) < n and time.time() < deadline:
                msg = consumer.poll(1.0)
                if msg is None or msg.error():
                    continue
                out_key = (msg.key() or b"").decode()
                alert_id = out_key.rsplit("|", 1)[-1]
                if alert_id in sent_at:
                    latencies.append(msg.timestamp()[1] / 1e3 - sent_at[alert_id])
        finally:
            consumer.close()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
            log_file.close()
    if not latencies:
        raise RuntimeError(f"no counterpart arrived on the output topic; see {log_path}")
    stats = _percentiles(latencies)
    return {"benchmark": "latency", **machine(), "rate_per_s": rate, "alerts": n,
            "counterparts_received": len(latencies),
            "median_s": round(stats["median_ms"] / 1e3, 3),
            "p95_s": round(stats["p95_ms"] / 1e3, 3), "goal_p95_s": 5.0,
            "trigger": "500 milliseconds"}


def registry() -> dict[str, Callable[..., dict[str, Any]]]:
    """Benchmark name → function. Names follow ARCHITECTURE.md."""
    table: dict[str, Callable[..., dict[str, Any]]] = {
        "notices": bench_notices, "pipeline": bench_pipeline, "join": bench_join,
        "publish": bench_publish, "retro": bench_retro, "latency": bench_latency}
    return table
