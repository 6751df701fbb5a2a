"""Per-alert credible level, probability density and searched area inside a region.

The engine asks two questions of a region, through callables the caller may replace
(e.g. by the functions of :mod:`skymaps`):

* a **level model** ``region → (ra, dec) → (credible_level, density_deg2)``;
* an **area model** ``region → credible_level → searched_area_deg2``, the area of the
  smallest credible region at that level (input of :mod:`coincidence.pchance`).

The defaults work from the :class:`~mm_broker.core.models.Region` alone:

* circles with a Gaussian width ``sigma_deg`` (flat-sky 2-D Gaussian around the
  centre, separation r): ``level = 1 − exp(−r²/2σ²)``,
  ``density = exp(−r²/2σ²) / (2πσ²)`` per deg², and the searched area at a level is
  the spherical cap of radius ``r = σ·sqrt(−2 ln(1 − level))``;
* maps (and any region without ``sigma_deg``): the tile of ``region.tile_ranges``
  containing the alert gives ``tile_credible_level`` and ``tile_density_deg2``; the
  searched area at a level is the total area of the tiles whose level is at most it
  (ties included: the greedy searched area of ligo.skymap, conservative by at most
  one tile). A position in no tile has level and density ``NaN``.

Each model is prepared once per region version (sorting tiles, cumulative areas) and
then applied to arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from coincidence.index import NPIX29, ipix29
from coincidence.pchance import DEG2_PER_SR
from mm_broker.core.models import Region

FloatArray = npt.NDArray[np.float64]

#: ``(ra, dec) → (credible_level, density_deg2)`` for one region.
LevelFn = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]
#: ``credible_level → searched_area_deg2`` for one region.
AreaFn = Callable[[FloatArray], FloatArray]
#: Prepares a :data:`LevelFn` for a region.
LevelModel = Callable[[Region], LevelFn]
#: Prepares an :data:`AreaFn` for a region.
AreaModel = Callable[[Region], AreaFn]

#: Area of one order-29 HEALPix cell, deg².
PIXEL29_AREA_DEG2 = 4.0 * math.pi * DEG2_PER_SR / NPIX29


def angular_separation_deg(
    ra1: npt.ArrayLike, dec1: npt.ArrayLike, ra2: npt.ArrayLike, dec2: npt.ArrayLike
) -> FloatArray:
    """Great-circle separation in degrees (Vincenty formula, exact at all angles).

    Examples
    --------
    >>> float(angular_separation_deg(10.0, 0.0, 10.0, 90.0)[()])
    90.0
    """
    lon1, lat1 = np.radians(ra1), np.radians(dec1)
    lon2, lat2 = np.radians(ra2), np.radians(dec2)
    dlon = lon2 - lon1
    sin_dlon, cos_dlon = np.sin(dlon), np.cos(dlon)
    sin1, cos1 = np.sin(lat1), np.cos(lat1)
    sin2, cos2 = np.sin(lat2), np.cos(lat2)
    num = np.hypot(cos2 * sin_dlon, cos1 * sin2 - sin1 * cos2 * cos_dlon)
    den = sin1 * sin2 + cos1 * cos2 * cos_dlon
    result: FloatArray = np.degrees(np.arctan2(num, den))
    return result


def cap_area_deg2(radius_deg: npt.ArrayLike) -> FloatArray:
    """Area of a spherical cap of angular radius ``radius_deg``, deg².

    Examples
    --------
    >>> round(float(cap_area_deg2(180.0)[()]), 1)
    41253.0
    """
    r = np.radians(np.asarray(radius_deg, dtype=np.float64))
    # 1 - cos r = 2 sin²(r/2): no cancellation for small radii.
    result: FloatArray = 4.0 * math.pi * np.sin(r / 2.0) ** 2 * DEG2_PER_SR
    return result


def _require_circle(region: Region) -> tuple[float, float, float]:
    if region.center_ra is None or region.center_dec is None or region.sigma_deg is None:
        raise ValueError("a Gaussian circle needs center_ra, center_dec and sigma_deg")
    if not region.sigma_deg > 0:
        raise ValueError(f"sigma_deg must be > 0, got {region.sigma_deg}")
    return region.center_ra, region.center_dec, region.sigma_deg


def gaussian_circle_levels(region: Region) -> LevelFn:
    """Level model of a circle from its Gaussian width ``sigma_deg``.

    Examples
    --------
    >>> empty = np.zeros((0, 2), np.uint64)
    >>> circle = Region("circle", empty, 1.0, 0.9, empty, np.zeros(0), np.zeros(0),
    ...                 center_ra=0.0, center_dec=0.0, radius90_deg=2.146, sigma_deg=1.0)
    >>> level, density = gaussian_circle_levels(circle)(np.array([1.0]), np.array([0.0]))
    >>> round(float(level[0]), 4), round(float(density[0]), 4)
    (0.3935, 0.0965)
    """
    ra0, dec0, sigma = _require_circle(region)

    def levels(ra: FloatArray, dec: FloatArray) -> tuple[FloatArray, FloatArray]:
        r = angular_separation_deg(ra0, dec0, ra, dec)
        z = (r / sigma) ** 2 / 2.0
        level: FloatArray = -np.expm1(-z)
        density: FloatArray = np.exp(-z) / (2.0 * math.pi * sigma**2)
        return level, density

    return levels


def gaussian_circle_area(region: Region) -> AreaFn:
    """Area model of a Gaussian circle: the cap at the level's radius."""
    _, _, sigma = _require_circle(region)

    def area(level: FloatArray) -> FloatArray:
        lvl = np.asarray(level, dtype=np.float64)
        with np.errstate(divide="ignore"):
            radius = sigma * np.sqrt(-2.0 * np.log1p(-np.clip(lvl, 0.0, 1.0)))
        return cap_area_deg2(np.minimum(radius, 180.0))

    return area


