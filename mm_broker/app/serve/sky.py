"""Sky geometry for the portal: the cone search, the map's cells, MOC downloads.

The probability model is :mod:`skymaps`'s (the one model of mm_broker): the cone
search finds the regions holding a position in SQL (the GiST index of
``region_ranges``) and asks :func:`skymaps.credible_level_at` for the level, with the
region rebuilt from its row and the one tile that holds the position.

The map of an event page is drawn by the browser (``static/skymap.js``) from
:func:`map_geometry`: the region's MOC, and the 50 % part of a sky map, as HEALPix
cells (corner coordinates) at an order coarse enough to stay a few thousand
polygons; circles also as their 50 % and 90 % radii. No survey image and no CDN.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import healpy as hp
import numpy as np
from mocpy import MOC
from sqlalchemy import Connection, text

import skymaps
from mm_broker.core.models import IPIX_DTYPE, Region
from skymaps import fisher
from skymaps.moc_io import moc_order

#: Order-29 nside.
NSIDE29 = 1 << 29
#: Most cells of one contour sent to the browser.
MAX_CELLS = 3000
#: Vertices per cell edge of the drawn cells (1: the four corners).
EDGE_STEP = 1


def ipix29(ra: float, dec: float) -> int:
    """Order-29 nested HEALPix index of a position (degrees)."""
    return int(hp.ang2pix(NSIDE29, ra, dec, nest=True, lonlat=True))


def _region_of(row: Any, tile: Any | None) -> Region:
    empty = np.zeros((0, 2), dtype=IPIX_DTYPE)
    tiles = empty if tile is None else np.array([[tile.rng.lower, tile.rng.upper]],
                                                dtype=IPIX_DTYPE)
    return Region(kind=row.kind, ranges=empty, area_deg2=row.area_deg2,
                  credible_level=row.credible_level, tile_ranges=tiles,
                  tile_credible_level=np.array([] if tile is None else
                                               [tile.credible_level], dtype=float),
                  tile_density_deg2=np.array([] if tile is None else
                                             [tile.density_deg2], dtype=float),
                  center_ra=row.center_ra, center_dec=row.center_dec,
                  radius90_deg=row.radius90_deg, sigma_deg=row.sigma_deg)


def cone(conn: Connection, ra: float, dec: float, at: datetime | None,
         ) -> list[dict[str, Any]]:
    """The active regions that contain a position (at a time), with its level there.

    Parameters
    ----------
    conn : Connection
    ra, dec : float
        ICRS degrees (validated by the caller).
    at : datetime or None
        Keep events whose active window holds this time; ``None``: every active event.

    Returns
    -------
    list of dict
        ``event_id``, messenger, mission, trigger time, region version and kind, area,
        ``credible_level`` and ``prob_density_deg2`` at the position, and
        ``separation_deg`` from a circle's centre; most probable (lowest level) first.
    """
    ipix = ipix29(ra, dec)
    window = "" if at is None else "AND e.window_start <= :t AND e.window_end >= :t"
    rows = conn.execute(text(f"""
        SELECT e.event_id, e.messenger, e.mission, e.trigger_time, r.id, r.version, r.kind,
               r.area_deg2, r.credible_level, r.center_ra, r.center_dec, r.radius90_deg,
               r.sigma_deg
        FROM region_ranges rr JOIN regions r ON r.id = rr.region_id
        JOIN events e ON e.active_region_id = r.id
        WHERE rr.rng @> CAST(:ipix AS bigint) AND e.status = 'active' {window}
        """), {"ipix": ipix, "t": at}).all()  # noqa: S608  (a fixed fragment; values bound)
    out = []
    for row in rows:
        tile = None
        if row.kind != "circle":
            tile = conn.execute(text("""SELECT rng, credible_level, density_deg2
                FROM region_tiles WHERE region_id = :id AND rng @> CAST(:ipix AS bigint)
                LIMIT 1"""), {"id": row.id, "ipix": ipix}).one_or_none()
        region = _region_of(row, tile)
        level = float(skymaps.credible_level_at(region, [ra], [dec])[0])
        density = float(skymaps.density_at(region, [ra], [dec])[0])
        sep = (float(skymaps.separation_deg(region, [ra], [dec])[0])
               if row.kind == "circle" and row.center_ra is not None else None)
        out.append({"event_id": row.event_id, "messenger": row.messenger,
                    "mission": row.mission,
                    "trigger_time": row.trigger_time.isoformat().replace("+00:00", "Z"),
                    "region_version": row.version, "region_kind": row.kind,
                    "area90_deg2": row.area_deg2, "credible_level": level,
                    "prob_density_deg2": density, "separation_deg": sep})
    return sorted(out, key=lambda r: (r["credible_level"], r["event_id"]))


def _moc(ranges: np.ndarray) -> MOC | None:
    ranges = np.asarray(ranges, dtype=IPIX_DTYPE).reshape(-1, 2)
    if len(ranges) == 0:
        return None
    return MOC.from_depth29_ranges(moc_order(ranges), ranges)


def _cells(moc: MOC | None) -> tuple[list[list[list[float]]], int]:
    """Cell polygons ``[[ra, dec], ...]`` of a MOC, degraded to at most MAX_CELLS."""
    if moc is None:
        return [], 0
    order = int(moc.max_order)
    content: dict[str, list[int]] = moc.serialize(format="json")
    while sum(len(v) for v in content.values()) > MAX_CELLS and order > 0:
        order -= 1
        content = moc.degrade_to_order(order).serialize(format="json")
    polygons: list[list[list[float]]] = []
    for key, ipix in content.items():
        if not ipix:
            continue
        vec = hp.boundaries(1 << int(key), np.asarray(ipix, dtype=np.int64), step=EDGE_STEP,
                            nest=True)
        vec = vec.reshape(len(ipix), 3, -1)
        lon, lat = hp.vec2ang(np.moveaxis(vec, 1, 2).reshape(-1, 3), lonlat=True)
        lon = lon.reshape(len(ipix), -1)
        lat = lat.reshape(len(ipix), -1)
        for lo, la in zip(lon, lat, strict=True):
            polygons.append([[round(float(a), 5), round(float(b), 5)]
                             for a, b in zip(lo, la, strict=True)])
    return polygons, order


def map_geometry(region: Region) -> dict[str, Any]:
    """What the event page's map draws for one region version.

    Returns
    -------
    dict
        ``kind``, ``center`` (``[ra, dec]``: the circle's centre or the most probable
        tile), ``contours`` (``level`` 0.5 and 0.9, each with ``cells``: polygons of
        ``[ra, dec]`` corners, and the ``order`` they were drawn at) and ``circles``
        (for circles: centre and radius at 50 % and 90 %).
    """
    contours = []
    circles = []
    if region.kind == "circle" and region.sigma_deg is not None:
        r50 = fisher.radius_for_level(region.sigma_deg, 0.5)
        circles = [{"level": 0.5, "ra": region.center_ra, "dec": region.center_dec,
                    "radius_deg": r50},
                   {"level": 0.9, "ra": region.center_ra, "dec": region.center_dec,
                    "radius_deg": region.radius90_deg}]
        center = [float(region.center_ra or 0.0), float(region.center_dec or 0.0)]
    else:
        levels = np.asarray(region.tile_credible_level)
        inner = np.asarray(region.tile_ranges)[levels <= 0.5]
        cells, order = _cells(_moc(np.sort(inner, axis=0) if len(inner) else inner))
        contours.append({"level": 0.5, "cells": cells, "order": order})
        center = _peak(region)
    cells, order = _cells(_moc(region.ranges))
    contours.append({"level": float(region.credible_level), "cells": cells, "order": order})
    return {"kind": region.kind, "center": center, "contours": contours,
            "circles": circles, "area_deg2": region.area_deg2}


def _peak(region: Region) -> list[float]:
    """Centre of the most probable tile (or of the first range)."""
    if len(region.tile_density_deg2):
        lo = int(np.asarray(region.tile_ranges)[int(np.argmax(region.tile_density_deg2))][0])
    elif len(region.ranges):
        lo = int(np.asarray(region.ranges)[0][0])
    else:
        return [0.0, 0.0]
    ra, dec = hp.pix2ang(NSIDE29, lo, nest=True, lonlat=True)
    return [float(ra), float(dec)]


def finite(value: float) -> bool:
    """Whether a float is finite (not NaN or infinite)."""
    return math.isfinite(value)
