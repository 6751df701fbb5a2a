"""The in-memory join: which active regions contain each alert.

All active regions are merged into one structure over the order-29 nested HEALPix
index line ``[0, 12·4**29)``:

* ``bounds`` — every range boundary of every region, sorted and unique, with ``0``
  and ``12·4**29`` added. Consecutive boundaries delimit *elementary intervals*
  ``[bounds[j], bounds[j+1])``; inside one elementary interval the set of covering
  regions does not change, however the regions overlap.
* a CSR list ``indptr``/``indices``: the regions covering elementary interval ``j``
  are ``indices[indptr[j]:indptr[j+1]]`` (ascending region index).

An alert at order-29 index ``i`` lies in the interval
``j = searchsorted(bounds, i, side="right") - 1`` and therefore in exactly the
regions listed for ``j``. That one binary search is the whole lookup.

A coarse table accelerates the binary search: for each HEALPix cell of order
``table_order`` (8 by default: 786,432 cells, 0.05 deg² each) it stores the
elementary interval containing the cell's first index and whether any boundary falls
strictly inside the cell. Most alerts fall in cells that no boundary cuts (region
interiors and empty sky): their interval is one table read. Only alerts in cells
that a boundary cuts go through :func:`numpy.searchsorted`. The answer is identical
either way (tested against a brute-force per-region check); the table only saves the
cache misses of a binary search over hundreds of thousands of boundaries.

Regions keep the ranges the caller gave; the index never changes them.

Examples
--------
>>> import numpy as np
>>> from mm_broker.core.models import Region
>>> def region(ranges):
...     r = np.asarray(ranges, dtype=np.int64)
...     empty = np.zeros((0, 2), np.int64)
...     return Region("circle", r, 1.0, 0.9, empty, np.zeros(0), np.zeros(0))
>>> index = ActiveRegions([
...     RegionEntry("a", region([[10, 20]]), 0, 1),
...     RegionEntry("b", region([[15, 30]]), 0, 1),
... ])
>>> alert_idx, region_idx = index.match(np.array([5, 12, 17, 25, 30]))
>>> alert_idx.tolist(), region_idx.tolist()
([1, 2, 2, 3], [0, 0, 1, 1])
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mm_broker.core.models import IPIX_DTYPE, MAX_ORDER, Region
from skymaps.ranges import NPIX29, ang2pix29

IntArray = npt.NDArray[np.int64]


def ipix29(ra: npt.ArrayLike, dec: npt.ArrayLike) -> IntArray:
    """Order-29 nested HEALPix index of positions, as a 1-D array.

    The index of :func:`skymaps.ranges.ang2pix29` (the one computation of it).

    Parameters
    ----------
    ra, dec : array_like
        ICRS right ascension and declination in degrees.

    Returns
    -------
    ndarray of IPIX_DTYPE (int64)

    Examples
    --------
    >>> int(ipix29(0.0, 90.0)[0]) == 4**29 - 1
    True
    """
    return np.atleast_1d(ang2pix29(ra, dec))


@dataclass(frozen=True, eq=False)
class RegionEntry:
    """One active region: its key, its geometry and its event window.

    Attributes
    ----------
    key : hashable
        Caller's identifier, e.g. ``(event_id, region_version)``.
    region : Region
        Sorted, disjoint order-29 ranges in ``region.ranges``.
    start_ns, end_ns : int
        Closed time window ``[start_ns, end_ns]`` in which alerts may match,
        nanoseconds since the Unix epoch (see :mod:`coincidence.times`).
    """

    key: Hashable
    region: Region
    start_ns: int
    end_ns: int


def checked_ranges(region: Region, key: Hashable) -> IntArray:
    """The region's ranges as IPIX_DTYPE, after checking they are sorted and disjoint.

    Ranges of any integer dtype are accepted (uint64 from older callers): bounds of
    ``[0, 12·4**29]`` convert exactly, and the join then compares one dtype only.

    Raises
    ------
    ValueError
        If the ranges are not of shape (n, 2), sorted, disjoint, non-empty and
        within ``[0, 12·4**29)``.
    """
    ranges = np.asarray(region.ranges)
    if ranges.size == 0:
        return np.zeros((0, 2), dtype=IPIX_DTYPE)
    if ranges.ndim != 2 or ranges.shape[1] != 2:
        raise ValueError(f"region {key!r}: ranges must have shape (n, 2), got {ranges.shape}")
    if np.any(ranges < 0) or np.any(ranges > NPIX29):  # before a cast could wrap them
        raise ValueError(f"region {key!r}: ranges must lie in [0, 12*4**29]")
    out = ranges.astype(IPIX_DTYPE)
    lo, hi = out[:, 0], out[:, 1]
    if np.any(lo >= hi) or lo[0] < 0 or hi[-1] > NPIX29 or np.any(lo[1:] < hi[:-1]):
        raise ValueError(f"region {key!r}: ranges must be sorted, disjoint, non-empty, in range")
    return out


def expand_counts(starts: IntArray, counts: IntArray) -> IntArray:
    """Concatenation of ``arange(s, s + c)`` for every (start, count), vectorised.

    Examples
    --------
    >>> expand_counts(np.array([10, 3]), np.array([2, 3])).tolist()
    [10, 11, 3, 4, 5]
    """
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.cumsum(counts) - counts
    return np.repeat(starts - first, counts) + np.arange(total, dtype=np.int64)


class ActiveRegions:
    """All active regions merged for a one-binary-search point lookup.

    Parameters
    ----------
    entries : sequence of RegionEntry
        The regions; region index ``k`` in the answers of :meth:`match` is the
        position of the entry in this sequence.
    table_order : int
        HEALPix order of the coarse acceleration table (0 to 10). 8 costs 3.9 MB.

    Raises
    ------
    ValueError
        If a region's ranges are not sorted, disjoint and within the sphere.
    """

    def __init__(self, entries: Sequence[RegionEntry], table_order: int = 8) -> None:
        if not 0 <= table_order <= 10:
            raise ValueError(f"table_order must be in [0, 10], got {table_order}")
        self.entries: tuple[RegionEntry, ...] = tuple(entries)
        self.start_ns = np.array([e.start_ns for e in self.entries], dtype=np.int64)
        self.end_ns = np.array([e.end_ns for e in self.entries], dtype=np.int64)
        per_region = [checked_ranges(e.region, e.key) for e in self.entries]
        self.n_ranges = int(sum(len(r) for r in per_region))

        # Elementary intervals between all boundaries (with both ends of the sphere).
        edges = [np.array([0, NPIX29], dtype=IPIX_DTYPE)]
        edges.extend(r.ravel() for r in per_region)
        self.bounds: IntArray = np.unique(np.concatenate(edges))
        n_intervals = len(self.bounds) - 1

        # CSR: for each region, the elementary intervals its ranges cover.
        interval_parts: list[IntArray] = []
        region_parts: list[IntArray] = []
        for k, ranges in enumerate(per_region):
            if len(ranges) == 0:
                continue
            first = np.searchsorted(self.bounds, ranges[:, 0])  # exact hits
            last = np.searchsorted(self.bounds, ranges[:, 1])
            covered = expand_counts(first, last - first)
            interval_parts.append(covered)
            region_parts.append(np.full(len(covered), k, dtype=np.int64))
        if interval_parts:
            intervals = np.concatenate(interval_parts)
            regions = np.concatenate(region_parts)
            order = np.argsort(intervals, kind="stable")  # keeps regions ascending
            self.indices: IntArray = regions[order]
            counts = np.bincount(intervals, minlength=n_intervals)
        else:
            self.indices = np.zeros(0, dtype=np.int64)
            counts = np.zeros(n_intervals, dtype=np.int64)
        self.indptr: IntArray = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)

        # Coarse table: interval of each cell's first index, and cells cut by a boundary.
        self.table_order = table_order
        self._shift = 2 * (MAX_ORDER - table_order)
        n_cells = 12 * 4**table_order
        cell_starts = np.arange(n_cells, dtype=IPIX_DTYPE) << self._shift
        self._cell_interval = (np.searchsorted(self.bounds, cell_starts, side="right") - 1).astype(
            np.int32 if n_intervals < 2**31 else np.int64
        )
        inner = self.bounds[1:-1]
        inner = inner[(inner & ((1 << self._shift) - 1)) != 0]
        self._cell_split = np.zeros(n_cells, dtype=bool)
        self._cell_split[inner >> self._shift] = True

    def __len__(self) -> int:
        """Number of regions."""
        return len(self.entries)

    @property
    def keys(self) -> list[Hashable]:
        """Keys of the regions, by region index."""
        return [e.key for e in self.entries]

    @property
    def n_intervals(self) -> int:
        """Number of elementary intervals (including the uncovered ones)."""
        return len(self.bounds) - 1

    def locate(self, ipix: npt.ArrayLike) -> IntArray:
        """Elementary interval of each order-29 index.

        Parameters
        ----------
        ipix : array_like of int
            Order-29 nested indices in ``[0, 12·4**29)``.

        Returns
        -------
        ndarray of int64
            ``j`` such that ``bounds[j] <= ipix < bounds[j+1]``.
        """
        pix = np.asarray(ipix, dtype=IPIX_DTYPE)
        cells = pix >> self._shift
        found = self._cell_interval[cells].astype(np.int64)
        cut = np.flatnonzero(self._cell_split[cells])
        if len(cut):
            found[cut] = np.searchsorted(self.bounds, pix[cut], side="right") - 1
        return found

    def match(self, ipix: npt.ArrayLike) -> tuple[IntArray, IntArray]:
        """Every (alert, region) pair whose region contains the alert's position.

        Parameters
        ----------
        ipix : array_like of int
            Order-29 nested indices of the alerts (see :func:`ipix29`).

        Returns
        -------
        alert_idx, region_idx : ndarray of int64
            Parallel arrays, one element per containing pair, ordered by alert then
            region index. An alert in no region does not appear.

        Raises
        ------
        ValueError
            If an index is outside ``[0, 12·4**29)``.
        """
        pix = np.asarray(ipix, dtype=IPIX_DTYPE).ravel()
        if len(pix) and (pix.min() < 0 or pix.max() >= NPIX29):
            raise ValueError("order-29 indices must lie in [0, 12*4**29)")
        interval = self.locate(pix)
        start = self.indptr[interval]
        count = self.indptr[interval + 1] - start
        hit = np.flatnonzero(count)
        if len(hit) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy()
        counts = count[hit]
        alert_idx = np.repeat(hit, counts)
        region_idx = self.indices[expand_counts(start[hit], counts)]
        return alert_idx, region_idx

    def match_lonlat(self, ra: npt.ArrayLike, dec: npt.ArrayLike) -> tuple[IntArray, IntArray]:
        """:meth:`match` on positions in degrees."""
        return self.match(ipix29(ra, dec))

    def match_in_time(
        self, ipix: npt.ArrayLike, time_ns: npt.ArrayLike
    ) -> tuple[IntArray, IntArray]:
        """:meth:`match`, keeping only pairs whose alert time is in the region's window.

        Parameters
        ----------
        ipix : array_like of int
            Order-29 nested indices of the alerts.
        time_ns : array_like of int
            Alert times, ns since the Unix epoch; the window is closed at both ends.
        """
        alert_idx, region_idx = self.match(ipix)
        times = np.asarray(time_ns, dtype=np.int64)[alert_idx]
        keep = (times >= self.start_ns[region_idx]) & (times <= self.end_ns[region_idx])
        return alert_idx[keep], region_idx[keep]
