"""The distance ansatz of a 3D GW map at sky positions (geometry only).

A 3D GW sky map gives, per cell, the parameters ``DISTMU``, ``DISTSIGMA`` and
``DISTNORM`` of the distance posterior along the line of sight (Singer et al. 2016,
"Going the distance"); :mod:`skymaps.maps` keeps them for the region's tiles as
``Region.distance_layers``. :func:`distance_parameters_at` looks them up at
positions, one binary search per position, as :mod:`skymaps.lookup` does for levels
and densities. The maths of the posterior is :mod:`coincidence.distance`'s.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mm_broker.core.models import Region
from skymaps.coords import validate_query
from skymaps.ranges import ang2pix29, locate

__all__ = ["distance_parameters_at", "has_distance"]

FloatArray = npt.NDArray[np.float64]


def has_distance(region: Region) -> bool:
    """Whether the region carries a distance ansatz (a 3D GW map with tiles)."""
    layers = region.distance_layers
    return layers is not None and len(layers.mu) > 0


def distance_parameters_at(
    region: Region, ra: npt.ArrayLike, dec: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """``DISTMU``, ``DISTSIGMA``, ``DISTNORM`` of the cell holding each position.

    Parameters
    ----------
    region : Region
        A region with ``distance_layers`` (see :func:`has_distance`).
    ra, dec : array_like
        ICRS positions in degrees.

    Returns
    -------
    mu, sigma, norm : ndarray of float64
        The ansatz of the cell (Mpc, Mpc, Mpc**-2); outside the layers' cells, and
        in cells without distance information, ligo.skymap's "no distance" values
        ``inf``, ``1``, ``0``.
    described : ndarray of bool
        Whether the position is inside a cell with a finite ansatz.

    Raises
    ------
    ValueError
        If the region has no distance layers, or a position is invalid.

    Examples
    --------
    >>> from mm_broker.core.models import DistanceLayers
    >>> from skymaps.circles import region_from_circle
    >>> from mm_broker.core.models import Circle
    >>> from dataclasses import replace
    >>> base = region_from_circle(Circle(10.0, 0.0, 1.0, 0.9))
    >>> layers = DistanceLayers(np.array([[4 * 4**29, 5 * 4**29]]), np.array([40.0]),
    ...                         np.array([8.0]), np.array([5e-4]))
    >>> region = replace(base, distance_layers=layers)
    >>> mu, sigma, norm, ok = distance_parameters_at(region, [10.0, 200.0], [0.0, 0.0])
    >>> mu.tolist(), ok.tolist()
    ([40.0, inf], [True, False])
    """
    layers = region.distance_layers
    if layers is None:
        raise ValueError(f"a {region.kind!r} region without distance layers")
    ra_a, dec_a = validate_query(ra, dec)
    shape = np.broadcast(ra_a, dec_a).shape
    if len(layers.mu) == 0:
        return (np.full(shape, np.inf), np.ones(shape), np.zeros(shape),
                np.zeros(shape, dtype=bool))
    index, inside = locate(layers.ranges, ang2pix29(ra_a, dec_a))
    index = np.where(inside, index, 0)
    mu = np.where(inside, layers.mu[index], np.inf).astype(np.float64)
    sigma = np.where(inside, layers.sigma[index], 1.0).astype(np.float64)
    norm = np.where(inside, layers.norm[index], 0.0).astype(np.float64)
    return mu, sigma, norm, inside & np.isfinite(mu) & (norm > 0)
