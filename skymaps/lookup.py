"""Credible level and probability density of a region at given positions.

* Circles (``Region.sigma_deg`` set): analytic, from the angular separation to the
  centre, with the Fisher model of :mod:`skymaps.fisher` (the 2-D Gaussian
  ``1 - exp(-r**2 / 2 sigma**2)`` and ``exp(-r**2 / 2 sigma**2) / (2 pi sigma**2)``
  for small circles). Defined everywhere on the sky.
* Maps, ellipses and boxes: the value of the tile holding the position (one binary
  search per position in ``Region.tile_ranges``).

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

import numpy as np
import numpy.typing as npt
from astropy.coordinates import angular_separation

from mm_broker.core.models import Region
from skymaps import fisher
from skymaps.coords import validate_query
from skymaps.ranges import ang2pix29, locate

__all__ = ["credible_level_at", "density_at", "in_tiles", "separation_deg"]

FloatArray = npt.NDArray[np.float64]


def _is_analytic(region: Region) -> bool:
    return (region.kind == "circle" and region.sigma_deg is not None
            and region.center_ra is not None and region.center_dec is not None)


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
    if _is_analytic(region):
        assert region.sigma_deg is not None
        return fisher.level(separation_deg(region, ra, dec), region.sigma_deg)
    index, inside = _tile_values(region, ra, dec)
    return np.where(inside, region.tile_credible_level[index], 1.0).astype(np.float64)


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
    if _is_analytic(region):
        assert region.sigma_deg is not None
        return fisher.density_deg2(separation_deg(region, ra, dec), region.sigma_deg)
    index, inside = _tile_values(region, ra, dec)
    return np.where(inside, region.tile_density_deg2[index], 0.0).astype(np.float64)
