"""Regions and alerts for the coincidence tests, built directly with healpy and mocpy.

These helpers make :class:`~mm_broker.core.models.Region` values the way the contract
describes them (order-29 nested ranges of IPIX_DTYPE, tiles with credible level and
density) without :mod:`skymaps`, so that the engine's figures (which come from the
model of :mod:`skymaps`) are checked against regions built independently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import astropy.units as u
import healpy as hp
import numpy as np
import numpy.typing as npt
import pandas as pd
from mocpy import MOC

from coincidence.rules import DAY_S, Window
from mm_broker.core.models import IPIX_DTYPE, Messenger, Region

DEG2_PER_SR = (180.0 / math.pi) ** 2
SKY_DEG2 = 4.0 * math.pi * DEG2_PER_SR
#: r90 / sigma of a flat 2-D Gaussian: sqrt(2 ln 10).
R90_PER_SIGMA = math.sqrt(2.0 * math.log(10.0))
EMPTY = np.zeros((0, 2), dtype=IPIX_DTYPE)
T0 = datetime(2024, 1, 15, 8, 0, 0, tzinfo=UTC)
#: The contract window [t0 - 600 s, t0 + 20 d], newness 600 s (the defaults of
#: mm_broker/default.toml, written out: a Window has no defaults of its own).
CONTRACT_WINDOW = Window(before_s=600.0, after_s=20 * DAY_S, newness_s=600.0)
#: The contract window for every messenger, as the engine takes them.
WINDOWS = {m: CONTRACT_WINDOW for m in Messenger}


def cells_to_ranges(order: int, cells: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Sorted, merged order-29 ranges of nested cells of one order."""
    pix = np.unique(np.asarray(cells, dtype=np.int64))
    if len(pix) == 0:
        return EMPTY.copy()
    shift = 2 * (29 - order)
    lo, hi = pix << shift, (pix + 1) << shift
    breaks = np.flatnonzero(lo[1:] != hi[:-1]) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [len(pix)])) - 1
    return np.stack([lo[starts], hi[ends]], axis=1).astype(IPIX_DTYPE)


def circle_region(ra: float, dec: float, radius90_deg: float, depth: int = 13) -> Region:
    """A 90 % circle with a Gaussian model (sigma = r90 / sqrt(2 ln 10)) as a MOC."""
    moc = MOC.from_cone(
        lon=ra * u.deg, lat=dec * u.deg, radius=radius90_deg * u.deg, max_depth=depth
    )
    return Region(
        kind="circle",
        ranges=np.asarray(moc.to_depth29_ranges, dtype=IPIX_DTYPE),
        area_deg2=float(moc.sky_fraction) * SKY_DEG2,
        credible_level=0.9,
        tile_ranges=EMPTY,
        tile_credible_level=np.zeros(0),
        tile_density_deg2=np.zeros(0),
        center_ra=ra,
        center_dec=dec,
        radius90_deg=radius90_deg,
        sigma_deg=radius90_deg / R90_PER_SIGMA,
        convention="test: 90 % radius, Gaussian",
    )


def gaussian_map_region(
    lobes: Sequence[tuple[float, float, float, float]],
    order: int = 9,
    level: float = 0.9,
    extent_deg: float = 20.0,
) -> Region:
    """A map region from a mixture of Gaussian lobes ``(ra, dec, sigma_deg, weight)``.

    Tiles are the order-``order`` pixels within ``extent_deg`` of the first lobe; the
    credible level of a tile is the cumulative probability of all tiles at least as
    dense (inclusive); the region is the tiles at level <= ``level``.
    """
    nside = 2**order
    ra0, dec0 = lobes[0][0], lobes[0][1]
    vec = hp.ang2vec(ra0, dec0, lonlat=True)
    pix = np.sort(hp.query_disc(nside, vec, math.radians(extent_deg), nest=True))
    pra, pdec = hp.pix2ang(nside, pix, nest=True, lonlat=True)
    dens = np.zeros(len(pix))
    for ra, dec, sigma, weight in lobes:
        r = _sep(ra, dec, pra, pdec)
        dens += weight * np.exp(-0.5 * (r / sigma) ** 2) / (2 * math.pi * sigma**2)
    pix_area = hp.nside2pixarea(nside, degrees=True)
    prob = dens * pix_area
    prob /= prob.sum()
    order_desc = np.argsort(-prob, kind="stable")
    levels = np.empty(len(pix))
    levels[order_desc] = np.cumsum(prob[order_desc])
    inside = pix[levels <= level]
    shift = 2 * (29 - order)
    tiles = np.stack([pix << shift, (pix + 1) << shift], axis=1).astype(IPIX_DTYPE)
    return Region(
        kind="skymap",
        ranges=cells_to_ranges(order, inside),
        area_deg2=len(inside) * pix_area,
        credible_level=level,
        tile_ranges=tiles,
        tile_credible_level=levels,
        tile_density_deg2=prob / pix_area,
        convention="test: Gaussian lobes",
    )


