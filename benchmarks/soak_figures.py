"""The figures of ``mm-broker bench soak`` from its samples (pure; no I/O).

A sample (:class:`benchmarks.soak._Sampler`) is a dict with ``t`` (s since the first
alert was sent), ``end``/``processed``/``raw``/``lag`` (offsets), ``rss`` (MiB by
role), ``ticks`` (pid → (role, CPU ticks)), ``machine`` ((busy, total) ticks),
``kafka_ticks``, ``bench_s`` (CPU seconds of the benchmark process), ``load`` and
``free_gb``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from benchmarks.procstat import cpu_by_role

#: Process roles of the service's tree (:func:`benchmarks.procstat.service_usage`).
ROLES = ("total", "driver", "jvm", "python_workers")


def window_figures(samples: list[dict[str, Any]], final: dict[str, Any],
                   end_of_sending: dict[str, Any] | None, warm: float,
                   duration: float, clk: int | None = None) -> dict[str, Any]:
    """Throughput, lag, RSS and CPU figures from the samples.

    Windows (sample indices): from the first sample after the warm-up to the drained
    sample, or, if the backlog was not drained, to the first sample showing the last
    micro-batch committed; the steady window (CPU) also ends with the sending. RSS at
    start and end are medians over ``min(60 s, duration / 5)``: the JVM's heap breathes
    by a GB or more between two samples, so one sample would say little.

    Parameters
    ----------
    samples : list of dict
        Every sample, in time order.
    final : dict
        The last sample (drained, or given up).
    end_of_sending : dict or None
        The sample taken when the producer finished (one of ``samples``).
    warm : float
        Seconds of warm-up, left out of the windows.
    duration : float
        Planned seconds of sending.
    clk : int, optional
        CPU ticks per second (default ``os.sysconf("SC_CLK_TCK")``).

    Returns
    -------
    dict
        ``processed_per_s``, ``processed_per_min``, ``processed_window_s``, the
        ``lag_*`` and ``rss_*`` figures, ``cpu_steady_window_s`` and ``cpu_steady``.
    """
    a = next((k for k, x in enumerate(samples) if x["t"] >= warm), 0)
    z = len(samples) - 1
    if final["lag"] != 0:
        z = next(k for k, x in enumerate(samples) if x["processed"] == final["processed"])
    z = max(a, z)
    e = z if end_of_sending is None else max(a, min(z, samples.index(end_of_sending)))
    steady_from, steady_to = samples[a], samples[e]
    span = max(1e-9, steady_to["t"] - steady_from["t"])
    busy, total = (q - p for p, q in zip(steady_from["machine"], steady_to["machine"],
                                         strict=True))
    rw = min(60.0, duration / 5)
    windows = {"start": [x for x in samples
                         if steady_from["t"] <= x["t"] <= steady_from["t"] + rw],
               "end": [x for x in samples if x["t"] >= final["t"] - rw]}
    rss = {w: {r: round(float(np.median([x["rss"][r] for x in win])), 1) for r in ROLES}
           for w, win in windows.items()}

    def growth(role: str) -> float | None:
        first = rss["start"][role]
        return round((rss["end"][role] - first) / first * 100, 1) if first else None

    processed_per_s = ((samples[z]["processed"] - steady_from["processed"])
                       / max(1e-9, samples[z]["t"] - steady_from["t"]))
    clk = os.sysconf("SC_CLK_TCK") if clk is None else clk
    spent = cpu_by_role([x["ticks"] for x in samples[a:e + 1]])
    cpu = {f"service_{role}_cores": round(spent.get(role, 0) / clk / span, 2)
           for role in ROLES}
    cpu["kafka_cores"] = round((steady_to["kafka_ticks"] - steady_from["kafka_ticks"])
                               / clk / span, 2)
    cpu["bench_producer_cores"] = round((steady_to["bench_s"] - steady_from["bench_s"]) / span,
                                        2)
    cpu["machine_busy_cores"] = round((os.cpu_count() or 1) * busy / max(total, 1), 2)
    cpu["other_processes_cores"] = round(cpu["machine_busy_cores"] - cpu["service_total_cores"]
                                         - cpu["kafka_cores"] - cpu["bench_producer_cores"], 2)
    cpu["loadavg_1min_max"] = max(x["load"] for x in samples)
    return {
        "processed_per_s": round(processed_per_s, 1),
        "processed_per_min": round(processed_per_s * 60, 1),
        "processed_window_s": [steady_from["t"], samples[z]["t"]],
        "lag_definition": "alert topic end offsets minus the offsets of the last "
                          "micro-batch the coincidence query committed (its checkpoint)",
        "lag_samples": [[x["t"], x["lag"]] for x in samples],
        "lag_max": max(s["lag"] for s in samples),
        "lag_at_end_of_sending": steady_to["lag"], "lag_final": final["lag"],
        "raw_lag_final": final["end"] - final["raw"],
        "rss_samples_columns": ["t_s", "total_mb", "driver_mb", "jvm_mb", "python_workers_mb"],
        "rss_samples": [[x["t"], x["rss"]["total"], x["rss"]["driver"], x["rss"]["jvm"],
                         x["rss"]["python_workers"]] for x in samples],
        "rss_definition": "median of the samples in the first min(60 s, duration/5) after "
                          "the warm-up (start) and in the same length up to the drained "
                          "sample (end)",
        "rss_start_window_s": [windows["start"][0]["t"], windows["start"][-1]["t"]],
        "rss_end_window_s": [windows["end"][0]["t"], windows["end"][-1]["t"]],
        "rss_start_mb": rss["start"]["total"], "rss_end_mb": rss["end"]["total"],
        "rss_growth_pct": growth("total"),
        "rss_start_by_process_mb": {r: rss["start"][r] for r in ROLES[1:]},
        "rss_end_by_process_mb": {r: rss["end"][r] for r in ROLES[1:]},
        "rss_growth_by_process_pct": {r: growth(r) for r in ROLES[1:]},
        "cpu_steady_window_s": [steady_from["t"], steady_to["t"]], "cpu_steady": cpu,
    }


def batch_figures(batches: list[tuple[float, int]]) -> dict[str, Any]:
    """Size and pace of the micro-batches logged after the warm-up.

    Parameters
    ----------
    batches : list of tuple
        ``(t_s, alerts)`` of each micro-batch (:func:`benchmarks.scratch_service.batch_log`).

    Returns
    -------
    dict
        ``count``, ``alerts_max``, ``alerts_mean``, ``interval_s_mean``,
        ``interval_s_max`` and ``alerts_per_s`` (``None`` without two batches).
    """
    gaps = np.diff([b[0] for b in batches]) if len(batches) > 1 else np.zeros(0)
    return {
        "count": len(batches), "alerts_max": max((b[1] for b in batches), default=0),
        "alerts_mean": round(float(np.mean([b[1] for b in batches])), 1) if batches
        else 0.0, "interval_s_mean": round(float(gaps.mean()), 2) if len(gaps) else None,
        "interval_s_max": round(float(gaps.max()), 2) if len(gaps) else None,
        # each batch's alerts over the time since the previous one completed
        "alerts_per_s": round(sum(b[1] for b in batches[1:]) / float(gaps.sum()), 1)
        if len(gaps) and gaps.sum() > 0 else None}
