"""Order-29 nested HEALPix index ranges: the storage form of every region.

A set of ranges is an ``(n, 2)`` array of ``[lo, hi)`` pairs of order-29 NESTED pixel
indices, sorted by ``lo``, disjoint, with adjacent ranges merged (:func:`normalise`
produces this canonical form). Indices and bounds are of dtype
:data:`~mm_broker.core.models.IPIX_DTYPE` (int64) in every function here, whatever
the dtype given: never a uint64/int64 mix, which numpy searches in float64. A
HEALPix cell ``(order, ipix)`` covers the order-29 range
``[ipix * 4**(29-order), (ipix + 1) * 4**(29-order))``, so any multi-order coverage
(a MOC) is a set of ranges, and point-in-region is one binary search (:func:`contains`).

Libraries do the HEALPix work: :mod:`ligo.skymap.moc` decodes NUNIQ indices,
:mod:`mocpy` builds the minimal cell decomposition of ranges, :mod:`healpy` turns
coordinates into pixels. What is written here is the array bookkeeping (shifts,
merge, binary search) that keeps each cell tied to its own values, which a
normalising MOC library cannot do.
"""

from __future__ import annotations

import healpy as hp
import numpy as np
import numpy.typing as npt
from ligo.skymap import moc as lsm_moc
from mocpy import MOC

from mm_broker.core.models import IPIX_DTYPE, MAX_ORDER

__all__ = [
    "NPIX29",
    "PIX29_AREA_DEG2",
    "ang2pix29",
    "area_deg2",
    "cells_to_ranges",
    "contains",
    "empty",
    "locate",
    "normalise",
    "ranges_to_uniq",
    "union",
    "uniq_to_ranges",
]

IpixArray = npt.NDArray[np.int64]

#: Number of order-29 pixels on the sky (``12 * 4**29``).
NPIX29 = 12 * 4**MAX_ORDER

#: Area of one order-29 pixel in square degrees.
PIX29_AREA_DEG2 = (4 * np.pi / NPIX29) * (180.0 / np.pi) ** 2

_NSIDE29 = 2**MAX_ORDER


def empty() -> IpixArray:
    """Return an empty set of ranges (shape ``(0, 2)``)."""
    return np.zeros((0, 2), dtype=IPIX_DTYPE)


def cells_to_ranges(order: npt.ArrayLike, ipix: npt.ArrayLike) -> IpixArray:
    """Convert NESTED cells ``(order, ipix)`` to one order-29 range per cell.

    The ranges keep the input order and are not merged, so that row ``i`` is still
    cell ``i`` (use :func:`normalise` for the canonical form).

    Parameters
    ----------
    order : int or array_like of int
        HEALPix order of each cell, 0 to 29 (a scalar applies to all cells).
    ipix : array_like of int
        NESTED pixel index of each cell at its order.

    Returns
    -------
    ndarray of int64, shape (n, 2)

    Examples
    --------
    >>> cells_to_ranges(28, [0, 1]).tolist()
    [[0, 4], [4, 8]]
    """
    pix = np.atleast_1d(np.asarray(ipix)).astype(IPIX_DTYPE)
    shift = 2 * (MAX_ORDER - np.asarray(order).astype(IPIX_DTYPE))
    lo = pix << shift
    hi = (pix + 1) << shift
    return np.column_stack((lo, hi)).astype(IPIX_DTYPE, copy=False)


def uniq_to_ranges(uniq: npt.ArrayLike) -> IpixArray:
    """Convert NUNIQ cell indices to one order-29 range per cell (input order kept).

    Parameters
    ----------
    uniq : array_like of int
        NUNIQ indices, ``4 * 4**order + ipix``, with order 0 to 29.

    Returns
    -------
    ndarray of int64, shape (n, 2)

    Raises
    ------
    ValueError
        If an index is not a valid NUNIQ index of order 0 to 29.

    Examples
    --------
    >>> uniq_to_ranges([4, 5]).tolist() == [[0, 4**29], [4**29, 2 * 4**29]]
    True
    """
    u = np.atleast_1d(np.asarray(uniq))
    if u.size and (u.dtype.kind not in "iu" or np.any(u < 4) or np.any(u >= 16 * 4**MAX_ORDER)):
        raise ValueError("NUNIQ index outside [4, 16 * 4**29) (order 0 to 29)")
    order, ipix = lsm_moc.uniq2nest(u.astype(np.int64))
    return cells_to_ranges(order, ipix)