def _sep(
    ra1: float, dec1: float, ra2: npt.ArrayLike, dec2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    v1 = hp.ang2vec(ra1, dec1, lonlat=True)
    v2 = hp.ang2vec(np.asarray(ra2), np.asarray(dec2), lonlat=True)
    return np.degrees(np.arccos(np.clip(v2 @ v1, -1.0, 1.0)))


def random_in_cap(
    rng: np.random.Generator, n: int, ra: float, dec: float, radius_deg: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``n`` positions uniform on the sphere within ``radius_deg`` of (ra, dec)."""
    cos_r = math.cos(math.radians(radius_deg))
    z = rng.uniform(cos_r, 1.0, n)
    phi = rng.uniform(0.0, 2 * math.pi, n)
    s = np.sqrt(1.0 - z**2)
    local = np.stack([s * np.cos(phi), s * np.sin(phi), z], axis=1)
    # Rotate the pole to (ra, dec).
    a, d = math.radians(ra), math.radians(dec)
    east = np.array([-math.sin(a), math.cos(a), 0.0])
    north = np.array([-math.sin(d) * math.cos(a), -math.sin(d) * math.sin(a), math.cos(d)])
    centre = np.array([math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d)])
    xyz = local[:, :1] * east + local[:, 1:2] * north + local[:, 2:3] * centre
    lon, lat = hp.vec2ang(xyz, lonlat=True)
    return np.asarray(lon), np.asarray(lat)


def cap_area_deg2(radius_deg: float) -> float:
    """Area of a spherical cap, deg²."""
    return 2 * math.pi * (1 - math.cos(math.radians(radius_deg))) * DEG2_PER_SR


def alerts_frame(rows: Sequence[dict[str, object]]) -> pd.DataFrame:
    """An alerts DataFrame from dicts with ``alert_id, ra, dec, dt`` (timedelta from
    :data:`T0`) and optional ``object_id``, ``first_dt`` (default ``dt``),
    ``quality``, ``survey``."""
    records = []
    for row in rows:
        dt = row["dt"]
        assert isinstance(dt, timedelta)
        first_dt = row.get("first_dt", dt)
        assert isinstance(first_dt, timedelta)
        records.append(
            {
                "alert_id": str(row["alert_id"]),
                "object_id": str(row.get("object_id", f"obj-{row['alert_id']}")),
                "survey": row.get("survey", "ZTF"),
                "ra": float(row["ra"]),  # type: ignore[arg-type]
                "dec": float(row["dec"]),  # type: ignore[arg-type]
                "alert_time": T0 + dt,
                "first_detection_time": T0 + first_dt,
                "quality": bool(row.get("quality", True)),
            }
        )
    frame = pd.DataFrame.from_records(records)
    for col in ("alert_time", "first_detection_time"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def multiorder_map_region(
    uniq: npt.ArrayLike, probdensity_per_sr: npt.ArrayLike, level: float = 0.9
) -> Region:
    """A map region from a multi-order (UNIQ, PROBDENSITY per sr) sky map.

    Tiles are the map's pixels as order-29 ranges; the credible level of a tile is
    the cumulative probability of all tiles at least as dense (inclusive).
    """
    uniq_arr = np.asarray(uniq, dtype=np.int64)
    dens = np.asarray(probdensity_per_sr, dtype=np.float64)
    order = (np.floor(np.log2(uniq_arr / 4)) // 2).astype(np.int64)
    ipix = uniq_arr - 4 * (1 << (2 * order))
    shift = 2 * (29 - order)
    lo, hi = ipix << shift, (ipix + 1) << shift
    area_sr = 4 * math.pi / (12 * 4.0**order)
    prob = dens * area_sr
    desc = np.argsort(-dens, kind="stable")
    levels = np.empty(len(dens))
    levels[desc] = np.cumsum(prob[desc])
    inside = levels <= level
    sel = np.argsort(lo[inside])
    lo_in, hi_in = lo[inside][sel], hi[inside][sel]
    breaks = np.flatnonzero(lo_in[1:] != hi_in[:-1]) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [len(lo_in)])) - 1
    ranges = np.stack([lo_in[starts], hi_in[ends]], axis=1).astype(IPIX_DTYPE)
    return Region(
        kind="skymap",
        ranges=ranges,
        area_deg2=float(area_sr[inside].sum() * DEG2_PER_SR),
        credible_level=level,
        tile_ranges=np.stack([lo, hi], axis=1).astype(IPIX_DTYPE),
        tile_credible_level=levels,
        tile_density_deg2=dens / DEG2_PER_SR,
        convention="test: multi-order map, greedy 90 %",
    )
