"""Order-29 ranges: UNIQ <-> ranges, normalisation, area, containment, ang2pix."""

from __future__ import annotations

import healpy as hp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mocpy import MOC

from mm_broker.core.models import IPIX_DTYPE
from skymaps import ranges as rg

MAX = 29


@st.composite
def cells(draw: st.DrawFn, max_size: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Random HEALPix cells (orders 0..29, possibly overlapping)."""
    n = draw(st.integers(1, max_size))
    orders = draw(st.lists(st.integers(0, MAX), min_size=n, max_size=n))
    ipix = [draw(st.integers(0, 12 * 4**o - 1)) for o in orders]
    return np.array(orders, dtype=np.int64), np.array(ipix, dtype=np.int64)


def uniq_of(orders: np.ndarray, ipix: np.ndarray) -> np.ndarray:
    return (4 * 4 ** orders.astype(object) + ipix.astype(object)).astype(np.uint64)


def brute_contains(ranges: np.ndarray, pix: np.ndarray) -> np.ndarray:
    lo, hi = ranges[:, 0][None, :], ranges[:, 1][None, :]
    return np.any((pix[:, None] >= lo) & (pix[:, None] < hi), axis=1)


def test_uniq_to_ranges_known_values() -> None:
    out = rg.uniq_to_ranges(np.array([4, 15, 16, 4 * 4**29], dtype=np.uint64))
    assert out.tolist() == [
        [0, 4**29],
        [11 * 4**29, 12 * 4**29],
        [0, 4**28],
        [0, 1],
    ]
    assert out.dtype == IPIX_DTYPE


@pytest.mark.parametrize("bad", [0, 3, 16 * 4**29, -5])
def test_uniq_to_ranges_rejects_invalid(bad: int) -> None:
    with pytest.raises(ValueError, match="NUNIQ index outside"):
        rg.uniq_to_ranges(np.array([bad], dtype=np.int64))


@settings(max_examples=200, deadline=None)
@given(cells())
def test_uniq_ranges_round_trip(c: tuple[np.ndarray, np.ndarray]) -> None:
    orders, ipix = c
    ranges = rg.normalise(rg.uniq_to_ranges(uniq_of(orders, ipix)))
    # Canonical: sorted, disjoint, not adjacent, non-empty.
    assert np.all(ranges[:, 0] < ranges[:, 1])
    assert np.all(ranges[1:, 0] > ranges[:-1, 1])
    # Ranges -> minimal cells -> ranges is the identity.
    uniq = rg.ranges_to_uniq(ranges)
    assert np.array_equal(rg.normalise(rg.uniq_to_ranges(uniq)), ranges)
    # ... and agrees with mocpy building the same MOC from the cells.
    moc = MOC.from_healpix_cells(ipix.astype(np.uint64), orders.astype(np.uint8), max_depth=MAX)
    assert np.array_equal(np.asarray(moc.to_depth29_ranges, dtype=np.uint64), ranges)


@settings(max_examples=100, deadline=None)
@given(cells(max_size=10))
def test_each_cell_covers_its_children(c: tuple[np.ndarray, np.ndarray]) -> None:
    orders, ipix = c
    r = rg.cells_to_ranges(orders, ipix)
    assert np.array_equal(r[:, 1] - r[:, 0], (4 ** (MAX - orders)).astype(np.uint64))
    assert np.array_equal(r, rg.uniq_to_ranges(uniq_of(orders, ipix)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 30)), min_size=0, max_size=30),
       st.lists(st.integers(0, 240), min_size=1, max_size=50))
def test_normalise_union_contains_match_brute_force(
    spans: list[tuple[int, int]], probes: list[int]
) -> None:
    raw = np.array([[lo, lo + width] for lo, width in spans], dtype=np.uint64).reshape(-1, 2)
    merged = rg.normalise(raw)
    pix = np.array(probes, dtype=np.uint64)
    expected = brute_contains(raw, pix) if len(raw) else np.zeros(len(pix), bool)
    assert np.array_equal(rg.contains(merged, pix), expected)
    half = len(raw) // 2
    assert np.array_equal(rg.union(raw[:half], raw[half:]), merged)
    # Area is additive over the merged, disjoint ranges.
    covered = len(set().union(*(range(lo, lo + w) for lo, w in spans))) if spans else 0
    assert rg.area_deg2(merged) == pytest.approx(covered * rg.PIX29_AREA_DEG2)


def test_normalise_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError, match="lo > hi"):
        rg.normalise([[5, 4]])
    with pytest.raises(ValueError, match="beyond"):
        rg.normalise(np.array([[0, rg.NPIX29 + 1]], dtype=np.uint64))
    with pytest.raises(ValueError, match="negative"):
        rg.normalise([[-1, 4]])


def test_whole_sky_area() -> None:
    assert rg.area_deg2([[0, rg.NPIX29]]) == pytest.approx(4 * np.pi * (180 / np.pi) ** 2)


@settings(max_examples=100, deadline=None)
@given(st.floats(0, 360, exclude_max=True), st.floats(-90, 90))
def test_ang2pix29_matches_a_coarser_healpy_pixel(ra: float, dec: float) -> None:
    pix29 = int(rg.ang2pix29(ra, dec)[()])
    pix10 = int(hp.ang2pix(2**10, ra, dec, nest=True, lonlat=True))
    # The order-29 pixel lies in the order-10 pixel of the same position (nested).
    # Positions on a pixel edge may round either way: accept a neighbour then.
    parent = pix29 >> (2 * (MAX - 10))
    if parent != pix10:
        neighbours = hp.get_all_neighbours(2**10, pix10, nest=True)
        assert parent in set(neighbours.tolist())


def test_empty_ranges() -> None:
    assert rg.contains(rg.empty(), [1, 2]).tolist() == [False, False]
    assert rg.area_deg2(rg.empty()) == 0.0
    assert rg.normalise(np.zeros((0, 2))).shape == (0, 2)