def normalise(ranges: npt.ArrayLike) -> IpixArray:
    """Sort, merge overlapping and adjacent ranges, drop empty ones.

    Parameters
    ----------
    ranges : array_like, shape (n, 2)
        Half-open ``[lo, hi)`` order-29 ranges in any order, possibly overlapping.

    Returns
    -------
    ndarray of int64, shape (m, 2)
        The canonical form: sorted by ``lo``, disjoint, not adjacent.

    Raises
    ------
    ValueError
        If a bound lies outside ``[0, 12 * 4**29]`` or ``lo > hi``.

    Examples
    --------
    >>> normalise([[10, 20], [0, 5], [5, 8], [15, 30]]).tolist()
    [[0, 8], [10, 30]]
    """
    r = np.asarray(ranges)
    if r.size == 0:
        return empty()
    if r.ndim != 2 or r.shape[1] != 2:
        raise ValueError(f"ranges must have shape (n, 2), not {r.shape}")
    if np.any(r < 0):
        raise ValueError("negative range bound")
    if np.any(r > NPIX29):  # before the cast: a uint64 >= 2**63 would wrap
        raise ValueError("range bound beyond 12 * 4**29")
    r = r.astype(IPIX_DTYPE)
    if np.any(r[:, 0] > r[:, 1]):
        raise ValueError("range with lo > hi or beyond 12 * 4**29")
    r = r[r[:, 0] < r[:, 1]]
    if len(r) == 0:
        return empty()
    idx = np.argsort(r[:, 0], kind="stable")
    lo = r[idx, 0]
    hi = np.maximum.accumulate(r[idx, 1])
    starts = np.flatnonzero(np.concatenate(([True], lo[1:] > hi[:-1])))
    ends = np.concatenate((starts[1:] - 1, [len(lo) - 1]))
    return np.column_stack((lo[starts], hi[ends])).astype(IPIX_DTYPE, copy=False)


def union(*range_sets: npt.ArrayLike) -> IpixArray:
    """Union of several sets of ranges, in canonical form.

    Examples
    --------
    >>> union([[0, 4]], [[4, 8], [16, 20]]).tolist()
    [[0, 8], [16, 20]]
    """
    parts = [np.asarray(r, dtype=IPIX_DTYPE).reshape(-1, 2) for r in range_sets]
    if not parts:
        return empty()
    return normalise(np.concatenate(parts))


def ranges_to_uniq(ranges: npt.ArrayLike) -> IpixArray:
    """Decompose ranges into the minimal set of HEALPix cells, as sorted NUNIQ indices.

    This is the MOC of the ranges (built by :mod:`mocpy`).

    Examples
    --------
    >>> ranges_to_uniq([[0, 4**29]]).tolist()
    [4]
    """
    r = normalise(ranges)
    cells = MOC.from_depth29_ranges(MAX_ORDER, r).uniq_hpx
    return np.sort(np.asarray(cells, dtype=IPIX_DTYPE))  # NUNIQ < 16 * 4**29 < 2**63


def area_deg2(ranges: npt.ArrayLike) -> float:
    """Area covered by (canonical, disjoint) ranges in square degrees.

    Examples
    --------
    >>> round(area_deg2([[0, NPIX29]]), 3)
    41252.961
    """
    r = np.asarray(ranges, dtype=IPIX_DTYPE).reshape(-1, 2)
    npix = int(np.sum(r[:, 1] - r[:, 0], dtype=IPIX_DTYPE))
    return float(npix * PIX29_AREA_DEG2)


def locate(
    ranges: npt.ArrayLike, ipix29: npt.ArrayLike
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Find the range holding each order-29 pixel (one binary search per pixel).

    Parameters
    ----------
    ranges : array_like, shape (n, 2)
        Sorted, disjoint ranges (not necessarily merged: tiles keep their rows).
    ipix29 : array_like of int
        Order-29 NESTED pixel indices.

    Returns
    -------
    index : ndarray of intp
        Row of the range holding each pixel; only meaningful where ``inside``.
    inside : ndarray of bool
        Whether the pixel lies in one of the ranges.

    Examples
    --------
    >>> index, inside = locate([[0, 4], [10, 12]], [3, 4, 11])
    >>> index[inside].tolist(), inside.tolist()
    ([0, 1], [True, False, True])
    """
    r = np.asarray(ranges, dtype=IPIX_DTYPE).reshape(-1, 2)
    pix = np.asarray(ipix29).astype(IPIX_DTYPE)  # never a float64 mix in searchsorted
    if len(r) == 0:
        return np.zeros(pix.shape, dtype=np.intp), np.zeros(pix.shape, dtype=bool)
    index = np.searchsorted(r[:, 0], pix, side="right") - 1
    found = index >= 0
    index = np.where(found, index, 0)
    inside = found & (pix < r[index, 1])
    return index, inside


def contains(ranges: npt.ArrayLike, ipix29: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Whether each order-29 pixel lies in the (sorted, disjoint) ranges.

    Examples
    --------
    >>> contains([[0, 4], [10, 12]], [3, 4, 11]).tolist()
    [True, False, True]
    """
    return locate(ranges, ipix29)[1]


def ang2pix29(ra: npt.ArrayLike, dec: npt.ArrayLike) -> IpixArray:
    """Order-29 NESTED pixel of ICRS positions in degrees (healpy, ``nside = 2**29``).

    The caller validates the coordinates (see :mod:`skymaps.coords`).

    Examples
    --------
    >>> int(ang2pix29(0.0, 90.0)[()]) // 4**29
    0
    """
    pix = hp.ang2pix(_NSIDE29, np.asarray(ra, dtype=float), np.asarray(dec, dtype=float),
                     nest=True, lonlat=True)
    return np.asarray(pix).astype(IPIX_DTYPE)
