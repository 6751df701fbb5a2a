"""Credible level, probability density and searched area of a region: the one model.

Every part of mm_broker that needs the probability model of a region (the
coincidence engine included) asks these functions:

* Circles: analytic, from the angular separation to the centre, with the circle's
  radial law (:func:`radial_law`: ``Region.radial_model`` - Fisher, the Fermi GBM
  core + tail mixture, IceCube's King profile, :mod:`skymaps.radial` - or, for a
  circle stored without one, the Fisher law of ``Region.sigma_deg``). Defined
  everywhere on the sky.
* Maps, ellipses and boxes: the value of the tile holding the position (one binary
  search per position in ``Region.tile_ranges``, which must be sorted by first index:
  regions built here are, :func:`with_sorted_tiles` sorts any other).

The searched area at a credible level (the area of the smallest credible region at
that level, input of the chance probability) is the cap of that level for a circle
(the law's ``searched_area_deg2``) and, for tiles, the total area of the
tiles whose level is at most it (ties included: the greedy searched area of
ligo.skymap, conservative by at most one tile); :func:`searched_area_model`.

The alert's own position error
------------------------------
An alert's position is itself uncertain (0.1-1 arcsec), which matters for arcsecond
circles (Swift XRT and UVOT, Einstein Probe FXT). :func:`level_density_at` and the
searched-area function take ``position_error_deg`` (1-sigma per axis, per position):
a circle's law is then folded with it (:meth:`skymaps.radial.FisherLaw.folded`: each
Gaussian width ``s`` becomes ``hypot(s, e)``), the level and density of the
difference between the two positions, and the searched area that law's cap. Tiled
regions (maps, ellipses, boxes) are left as they are: their tiles are much coarser
than any alert's error.

Outside the tiles
-----------------
Tiles cover the region and, for maps, everything up to a cumulative probability of
``Limits.tile_coverage`` (0.99 by default). A position outside every tile gets
**level 1.0 and density 0.0**, meaning "beyond the part of the sky the region
describes": its true level is above every tile's level, and its density is
negligible. These are ordinary values at the top and bottom of their scales, not
"missing" codes: a level of 1.0 is outside any credible region below 100 %. Use
:func:`in_tiles` to tell such positions apart if needed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import numpy as np
import numpy.typing as npt
from astropy.coordinates import angular_separation

from mm_broker.core.models import IPIX_DTYPE, Region
from skymaps.coords import validate_query
from skymaps.radial import FisherLaw, RadialLaw, law_from_dict
from skymaps.ranges import PIX29_AREA_DEG2, ang2pix29, locate

__all__ = [
    "credible_level_at",
    "density_at",
    "in_tiles",
    "level_density_at",
    "radial_law",
    "searched_area_model",
    "separation_deg",
    "with_sorted_tiles",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class AreaFn(Protocol):
    """``credible level -> searched area (deg²)`` of one region (NaN gives NaN);
    ``position_error_deg`` folds the alerts' errors into a circle's law."""

    def __call__(self, level: npt.ArrayLike,
                 position_error_deg: npt.ArrayLike | None = None) -> FloatArray: ...


def radial_law(region: Region) -> RadialLaw | None:
    """The radial law of a circle region (``None`` for other regions).

    Raises
    ------
    ValueError
        A stored ``radial_model`` that names no known law.

    Examples
    --------
    >>> from mm_broker.core.models import Circle
    >>> from skymaps.circles import region_from_circle
    >>> circle = Circle(85.3, 6.2, 3.97, 0.6827, convention="fermi_gbm_ground")
    >>> type(radial_law(region_from_circle(circle))).__name__
    'FisherMixture'
    """
    if region.kind != "circle" or region.center_ra is None or region.center_dec is None:
        return None
    if region.radial_model:
        return law_from_dict(region.radial_model)
    return None if region.sigma_deg is None else FisherLaw(region.sigma_deg)


def _per_error(law: RadialLaw, values: FloatArray, errors: npt.ArrayLike | None,
               fn: str) -> FloatArray:
    """``law.<fn>(values)``, with the law folded with each position's error
    (one fold per distinct error)."""
    if errors is None:
        return np.asarray(getattr(law, fn)(values), dtype=np.float64)
    err = np.broadcast_to(np.asarray(errors, dtype=np.float64), values.shape)
    if np.any(~np.isfinite(err) | (err < 0.0)):
        raise ValueError("position errors must be finite and non-negative")
    out = np.empty(values.shape, dtype=np.float64)
    for e in np.unique(err):
        where = err == e
        folded = law if e == 0.0 else law.folded(float(e))
        out[where] = getattr(folded, fn)(values[where])
    return out


def separation_deg(region: Region, ra: npt.ArrayLike, dec: npt.ArrayLike) -> FloatArray:
    """Angular distance (degrees) from the centre of a circle region.

    Raises
    ------
    ValueError
        If the region has no centre, or a query position is invalid.

    Examples
    --------
    >>> from mm_broker.core.models import Circle
    >>> from skymaps.circles import region_from_circle
    >>> region = region_from_circle(Circle(10.0, 0.0, 1.0, 0.9))
    >>> separation_deg(region, [10.0, 11.0], [1.0, 0.0]).round(6).tolist()
    [1.0, 1.0]
    """
    if region.center_ra is None or region.center_dec is None:
        raise ValueError(f"a {region.kind!r} region has no centre")
    ra_a, dec_a = validate_query(ra, dec)
    sep = angular_separation(np.radians(region.center_ra), np.radians(region.center_dec),
                             np.radians(ra_a), np.radians(dec_a))
    return np.asarray(np.degrees(sep), dtype=np.float64)


def _tile_values(
    region: Region, ra: npt.ArrayLike, dec: npt.ArrayLike
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    ra_a, dec_a = validate_query(ra, dec)
    return locate(region.tile_ranges, ang2pix29(ra_a, dec_a))


def in_tiles(region: Region, ra: npt.ArrayLike, dec: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Whether each position falls in one of the region's tiles.

    Examples
    --------
    >>> from mm_broker.core.models import Circle
    >>> from skymaps.circles import region_from_circle
    >>> region = region_from_circle(Circle(10.0, 0.0, 1.0, 0.9))
    >>> in_tiles(region, [10.0, 50.0], [0.0, 0.0]).tolist()
    [True, False]
    """
    return _tile_values(region, ra, dec)[1]


