"""Helpers shared by the benchmarks: what the figures were measured on, timing,
percentiles, and the JSON output of ``mm-broker bench``.

Every benchmark returns a dict of figures whose key names carry their units
(``_ms``, ``_s``, ``_per_s``, ``_mb``) and includes :func:`machine`, so one JSON
object says what was measured and on how many cores.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def machine() -> dict[str, Any]:
    """What the figures were measured on.

    Returns
    -------
    dict
        ``cores`` (``os.cpu_count()``), ``loadavg_1min`` (the machine's load when the
        figures were taken: a shared machine shows up there) and ``measured_at``
        (ISO 8601 UTC).
    """
    load = os.getloadavg()
    return {"cores": os.cpu_count(), "loadavg_1min": round(load[0], 2),
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}


def percentiles(samples: list[float]) -> dict[str, float]:
    """Median and 95th percentile of durations.

    Parameters
    ----------
    samples : list of float
        Durations in seconds (at least one).

    Returns
    -------
    dict
        ``median_ms``, ``p95_ms`` (the nearest-rank sample at 95 %), ``n``.
    """
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"median_ms": round(statistics.median(ordered) * 1e3, 2),
            "p95_ms": round(p95 * 1e3, 2), "n": len(ordered)}


def latency_figures(name: str, samples: list[float]) -> dict[str, Any]:
    """Latency figures in seconds under the prefix ``name``.

    Parameters
    ----------
    name : str
        Key prefix, e.g. ``latency``.
    samples : list of float
        Latencies in seconds (may be empty).

    Returns
    -------
    dict
        ``{name}_p50_s``, ``{name}_p95_s``, ``{name}_max_s``, ``{name}_n``; the
        figures are ``None`` (and ``_max_s`` absent) without samples.
    """
    if not samples:
        return {f"{name}_p50_s": None, f"{name}_p95_s": None, f"{name}_n": 0}
    stats = percentiles(samples)
    return {f"{name}_p50_s": round(stats["median_ms"] / 1e3, 3),
            f"{name}_p95_s": round(stats["p95_ms"] / 1e3, 3),
            f"{name}_max_s": round(max(samples), 3), f"{name}_n": len(samples)}


def best_time(func: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best CPU time and best wall time of ``repeats`` calls.

    Parameters
    ----------
    func : callable
        Called without arguments ``repeats`` times.
    repeats : int
        Number of calls (at least one).

    Returns
    -------
    tuple of float
        ``(cpu_s, wall_s)``: the shortest process CPU time and the shortest
        wall-clock time of one call, seconds. For single-threaded work the CPU time is
        the time of one core and leaves out waits for other processes.
    """
    best_cpu = best_wall = float("inf")
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        func()
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return best_cpu, best_wall


def dumps(figures: dict[str, Any], compact: bool = True) -> str:
    """The JSON text of a benchmark's figures.

    Parameters
    ----------
    figures : dict
        What a benchmark returned (JSON-serialisable).
    compact : bool, optional
        One line (``--json``) or indented.

    Returns
    -------
    str
        One JSON object.
    """
    return json.dumps(figures, indent=None if compact else 2)
