"""``mm-broker bench join``: the in-memory join against the bare numpy limit.

:func:`run_join_bench` builds realistic active regions — a few gravitational-wave-like
regions (unions of many cones of 0.2–6° along an arc, at order 14: tens of thousands
of ranges each) and gamma-ray-burst circles of 1–15° radius (order 10) — draws alerts
uniformly over the ZTF sky (declination above −30°), and times, single-threaded,
in the same run:

* the join: order-29 index of every alert (:func:`~coincidence.index.ipix29`) and
  :meth:`~coincidence.index.ActiveRegions.match` (every containing region);
* the bare limit: the same order-29 index and one :func:`numpy.searchsorted` over the
  merged boundaries (which gives an interval, not yet the regions).

Each figure is the best of ``repeats`` runs. Per-core figures divide by the CPU time
of the process (the work is single-threaded, so CPU time is the time of one core and
does not count waits for other processes on a shared machine); the ``wall_*`` figures
divide by wall-clock time. Run ``mm-broker bench join --json [--param n_alerts=N]``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import astropy.units as u
import numpy as np
import numpy.typing as npt
from mocpy import MOC

from benchmarks.common import best_time, machine
from coincidence.index import ActiveRegions, RegionEntry, ipix29
from mm_broker.core.config import Settings
from mm_broker.core.models import Region

_EMPTY_RANGES = np.zeros((0, 2), dtype=np.int64)


def _region(moc: MOC, kind: str) -> Region:
    return Region(
        kind=kind,
        ranges=np.asarray(moc.to_depth29_ranges, dtype=np.int64),
        area_deg2=float(moc.sky_fraction) * 41252.96124941928,
        credible_level=0.9,
        tile_ranges=_EMPTY_RANGES,
        tile_credible_level=np.zeros(0),
        tile_density_deg2=np.zeros(0),
    )


def gw_like_region(rng: np.random.Generator, n_cones: int = 200, depth: int = 14) -> Region:
    """A multi-scale, irregular region like an LVK 90 % region (hundreds of deg²).

    Union of ``n_cones`` cones of radii 0.2–6° (log-uniform) scattered along a
    random 40–80° arc, at order ``depth``.
    """
    ra0, dec0 = rng.uniform(0.0, 360.0), rng.uniform(-30.0, 60.0)
    length, angle = rng.uniform(40.0, 80.0), rng.uniform(0.0, np.pi)
    s = rng.uniform(-0.5, 0.5, n_cones) * length
    ra = ra0 + s * np.cos(angle) / max(np.cos(np.radians(dec0)), 0.3) + rng.normal(0, 2, n_cones)
    dec = np.clip(dec0 + s * np.sin(angle) + rng.normal(0, 2, n_cones), -89.0, 89.0)
    radius = np.exp(rng.uniform(np.log(0.2), np.log(6.0), n_cones))
    moc = MOC.from_cones(
        lon=(ra % 360.0) * u.deg,
        lat=dec * u.deg,
        radius=radius * u.deg,
        max_depth=depth,
        union_strategy="large_cones",
    )
    return _region(moc, "skymap")


def circle_region(rng: np.random.Generator, depth: int = 10) -> Region:
    """A GRB-like circle of radius 1–15° at order ``depth``."""
    moc = MOC.from_cone(
        lon=rng.uniform(0.0, 360.0) * u.deg,
        lat=np.degrees(np.arcsin(rng.uniform(-0.5, 1.0))) * u.deg,
        radius=rng.uniform(1.0, 15.0) * u.deg,
        max_depth=depth,
    )
    return _region(moc, "circle")


def run_join_bench(
    n_alerts: int = 2_000_000,
    n_regions: int = 100,
    n_gw: int = 5,
    seed: int = 0,
    repeats: int = 3,
    gw_depth: int = 14,
) -> dict[str, Any]:
    """Time the join against the bare order-29 index + one binary search.

    Parameters
    ----------
    n_alerts : int
        Alerts per run.
    n_regions : int
        Active regions, of which ``n_gw`` are GW-like and the rest circles.
    n_gw : int
        GW-like regions.
    seed : int
        Seed of the random regions and alerts.
    repeats : int
        Runs per figure (the best is kept).
    gw_depth : int
        HEALPix order of the GW-like regions (14: ~20-35k ranges each; 15: ~2x).

    Returns
    -------
    dict
        ``alerts_per_s_per_core`` (join, order-29 index included),
        ``limit_alerts_per_s_per_core`` (bare index + one searchsorted), ``ratio``
        (join / limit), the same three for the search part alone (``search_*``,
        order-29 index excluded), the sizes of the structure, ``cores`` (of the
        machine; the run uses one), ``units``.
    """
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    gw = [gw_like_region(rng, depth=gw_depth) for _ in range(min(n_gw, n_regions))]
    circles = [circle_region(rng) for _ in range(n_regions - len(gw))]
    regions_s = time.perf_counter() - start
    entries = [RegionEntry(k, r, 0, 1) for k, r in enumerate(gw + circles)]
    start = time.perf_counter()
    index = ActiveRegions(entries)
    build_s = time.perf_counter() - start

    ra = rng.uniform(0.0, 360.0, n_alerts)
    dec = np.degrees(np.arcsin(rng.uniform(-0.5, 1.0, n_alerts)))
    pix = ipix29(ra, dec)
    bounds = index.bounds

    def join() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        return index.match(ipix29(ra, dec))

    def limit() -> npt.NDArray[np.intp]:
        return np.searchsorted(bounds, ipix29(ra, dec), side="right")

    def search() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        return index.match(pix)

    def search_limit() -> npt.NDArray[np.intp]:
        return np.searchsorted(bounds, pix, side="right")

    # Same answer both ways (the table only accelerates the search).
    if not np.array_equal(index.locate(pix), search_limit() - 1):
        raise AssertionError("accelerated lookup disagrees with searchsorted")
    alert_idx, _ = join()

    t_join, w_join = best_time(join, repeats)
    t_limit, w_limit = best_time(limit, repeats)
    t_search, w_search = best_time(search, repeats)
    t_search_limit, w_search_limit = best_time(search_limit, repeats)
    gw_ranges = [len(r.ranges) for r in gw]
    return {
        "alerts_per_s_per_core": n_alerts / t_join,
        "limit_alerts_per_s_per_core": n_alerts / t_limit,
        "ratio": t_limit / t_join,
        "search_alerts_per_s_per_core": n_alerts / t_search,
        "search_limit_alerts_per_s_per_core": n_alerts / t_search_limit,
        "search_ratio": t_search_limit / t_search,
        "wall_alerts_per_s": n_alerts / w_join,
        "wall_limit_alerts_per_s": n_alerts / w_limit,
        "wall_search_alerts_per_s": n_alerts / w_search,
        "wall_search_limit_alerts_per_s": n_alerts / w_search_limit,
        "n_alerts": n_alerts,
        "n_regions": n_regions,
        "n_gw_regions": len(gw),
        "gw_ranges_min": min(gw_ranges, default=0),
        "gw_ranges_max": max(gw_ranges, default=0),
        "n_ranges": index.n_ranges,
        "n_boundaries": len(bounds),
        "n_intervals": index.n_intervals,
        "csr_entries": len(index.indices),
        "pairs": len(alert_idx),
        "alerts_matched_fraction": len(np.unique(alert_idx)) / n_alerts,
        "build_s": build_s,
        "regions_s": regions_s,
        "repeats": repeats,
        "threads": 1,
        "cores": os.cpu_count(),
        "units": {
            "alerts_per_s_per_core": "alerts per CPU-second (one thread)",
            "limit_alerts_per_s_per_core": "alerts per CPU-second (one thread)",
            "ratio": "join throughput / limit throughput",
            "search_alerts_per_s_per_core": "alerts per CPU-second, order-29 index excluded",
            "search_limit_alerts_per_s_per_core": "alerts per CPU-second, index excluded",
            "wall_alerts_per_s": "alerts per wall-clock second (other load included)",
            "wall_limit_alerts_per_s": "alerts per wall-clock second",
            "wall_search_alerts_per_s": "alerts per wall-clock second, index excluded",
            "wall_search_limit_alerts_per_s": "alerts per wall-clock second, index excluded",
            "build_s": "s",
            "regions_s": "s",
            "alerts_matched_fraction": "fraction of alerts in at least one region",
        },
    }


def bench_join(settings: Settings, n_alerts: int = 2_000_000, n_regions: int = 100,
               n_gw: int = 5, seed: int = 0, repeats: int = 3,
               gw_depth: int = 14) -> dict[str, Any]:
    """Registry entry of ``mm-broker bench join``: :func:`run_join_bench` with the
    machine's description.

    Parameters
    ----------
    settings : Settings
        Unused (the join needs no service); the registry passes it to every benchmark.
    n_alerts, n_regions, n_gw, seed, repeats, gw_depth
        As :func:`run_join_bench`.

    Returns
    -------
    dict
        ``benchmark``, :func:`~benchmarks.common.machine` and the figures of
        :func:`run_join_bench`.
    """
    return {"benchmark": "join", **machine(),
            **run_join_bench(n_alerts, n_regions, n_gw, seed, repeats, gw_depth)}