def with_sorted_tiles(region: Region) -> Region:
    """The region with its tiles ordered by first index, as the lookups need.

    The region itself when they are already (regions built by :mod:`skymaps`, or
    loaded from the store in order); otherwise a copy with the tiles, their levels
    and densities reordered together.

    Raises
    ------
    ValueError
        If the tile arrays differ in length, or tiles overlap.

    Examples
    --------
    >>> from mm_broker.core.models import Circle
    >>> from skymaps.circles import region_from_circle
    >>> region = region_from_circle(Circle(10.0, 0.0, 1.0, 0.9))
    >>> with_sorted_tiles(region) is region
    True
    """
    tiles = np.asarray(region.tile_ranges, dtype=IPIX_DTYPE).reshape(-1, 2)
    n = len(tiles)
    if not n == len(region.tile_credible_level) == len(region.tile_density_deg2):
        raise ValueError("tile_ranges, tile_credible_level, tile_density_deg2 differ in size")
    if n < 2 or bool(np.all(tiles[1:, 0] >= tiles[:-1, 1])):
        return region
    order = np.argsort(tiles[:, 0], kind="stable")
    tiles = tiles[order]
    if np.any(tiles[1:, 0] < tiles[:-1, 1]):
        raise ValueError("the region's tiles overlap")
    return replace(region, tile_ranges=tiles,
                   tile_credible_level=np.asarray(region.tile_credible_level)[order],
                   tile_density_deg2=np.asarray(region.tile_density_deg2)[order])


