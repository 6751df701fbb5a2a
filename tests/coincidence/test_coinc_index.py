"""ActiveRegions against a brute-force per-region containment check."""

from __future__ import annotations

import healpy as hp
import numpy as np
import pytest
from coinc_regions import EMPTY, cells_to_ranges, circle_region
from hypothesis import given, settings
from hypothesis import strategies as st

from coincidence.index import NPIX29, ActiveRegions, RegionEntry, ipix29
from mm_broker.core.models import Region


def ranges_region(ranges: np.ndarray) -> Region:
    return Region(
        "circle",
        np.asarray(ranges, dtype=np.uint64).reshape(-1, 2),
        1.0,
        0.9,
        EMPTY,
        np.zeros(0),
        np.zeros(0),
    )


def brute_pairs(regions: list[Region], pix: np.ndarray) -> set[tuple[int, int]]:
    pairs = set()
    for k, region in enumerate(regions):
        r = region.ranges.astype(np.int64)
        if len(r) == 0:
            continue
        inside = ((pix[:, None] >= r[None, :, 0]) & (pix[:, None] < r[None, :, 1])).any(axis=1)
        pairs.update((int(a), k) for a in np.flatnonzero(inside))
    return pairs


def index_pairs(index: ActiveRegions, pix: np.ndarray) -> set[tuple[int, int]]:
    a, r = index.match(pix)
    # ordered by alert then region, without duplicates
    assert np.all(np.diff(a) >= 0)
    same = a[1:] == a[:-1]
    assert np.all(r[1:][same] > r[:-1][same])
    return set(zip(a.tolist(), r.tolist(), strict=True))


@st.composite
def nested_cells(draw: st.DrawFn) -> np.ndarray:
    """Ranges of random cells in a small part of the sphere (frequent overlaps)."""
    base = draw(st.integers(0, 1))
    n = draw(st.integers(0, 12))
    cells = []
    for _ in range(n):
        order = draw(st.integers(1, 12))
        # cell inside base pixel `base`
        cell = base * 4**order + draw(st.integers(0, 4**order - 1))
        cells.append(cells_to_ranges(order, [cell]))
    if not cells:
        return EMPTY.copy()
    r = np.concatenate(cells).astype(np.int64)
    r = r[np.argsort(r[:, 0])]
    merged: list[list[int]] = []
    for lo, hi in r.tolist():
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return np.asarray(merged, dtype=np.uint64)


@settings(max_examples=60, deadline=None)
@given(
    regions=st.lists(nested_cells(), min_size=0, max_size=6),
    seed=st.integers(0, 2**32 - 1),
    table_order=st.sampled_from([0, 3, 8, 10]),
)
def test_match_equals_brute_force_on_overlapping_cells(
    regions: list[np.ndarray], seed: int, table_order: int
) -> None:
    rng = np.random.default_rng(seed)
    objs = [ranges_region(r) for r in regions]
    index = ActiveRegions([RegionEntry(k, r, 0, 1) for k, r in enumerate(objs)], table_order)
    # random points in base pixels 0-1, plus every boundary and its neighbours
    pts = [rng.integers(0, 2 * 4**29, 300)]
    for r in regions:
        b = r.astype(np.int64).ravel()
        pts.extend([b, b - 1, b + 1])
    pix = np.clip(np.concatenate(pts), 0, NPIX29 - 1)
    assert index_pairs(index, pix) == brute_pairs(objs, pix)


