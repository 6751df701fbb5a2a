"""The sky part of a notice × notice coincidence: the overlap integral of two regions.

The overlap integral of two localisations with normalised probability densities
``p_a`` and ``p_b`` (per steradian) is

    I = 4 pi ∫ p_a(x) p_b(x) dΩ

(Ashton et al. 2018, ApJ 860, 6; the ``skymap_overlap_integral`` of LVK's RAVEN): 1 for
two uniform skies, large when two compact localisations agree, small when they are
apart. The spatio-temporal false-alarm rate of a coincidence is its temporal FAR
divided by ``I``.

How each kind of region is integrated, with the one probability model of
:mod:`skymaps` (:func:`skymaps.level_density_at`):

* two tiled regions (sky maps, ellipses, boxes; densities constant per tile): exactly,
  over the elementary order-29 intervals where tiles of both overlap;
* a circle (its analytic radial model) with anything: a sum over a polar grid of
  ``n × n`` cells around the circle's centre (out to three 90 % radii) of the
  circle's density times the other region's, both from :func:`skymaps.level_density_at`,
  the circle's part normalised over the grid; it holds however small the circle is
  against the other region's tiles. Of two circles the smaller one gives the grid.

Each tiled density is normalised over its tiles (maps are tiled to 99 % of their
probability, ellipses and boxes to their 90 % region), as RAVEN normalises each map.

The combined localisation (the normalised product of the two densities) is
summarised by its peak and, for two tiled regions, the area of its 90 % region.

Examples
--------
Two identical small circles on top of each other: ``I = 4 pi / (4 pi sigma**2)`` in
the small-angle limit, here ``41253 / (4 pi)`` for ``sigma = 1`` degree.

>>> from mm_broker.core.models import Circle
>>> from skymaps.circles import region_from_circle
>>> a = region_from_circle(Circle(10.0, 20.0, 2.146, 0.9))
>>> round(overlap(a, a).integral / (41252.96 / (4 * 3.14159265)), 2)
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import healpy as hp
import numpy as np
import numpy.typing as npt

from mm_broker.core.models import IPIX_DTYPE, MAX_ORDER, Region
from skymaps import fisher
from skymaps.lookup import level_density_at, with_sorted_tiles
from skymaps.ranges import PIX29_AREA_DEG2

__all__ = ["SKY_DEG2", "SkyOverlap", "overlap", "sample_circle"]

#: Area of the whole sky in square degrees (4 pi sr).
SKY_DEG2 = 4.0 * math.pi * (180.0 / math.pi) ** 2

#: Rings and bearings of a circle's grid (n × n cells).
DEFAULT_SAMPLES = 48

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SkyOverlap:
    """The sky overlap of two regions.

    Attributes
    ----------
    integral : float
        ``I = 4 pi ∫ p_a p_b dΩ`` (dimensionless; 0 when the regions do not overlap).
    peak_ra, peak_dec : float or None
        Position of the largest product density (ICRS degrees); ``None`` when the
        regions do not overlap.
    area90_deg2 : float or None
        Area of the 90 % region of the normalised product, for two tiled regions;
        ``None`` otherwise.
    method : str
        ``"tiles"`` (exact over shared tiles) or ``"circle_sample"`` (a circle's grid).
    """

    integral: float
    peak_ra: float | None
    peak_dec: float | None
    area90_deg2: float | None
    method: str


def _analytic(region: Region) -> bool:
    return (region.kind == "circle" and region.sigma_deg is not None
            and region.center_ra is not None and region.center_dec is not None)


def sample_circle(region: Region, n: int = DEFAULT_SAMPLES
                  ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """A polar grid around a circle region's centre: ``n`` rings × ``n`` bearings.

    The rings are equally spaced in radius out to three times the 90 % radius (six
    sigma of a Gaussian) and the positions sit at the middle of each cell, every
    other ring shifted by half a bearing step. With the cell areas, a sum over the
    grid integrates any smooth function of position against the circle's density.

    Parameters
    ----------
    region : Region
        A circle with its analytic model (``sigma_deg``, centre, ``radius90_deg``).
    n : int
        Rings and bearings.

    Returns
    -------
    ra, dec : ndarray of float64, shape (n * n,)
        Cell centres, ICRS degrees.
    area : ndarray of float64, shape (n * n,)
        Cell areas, square degrees.

    Examples
    --------
    >>> from mm_broker.core.models import Circle
    >>> from skymaps.circles import region_from_circle
    >>> ra, dec, area = sample_circle(region_from_circle(Circle(0.0, 0.0, 1.0, 0.9)), 8)
    >>> ra.shape, round(float(area.sum()), 2)  # the cap of radius 3 degrees
    ((64,), 28.27)
    """
    if not _analytic(region):
        raise ValueError(f"a {region.kind!r} region has no analytic circle model")
    assert region.center_ra is not None and region.center_dec is not None
    assert region.sigma_deg is not None
    r90 = region.radius90_deg or fisher.radius_for_level(region.sigma_deg, 0.9)
    edges = np.radians(np.linspace(0.0, min(3.0 * r90, 180.0), n + 1))
    mid = 0.5 * (edges[:-1] + edges[1:])
    ring = (np.cos(edges[:-1]) - np.cos(edges[1:])) * 2.0 * np.pi / n  # sr per cell
    shift = 0.5 * (np.arange(n) % 2)[:, None]
    bearing = 2.0 * np.pi * (np.arange(n)[None, :] + 0.5 + shift) / n
    r = np.broadcast_to(mid[:, None], bearing.shape)
    dec0, ra0 = math.radians(region.center_dec), math.radians(region.center_ra)
    sin_dec = np.sin(dec0) * np.cos(r) + np.cos(dec0) * np.sin(r) * np.cos(bearing)
    dec = np.arcsin(np.clip(sin_dec, -1.0, 1.0))
    ra = ra0 + np.arctan2(np.sin(bearing) * np.sin(r) * np.cos(dec0),
                          np.cos(r) - np.sin(dec0) * sin_dec)
    area = np.broadcast_to(ring[:, None], bearing.shape) * (180.0 / math.pi) ** 2
    return (np.mod(np.degrees(ra), 360.0).ravel().astype(np.float64),
            np.degrees(dec).ravel().astype(np.float64),
            np.ascontiguousarray(area, dtype=np.float64).ravel())


def _tile_arrays(region: Region) -> tuple[npt.NDArray[np.int64], FloatArray]:
    r = with_sorted_tiles(region)
    tiles = np.asarray(r.tile_ranges, dtype=IPIX_DTYPE).reshape(-1, 2)
    return tiles, np.asarray(r.tile_density_deg2, dtype=np.float64)


def _norm(tiles: npt.NDArray[np.int64], density: FloatArray) -> float:
    return float(np.sum((tiles[:, 1] - tiles[:, 0]).astype(np.float64) * PIX29_AREA_DEG2
                        * density))


def _pix29_position(ipix: npt.NDArray[np.int64]) -> tuple[float, float]:
    lon, lat = hp.pix2ang(1 << MAX_ORDER, ipix, nest=True, lonlat=True)
    return float(np.asarray(lon).ravel()[0]), float(np.asarray(lat).ravel()[0])


def _locate(tiles: npt.NDArray[np.int64], starts: npt.NDArray[np.int64]
            ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Tile holding each interval start (index, and whether one does)."""
    idx = np.searchsorted(tiles[:, 0], starts, side="right") - 1
    ok = idx >= 0
    safe = np.where(ok, idx, 0)
    ok &= starts < tiles[safe, 1]
    return safe, ok


def _tiled_overlap(a: Region, b: Region) -> SkyOverlap:
    ta, da = _tile_arrays(a)
    tb, db = _tile_arrays(b)
    na, nb = _norm(ta, da), _norm(tb, db)
    if not (len(ta) and len(tb)) or na <= 0 or nb <= 0:
        return SkyOverlap(0.0, None, None, None, "tiles")
    bounds = np.unique(np.concatenate([ta.ravel(), tb.ravel()]))
    lo, hi = bounds[:-1], bounds[1:]
    ia, in_a = _locate(ta, lo)
    ib, in_b = _locate(tb, lo)
    both = in_a & in_b
    if not both.any():
        return SkyOverlap(0.0, None, None, None, "tiles")
    lo, hi = lo[both], hi[both]
    product = da[ia[both]] * db[ib[both]] / (na * nb)  # per deg², per deg²
    area = (hi - lo).astype(np.float64) * PIX29_AREA_DEG2
    mass = product * area
    total = float(mass.sum())
    if total <= 0:
        return SkyOverlap(0.0, None, None, None, "tiles")
    best = int(np.argmax(product))
    ra, dec = _pix29_position(np.asarray([(lo[best] + hi[best] - 1) // 2], dtype=IPIX_DTYPE))
    order = np.argsort(-product, kind="stable")
    cumulative = np.cumsum(mass[order]) / total
    inside = int(np.searchsorted(cumulative, 0.9, side="left")) + 1
    return SkyOverlap(SKY_DEG2 * total, ra, dec, float(area[order][:inside].sum()), "tiles")


def _sampled_overlap(circle: Region, other: Region, n: int) -> SkyOverlap:
    ra, dec, area = sample_circle(circle, n)
    _, own, _ = level_density_at(circle, ra, dec)
    _, density, _ = level_density_at(other, ra, dec)
    if _analytic(other):
        norm = 1.0  # an analytic model is normalised on the sphere
    else:
        tiles, dens = _tile_arrays(other)
        norm = _norm(tiles, dens)
    own_mass = float(np.sum(own * area))
    if norm <= 0 or own_mass <= 0 or not np.any(density > 0):
        return SkyOverlap(0.0, None, None, None, "circle_sample")
    best = int(np.argmax(own * density))
    integral = SKY_DEG2 * float(np.sum(own * density * area)) / own_mass / norm
    return SkyOverlap(integral, float(ra[best]), float(dec[best]), None, "circle_sample")


def overlap(a: Region, b: Region, samples: int = DEFAULT_SAMPLES) -> SkyOverlap:
    """The overlap integral of two regions and the peak of their product.

    Parameters
    ----------
    a, b : Region
        Regions built by :mod:`skymaps` (any kind).
    samples : int
        Rings and bearings of a circle's grid (see :func:`sample_circle`).

    Returns
    -------
    SkyOverlap
    """
    if _analytic(a) and _analytic(b):
        # sample the smaller one, evaluate the wider one's smooth density
        assert a.sigma_deg is not None and b.sigma_deg is not None
        small, wide = (a, b) if a.sigma_deg <= b.sigma_deg else (b, a)
        return _sampled_overlap(small, wide, samples)
    if _analytic(a):
        return _sampled_overlap(a, b, samples)
    if _analytic(b):
        return _sampled_overlap(b, a, samples)
    return _tiled_overlap(a, b)
