"""``mm-broker bench pipeline``: alerts per second through the fink_core enrichment.

:func:`bench_pipeline` runs decode + quality flags + annotation in Spark (the
configured master, ``local[*]`` by default) over the real Avro alerts of the shared
data (ZTF and LSST), cycled to ``n_alerts``. :func:`run_pandas` is the same path
without Spark: the pure pandas functions that ``mapInPandas`` calls, on one core, in
batches — the per-core ceiling the Spark figure is compared with.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine
from fink_core import session as sparkmod
from fink_core.annotate import annotate
from fink_core.catalogues import load_default_catalogues
from fink_core.decode import decode_payloads
from fink_core.pipeline import enriched_stream
from fink_core.simulator import alert_files
from mm_broker.app.provenance import rule_versions
from mm_broker.core import config
from mm_broker.core.config import Settings
from mm_broker.core.provenance import Provenance

#: Alert folders used, relative to the data directory.
ALERT_FOLDERS = ("alerts/ztf/avro", "alerts/lsst/avro")


def bench_pipeline(settings: Settings, n_alerts: int = 40_000, fink: int = 1) -> dict[str, Any]:
    """Alerts per second through decode + flags + annotation in Spark.

    The real Avro alerts of the shared data (ZTF and LSST) are cycled to ``n_alerts``
    payloads in a DataFrame (cached before the clock starts), then the fink_core
    ``mapInPandas`` enrichment runs over them and its output is counted.

    Parameters
    ----------
    settings : Settings
        Configuration (Spark master, data and catalogue folders).
    n_alerts : int, optional
        Alerts to process (rounded down to a whole number of copies of the pool).
    fink : int, optional
        1 (default): with Fink's science modules (:mod:`fink_core.fink_science`);
        0: without them (their columns null), to measure what they cost.

    Returns
    -------
    dict
        ``alerts_per_s``, ``alerts_per_s_per_core`` (over Spark's default
        parallelism), ``seconds``, ``alerts``, ``rows_out``, ``spark_master``,
        ``spark_parallelism``, ``goal_alerts_per_s``, ``fink_modules``, ``catalogues`` and
        :func:`~benchmarks.common.machine`.
    """
    files = alert_files([settings.data_dir / folder for folder in ALERT_FOLDERS])
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
    provenance = Provenance.from_settings(settings, catalogues, rule_versions())
    t0 = time.perf_counter()
    n_out = enriched_stream(spark, df, catalogues, provenance, fink=bool(fink)).count()
    dt = time.perf_counter() - t0
    df.unpersist()
    rate = n_alerts / dt
    return {"benchmark": "pipeline", **machine(), "spark_master": spark.sparkContext.master,
            "spark_parallelism": cores, "alerts": n_alerts, "rows_out": int(n_out),
            "seconds": round(dt, 2), "alerts_per_s": round(rate, 1),
            "alerts_per_s_per_core": round(rate / cores, 1),
            # Goals: 1,700/s without Fink's modules, 1,000/s with them (issue 16).
            "goal_alerts_per_s": 1000 if fink else 1700, "fink_modules": bool(fink),
            "catalogues": [c.key for c in catalogues]}


def _payloads(data_dir: Path) -> list[bytes]:
    files = sorted(p for folder in ALERT_FOLDERS for p in (data_dir / folder).rglob("*.avro"))
    return [p.read_bytes() for p in files]


def run_pandas(
    n_alerts: int, data_dir: str | Path | None = None, batch_size: int = 5000
) -> dict[str, Any]:
    """Measure decode + flags + annotation throughput on one core, without Spark.

    Reading files and loading catalogues happen before the clock starts; the alerts
    are processed in batches as ``mapInPandas`` would, in this process,
    single-threaded.

    Parameters
    ----------
    n_alerts : int
        Number of alerts to process (the real Avro alerts, cycled).
    data_dir : str or Path, optional
        Root of the shared data; default the configured ``data_dir``
        (:func:`mm_broker.core.config.load`).
    batch_size : int, optional
        Alerts per batch (as ``spark.sql.execution.arrow.maxRecordsPerBatch``).

    Returns
    -------
    dict
        ``alerts_per_s`` (decode + annotation, wall clock), ``decode_alerts_per_s``,
        ``annotate_alerts_per_s``, ``cpu_alerts_per_s`` (process CPU time), the
        seconds spent in each part, the alert mix, the catalogues, ``units`` and the
        machine's core count (``machine_cores``; the benchmark uses one).

    Raises
    ------
    ValueError
        If ``n_alerts`` is not positive.
    FileNotFoundError
        If there is no Avro alert under the data directory.
    """
    if n_alerts <= 0:
        raise ValueError("n_alerts must be positive")
    root = Path(config.load().data_dir if data_dir is None else data_dir)
    pool = _payloads(root)
    if not pool:
        raise FileNotFoundError(f"no Avro alerts under {root}")
    payloads = [pool[i % len(pool)] for i in range(n_alerts)]

    t0 = time.perf_counter()
    catalogues = load_default_catalogues(root / "catalogues")
    load_s = time.perf_counter() - t0

    decode_s = annotate_s = 0.0
    n_ztf = n_lsst = n_failed = 0
    cpu0 = time.process_time()
    for start in range(0, n_alerts, batch_size):
        batch = payloads[start : start + batch_size]
        t1 = time.perf_counter()
        frame, failures = decode_payloads(batch)
        t2 = time.perf_counter()
        annotated = annotate(frame, catalogues)
        t3 = time.perf_counter()
        decode_s += t2 - t1
        annotate_s += t3 - t2
        n_failed += len(failures)
        n_ztf += int((annotated["survey"] == "ztf").sum())
        n_lsst += int((annotated["survey"] == "lsst").sum())
    cpu_s = time.process_time() - cpu0
    total_s = decode_s + annotate_s
    return {
        "benchmark": "fink_core.pipeline_pandas",
        "n_alerts": n_alerts,
        "batch_size": batch_size,
        "alerts_per_s": n_alerts / total_s,
        "decode_alerts_per_s": n_alerts / decode_s,
        "annotate_alerts_per_s": n_alerts / annotate_s,
        "cpu_alerts_per_s": n_alerts / cpu_s if cpu_s > 0 else float("nan"),
        "decode_s": decode_s,
        "annotate_s": annotate_s,
        "catalogue_load_s": load_s,
        "mix": {"ztf": n_ztf, "lsst": n_lsst, "failed": n_failed},
        "catalogues": {c.key: len(c) for c in catalogues},
        "units": {
            "alerts_per_s": "alerts/s (wall clock, one core)",
            "decode_s": "s",
            "annotate_s": "s",
            "catalogue_load_s": "s",
        },
        "cores_used": 1,
        "machine_cores": os.cpu_count(),
    }
