"""Micro-benchmark of the pure-pandas alert path on one core.

Measures decode (Avro bytes -> model DataFrame) and annotation (quality flags,
context, features, cross-matches against the default catalogues, classification) on
the real alerts of the shared data, cycled to the requested count and processed in
batches as ``mapInPandas`` would. Reading files and loading catalogues happen before
the clock starts. Everything runs in this process, single-threaded.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from fink_core.annotate import annotate
from fink_core.catalogues import load_default_catalogues
from fink_core.decode import decode_payloads

#: Alert folders used, relative to the data directory.
ALERT_FOLDERS = ("alerts/ztf/avro", "alerts/lsst/avro")


def _payloads(data_dir: Path) -> list[bytes]:
    files = sorted(p for folder in ALERT_FOLDERS for p in (data_dir / folder).rglob("*.avro"))
    return [p.read_bytes() for p in files]


def run(
    n_alerts: int, data_dir: str | Path | None = None, batch_size: int = 5000
) -> dict[str, Any]:
    """Measure decode + flags + annotation throughput.

    Parameters
    ----------
    n_alerts : int
        Number of alerts to process (the 828 real Avro alerts, cycled).
    data_dir : str or Path, optional
        Root of the shared data; default the configured ``data_dir``
        (``mm_broker.core.config``).
    batch_size : int, optional
        Alerts per batch (as ``spark.sql.execution.arrow.maxRecordsPerBatch``).

    Returns
    -------
    dict
        ``alerts_per_s`` (decode + annotation, wall clock), ``decode_alerts_per_s``,
        ``annotate_alerts_per_s``, ``cpu_alerts_per_s`` (process CPU time), the
        seconds spent in each part, the alert mix, the catalogues, ``units`` and the
        machine's core count (``machine_cores``; the benchmark uses one).
    """
    if n_alerts <= 0:
        raise ValueError("n_alerts must be positive")
    if data_dir is None:
        from mm_broker.core import config

        data_dir = config.load().data_dir
    root = Path(data_dir)
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
