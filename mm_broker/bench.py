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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    from fink_core.simulator import alert_files
    from mm_broker import spark as sparkmod

    files = alert_files([settings.data_dir / "alerts/ztf/avro",
                         settings.data_dir / "alerts/lsst/avro"])
    pool = [f.read_bytes() for f in files]
    rows = [(pool[i % len(pool)], "bench", 0, i) for i in range(n_alerts)]
    spark = sparkmod.session(settings, "mm_broker-bench-pipeline")
    cores = spark.sparkContext.defaultParallelism
    df = spark.createDataFrame(rows, "value binary, topic string, partition int, offset long")
    df = df.repartition(cores).cache()
    df.count()
    catalogues = load_default_catalogues(settings.catalogue_dir())
    t0 = time.perf_counter()
    n_out = enriched_stream(spark, df, catalogues).count()
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


def registry() -> dict[str, Callable[[Settings], dict[str, Any]]]:
    """Benchmark name → function. Names follow ARCHITECTURE.md."""
    table: dict[str, Callable[[Settings], dict[str, Any]]] = {
        "notices": bench_notices, "pipeline": bench_pipeline, "join": bench_join,
        "publish": bench_publish}
    return table