def level_density_at(
    region: Region, ra: npt.ArrayLike, dec: npt.ArrayLike, *,
    position_error_deg: npt.ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Credible level and density of the region's model, and where the model holds.

    Parameters
    ----------
    region : Region
        Any region built by :mod:`skymaps` (tiles sorted, see :func:`with_sorted_tiles`).
    ra, dec : array_like
        ICRS positions in degrees (broadcast together).
    position_error_deg : array_like, optional
        The positions' own errors (1-sigma per axis, degrees), folded into a
        circle's law (see the module documentation); ignored for tiled regions.

    Returns
    -------
    level, density : ndarray of float64
        As :func:`credible_level_at` and :func:`density_at`.
    described : ndarray of bool
        Whether the model describes the position: everywhere for a circle's
        analytic model, inside the tiles otherwise (outside them ``level`` is 1.0
        and ``density`` 0.0, see the module documentation).

    Raises
    ------
    ValueError
        NaN or infinite coordinates, or declinations outside ``[-90, 90]``.

    Examples
    --------
    >>> from mm_broker.core.models import Box
    >>> from skymaps.circles import region_from_box
    >>> region = region_from_box(Box(10.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.9))
    >>> level, density, described = level_density_at(region, [10.0, 50.0], [0.0, 0.0])
    >>> described.tolist(), level[1], density[1]
    ([True, False], np.float64(1.0), np.float64(0.0))
    """
    law = radial_law(region)
    if law is not None:
        theta = separation_deg(region, ra, dec)
        return (_per_error(law, theta, position_error_deg, "level"),
                _per_error(law, theta, position_error_deg, "density_deg2"),
                np.ones(theta.shape, dtype=bool))
    index, inside = _tile_values(region, ra, dec)
    if len(region.tile_credible_level) == 0:  # no tiles: nothing to index
        return np.ones(inside.shape), np.zeros(inside.shape), inside
    level = np.where(inside, region.tile_credible_level[index], 1.0).astype(np.float64)
    density = np.where(inside, region.tile_density_deg2[index], 0.0).astype(np.float64)
    return level, density, inside


def searched_area_model(region: Region) -> AreaFn:
    """The region's ``credible level → searched area (deg²)``, prepared once.

    Circles: the cap of the circle's law holding that probability (of the law
    folded with ``position_error_deg`` where the returned function is given it).
    Tiled regions:
    the total area of the tiles whose level is at most it, ties included (so for
    the level of a tile, the searched area of ligo.skymap's ``crossmatch``). A NaN
    level gives NaN.

    Examples
    --------
    >>> from mm_broker.core.models import Circle
    >>> from skymaps.circles import region_from_circle
    >>> region = region_from_circle(Circle(0.0, 0.0, 1.0, 0.9))
    >>> area = searched_area_model(region)
    >>> level = credible_level_at(region, 1.0, 0.0)  # on the 90 % circle
    >>> round(float(area(level)), 3)  # the cap of radius 1 degree
    3.142
    """
    law = radial_law(region)
    if law is not None:
        def cap(level: npt.ArrayLike,
                position_error_deg: npt.ArrayLike | None = None) -> FloatArray:
            lvl = np.asarray(level, dtype=np.float64)
            return _per_error(law, lvl, position_error_deg, "searched_area_deg2")

        return cap
    levels = np.asarray(region.tile_credible_level, dtype=np.float64)
    tiles = np.asarray(region.tile_ranges, dtype=IPIX_DTYPE).reshape(-1, 2)
    order = np.argsort(levels, kind="stable")
    levels_sorted = levels[order]
    areas = (tiles[order, 1] - tiles[order, 0]).astype(np.float64) * PIX29_AREA_DEG2
    cumulative = np.concatenate(([0.0], np.cumsum(areas)))

    def tiled(level: npt.ArrayLike,
              position_error_deg: npt.ArrayLike | None = None) -> FloatArray:
        lvl = np.asarray(level, dtype=np.float64)
        at_or_below = np.searchsorted(levels_sorted, lvl, side="right")
        return np.asarray(np.where(np.isnan(lvl), np.nan, cumulative[at_or_below]),
                          dtype=np.float64)

    return tiled


def credible_level_at(region: Region, ra: npt.ArrayLike, dec: npt.ArrayLike) -> FloatArray:
    """Credible level of the region's probability model at each position.

    The credible level of a position is the probability content of the smallest
    credible region containing it (0 at the peak, 0.9 on the 90 % boundary).

    Parameters
    ----------
    region : Region
        Any region built by :mod:`skymaps`.
    ra, dec : array_like
        ICRS positions in degrees (broadcast together).

    Returns
    -------
    ndarray of float64
        Levels in ``[0, 1]``; 1.0 outside the tiles of a map, ellipse or box (see
        the module documentation).

    Raises
    ------
    ValueError
        NaN or infinite coordinates, or declinations outside ``[-90, 90]``.

    Examples
    --------
    A Swift BAT circle of 3 arcmin (90 %): its edge is at level 0.9.

    >>> from mm_broker.core.models import Circle
    >>> from skymaps.circles import region_from_circle
    >>> region = region_from_circle(Circle(0.0, 0.0, 0.05, 0.9, convention="swift_bat"))
    >>> credible_level_at(region, [0.0, 0.05], [0.0, 0.0]).round(4).tolist()
    [0.0, 0.9]
    """
    return level_density_at(region, ra, dec)[0]


def density_at(region: Region, ra: npt.ArrayLike, dec: npt.ArrayLike) -> FloatArray:
    """Probability per square degree of the region's model at each position.

    Parameters
    ----------
    region : Region
        Any region built by :mod:`skymaps`.
    ra, dec : array_like
        ICRS positions in degrees (broadcast together).

    Returns
    -------
    ndarray of float64
        Densities per square degree; 0.0 outside the tiles of a map, ellipse or box.

    Raises
    ------
    ValueError
        NaN or infinite coordinates, or declinations outside ``[-90, 90]``.

    Examples
    --------
    At the centre of a small circle the density is ``1 / (2 pi sigma**2)``:

    >>> from mm_broker.core.models import Circle
    >>> from skymaps.circles import region_from_circle
    >>> region = region_from_circle(Circle(0.0, 0.0, 1.0, 0.9))
    >>> peak = density_at(region, 0.0, 0.0)
    >>> bool(np.isclose(peak, 1 / (2 * np.pi * region.sigma_deg**2), rtol=1e-4))
    True
    """
    return level_density_at(region, ra, dec)[1]
