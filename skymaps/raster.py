"""HEALPix coverage of circular, elliptical and quarter-elliptical regions.

mocpy covers circles, ellipses and polygons, but not the region of an asymmetric
2-D Gaussian (IceCube's "+a -b" errors: four quarter-ellipses), its ellipse is not
defined in the same projection as our error model, and its cone (0.21) is wrong in
places: centred on a HEALPix base-cell centre, e.g. (0, 0) or (90, 0), a 25 deg cone
also holds the whole base cell (+78 % of area), and cones above ~160 deg lose sky.
So every shape is rasterised here, against the model itself:

* positions are mapped to the Lambert azimuthal equal-area plane tangent at the
  centre, ``(X, Y)`` in radians, X to the east and Y to the north. Its radial
  coordinate is the chord ``2 sin(theta / 2)``, so a circular Gaussian in this plane
  is exactly the Fisher law of :mod:`skymaps.fisher`, and, the map being
  equal-area, densities per unit plane area are densities per steradian;
* a shape is ``{m(X, Y) <= k}`` for a (piecewise) elliptical norm ``m``;
* cells are refined from order 0 (``healpy.max_pixrad`` bounds their size): a cell
  is kept whole when its worst point is inside, dropped when its best point is
  outside, split otherwise; at the final order undecided cells are kept unless all
  their descendants two orders below are outside.

The keep/drop tests are conservative bounds, so the cover contains the shape
and exceeds it by at most about one final-order cell.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import healpy as hp
import numpy as np
import numpy.typing as npt

from mm_broker.core.models import MAX_ORDER

__all__ = ["LocalFrame", "cover_cells", "expand_to_order", "order_for_scale"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Norm = Callable[[FloatArray, FloatArray], FloatArray]

# Margin on healpy.max_pixrad: HEALPix cell edges are not great circles.
_PIXRAD_MARGIN = 1.1


def order_for_scale(
    scale_deg: float, per_scale: float, lowest: int, highest: int = MAX_ORDER
) -> int:
    """Smallest HEALPix order whose pixels are at most ``scale_deg / per_scale`` wide.

    The pixel width is ``sqrt(4 pi / (12 * 4**order))`` (58.6 deg at order 0).

    Examples
    --------
    >>> order_for_scale(1.0, 32, lowest=6)  # 1/32 deg -> 0.029 deg pixels
    11
    """
    width0 = math.degrees(math.sqrt(4.0 * math.pi / 12.0))
    order = math.ceil(math.log2(width0 * per_scale / scale_deg))
    return int(min(max(order, lowest), highest))


@dataclass(frozen=True)
class LocalFrame:
    """Lambert azimuthal equal-area coordinates around ``(ra, dec)`` (degrees)."""

    ra: float
    dec: float

    def _axes(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        a, d = math.radians(self.ra), math.radians(self.dec)
        center = np.array([math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d)])
        east = np.array([-math.sin(a), math.cos(a), 0.0])
        north = np.array([-math.sin(d) * math.cos(a), -math.sin(d) * math.sin(a), math.cos(d)])
        return center, east, north

    def project_vectors(self, xyz: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Project unit vectors (shape ``(3, n)``) to ``(X, Y, theta)``, radians."""
        center, east, north = self._axes()
        cos_t = np.clip(center @ xyz, -1.0, 1.0)
        scale = np.sqrt(2.0 / np.maximum(1.0 + cos_t, 1e-300))
        return (east @ xyz) * scale, (north @ xyz) * scale, np.arccos(cos_t)

    def project(self, ra: npt.ArrayLike, dec: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Project positions in degrees to ``(X, Y)`` in radians.

        Examples
        --------
        One degree east of the centre is one chord, ``2 sin(0.5 deg)``, to the east:

        >>> x, y = LocalFrame(10.0, 0.0).project([11.0], [0.0])
        >>> bool(np.isclose(x[0], 2 * np.sin(np.radians(0.5)))), bool(np.isclose(y[0], 0.0))
        (True, True)
        """
        xyz = np.array(hp.ang2vec(np.asarray(ra, dtype=float), np.asarray(dec, dtype=float),
                                  lonlat=True), dtype=np.float64).reshape(-1, 3).T
        x, y, _ = self.project_vectors(xyz)
        return x, y


def _cells(order: int, ipix: IntArray) -> tuple[FloatArray, float]:
    nside = 1 << order
    xyz = np.array(hp.pix2vec(nside, ipix, nest=True), dtype=np.float64).reshape(3, -1)
    return xyz, _PIXRAD_MARGIN * float(hp.max_pixrad(nside))


def _bounds(
    frame: LocalFrame, norm: Norm, sigma_min: float, sigma_max: float, order: int,
    ipix: IntArray,
) -> tuple[FloatArray, FloatArray]:
    """Lower and upper bounds of ``norm`` over each cell."""
    xyz, rho = _cells(order, ipix)
    x, y, theta = frame.project_vectors(xyz)
    m = norm(x, y)
    # The plane map stretches lengths by at most 1 / cos(theta / 2) within theta.
    stretch = 1.0 / np.cos(np.minimum(theta + rho, math.pi * (1 - 1e-12)) / 2.0)
    slack = rho * stretch / sigma_min
    chord_min = 2.0 * np.sin(np.maximum(theta - rho, 0.0) / 2.0)
    return np.maximum(m - slack, chord_min / sigma_max), m + slack


def _children(ipix: IntArray, levels: int = 1) -> IntArray:
    n = 4**levels
    return (ipix[:, None] * n + np.arange(n, dtype=np.int64)).ravel()


def cover_cells(
    frame: LocalFrame,
    norm: Norm,
    k: float,
    sigma_min: float,
    sigma_max: float,
    order: int,
) -> tuple[IntArray, IntArray]:
    """Cells covering ``{norm(X, Y) <= k}``: whole cells at any order, edges at ``order``.

    Parameters
    ----------
    frame : LocalFrame
        Tangent plane of the shape.
    norm : callable
        ``m(X, Y)``, with ``|m(p) - m(q)| <= |p - q| / sigma_min`` in the plane and
        ``m(p) >= |p| / sigma_max``.
    k : float
        Level of the boundary.
    sigma_min, sigma_max : float
        Smallest and largest axis widths (radians).
    order : int
        Finest order; boundary cells are kept at this order if one of their
        descendants two orders below may still touch the shape (a cell that meets
        the shape always does, so the cover stays complete, with fewer stray cells).

    Returns
    -------
    orders, ipix : ndarray of int64
        The covering cells (NESTED).
    """
    orders: list[IntArray] = []
    pixels: list[IntArray] = []
    ipix: IntArray = np.arange(12, dtype=np.int64)
    for o in range(order + 1):
        lower, upper = _bounds(frame, norm, sigma_min, sigma_max, o, ipix)
        whole = upper <= k
        edge = (lower <= k) & ~whole
        orders.append(np.full(int(np.sum(whole)), o, dtype=np.int64))
        pixels.append(ipix[whole])
        if o == order:
            edge_ipix = ipix[edge]
            if edge_ipix.size and o + 2 <= MAX_ORDER:
                lookahead, _ = _bounds(frame, norm, sigma_min, sigma_max, o + 2,
                                       _children(edge_ipix, 2))
                edge_ipix = edge_ipix[np.any((lookahead <= k).reshape(-1, 16), axis=1)]
            orders.append(np.full(len(edge_ipix), o, dtype=np.int64))
            pixels.append(edge_ipix)
            break
        ipix = _children(ipix[edge])
        if ipix.size == 0:
            break
    return np.concatenate(orders), np.concatenate(pixels)


def expand_to_order(orders: IntArray, ipix: IntArray, order: int) -> IntArray:
    """All cells at ``order`` inside the given cells (each of order ``<= order``).

    Examples
    --------
    >>> expand_to_order(np.array([0, 1]), np.array([0, 5]), 1).tolist()
    [0, 1, 2, 3, 5]
    """
    shift = 2 * (order - np.asarray(orders, dtype=np.int64))
    counts = np.left_shift(np.int64(1), shift)
    base = np.left_shift(np.asarray(ipix, dtype=np.int64), shift)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.sort(np.repeat(base, counts) + (np.arange(int(counts.sum())) - starts))