class _Tiles:
    """Tiles of a region sorted by their first index, for point lookups."""

    def __init__(self, region: Region) -> None:
        ranges = np.asarray(region.tile_ranges).reshape(-1, 2).astype(np.int64)
        order = np.argsort(ranges[:, 0], kind="stable")
        self.lo = ranges[order, 0]
        self.hi = ranges[order, 1]
        self.level = np.asarray(region.tile_credible_level, dtype=np.float64)[order]
        self.density = np.asarray(region.tile_density_deg2, dtype=np.float64)[order]
        if not len(self.level) == len(self.density) == len(self.lo):
            raise ValueError("tile_ranges, tile_credible_level, tile_density_deg2 differ in size")

    def find(self, ra: FloatArray, dec: FloatArray) -> tuple[FloatArray, FloatArray]:
        pix = ipix29(ra, dec)
        j = np.searchsorted(self.lo, pix, side="right") - 1
        inside = j >= 0
        inside[inside] &= pix[inside] < self.hi[j[inside]]
        level = np.full(len(pix), np.nan)
        density = np.full(len(pix), np.nan)
        level[inside] = self.level[j[inside]]
        density[inside] = self.density[j[inside]]
        return level, density


def tile_levels(region: Region) -> LevelFn:
    """Level model of a map (or any tiled region): look the alert's tile up."""
    return _Tiles(region).find


def tile_area(region: Region) -> AreaFn:
    """Area model of a tiled region: area of the tiles at or below a credible level."""
    tiles = _Tiles(region)
    order = np.argsort(tiles.level, kind="stable")
    levels_sorted = tiles.level[order]
    areas = (tiles.hi - tiles.lo)[order].astype(np.float64) * PIXEL29_AREA_DEG2
    cumulative = np.concatenate(([0.0], np.cumsum(areas)))

    def area(level: FloatArray) -> FloatArray:
        lvl = np.asarray(level, dtype=np.float64)
        n_at_or_below = np.searchsorted(levels_sorted, lvl, side="right")
        result: FloatArray = np.where(np.isnan(lvl), np.nan, cumulative[n_at_or_below])
        return result

    return area


def default_level_model(region: Region) -> LevelFn:
    """Gaussian levels for circles with ``sigma_deg``, tile lookup otherwise."""
    if region.sigma_deg is not None:
        return gaussian_circle_levels(region)
    return tile_levels(region)


def default_area_model(region: Region) -> AreaFn:
    """Cap areas for circles with ``sigma_deg``, cumulative tile areas otherwise."""
    if region.sigma_deg is not None:
        return gaussian_circle_area(region)
    return tile_area(region)