@settings(max_examples=25, deadline=None)
@given(
    circles=st.lists(
        st.tuples(st.floats(0, 360), st.floats(-80, 80), st.floats(0.05, 20), st.integers(6, 12)),
        min_size=1,
        max_size=5,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_match_equals_brute_force_on_circles(
    circles: list[tuple[float, float, float, int]], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    regions = [circle_region(ra, dec, r, depth) for ra, dec, r, depth in circles]
    index = ActiveRegions([RegionEntry(k, r, 0, 1) for k, r in enumerate(regions)])
    # half the points near the circles, half anywhere
    ra0 = np.array([c[0] for c in circles])
    dec0 = np.array([c[1] for c in circles])
    pick = rng.integers(0, len(circles), 200)
    ra = np.concatenate([ra0[pick] + rng.normal(0, 10, 200), rng.uniform(0, 360, 200)])
    dec = np.concatenate(
        [np.clip(dec0[pick] + rng.normal(0, 10, 200), -90, 90), rng.uniform(-90, 90, 200)]
    )
    pix = ipix29(ra % 360, dec)
    assert index_pairs(index, pix) == brute_pairs(regions, pix)


def test_overlapping_nested_adjacent_and_identical_ranges() -> None:
    a = ranges_region([[10, 20], [40, 50]])
    b = ranges_region([[15, 45]])  # overlaps both ranges of a
    c = ranges_region([[20, 40]])  # adjacent to a on both sides
    d = ranges_region([[10, 20], [40, 50]])  # identical to a
    e = ranges_region(EMPTY)
    index = ActiveRegions([RegionEntry(k, r, 0, 1) for k, r in enumerate([a, b, c, d, e])])
    pix = np.array([9, 10, 14, 15, 19, 20, 39, 40, 44, 45, 49, 50])
    got: dict[int, list[int]] = {}
    for alert, region in zip(*index.match(pix), strict=True):
        got.setdefault(int(pix[alert]), []).append(int(region))
    assert got == {
        10: [0, 3],
        14: [0, 3],
        15: [0, 1, 3],
        19: [0, 1, 3],
        20: [1, 2],
        39: [1, 2],
        40: [0, 1, 3],
        44: [0, 1, 3],
        45: [0, 3],
        49: [0, 3],
    }


def test_no_regions_and_no_alerts() -> None:
    index = ActiveRegions([])
    a, r = index.match(np.array([0, 5, NPIX29 - 1]))
    assert a.size == 0 and r.size == 0
    index = ActiveRegions([RegionEntry("x", ranges_region([[0, NPIX29]]), 0, 1)])
    a, r = index.match(np.zeros(0, dtype=np.int64))
    assert a.size == 0
    a, r = index.match(np.array([0, NPIX29 - 1]))
    assert a.tolist() == [0, 1] and r.tolist() == [0, 0]


def test_rejects_bad_ranges_and_indices() -> None:
    with pytest.raises(ValueError, match="sorted"):
        ActiveRegions([RegionEntry("x", ranges_region([[10, 20], [15, 30]]), 0, 1)])
    with pytest.raises(ValueError, match="sorted"):
        ActiveRegions([RegionEntry("x", ranges_region([[20, 20]]), 0, 1)])
    index = ActiveRegions([RegionEntry("x", ranges_region([[10, 20]]), 0, 1)])
    with pytest.raises(ValueError, match="12"):
        index.match(np.array([NPIX29]))


def test_ipix29_matches_healpy_and_the_region_ranges() -> None:
    ra, dec = np.array([0.0, 123.4, 359.9]), np.array([90.0, -45.0, 0.0])
    expected = hp.ang2pix(2**29, ra, dec, nest=True, lonlat=True)
    assert ipix29(ra, dec).tolist() == expected.tolist()
    region = circle_region(123.4, -45.0, 2.0)
    index = ActiveRegions([RegionEntry("grb", region, 0, 1)])
    a, _ = index.match_lonlat([123.4, 123.4, 10.0], [-45.0, -46.9, 0.0])
    assert a.tolist() == [0, 1]


def test_match_in_time_uses_closed_windows() -> None:
    reg = ranges_region([[10, 20]])
    index = ActiveRegions([RegionEntry("a", reg, 100, 200), RegionEntry("b", reg, 150, 300)])
    a, r = index.match_in_time(np.array([12, 12, 12, 12]), np.array([99, 100, 200, 300]))
    assert list(zip(a.tolist(), r.tolist(), strict=True)) == [(1, 0), (2, 0), (2, 1), (3, 1)]
