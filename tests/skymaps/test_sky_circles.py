"""Circles, ellipses and boxes: the ranges contain what they should, and only that."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mocpy import MOC

from mm_broker.core.errors import BadCoordinates
from mm_broker.core.models import IPIX_DTYPE, Box, Circle, Ellipse, Region
from skymaps import credible_level_at, density_at, fisher, region_for
from skymaps.conventions import ConventionError
from skymaps.ranges import ang2pix29, area_deg2, contains

#: Relative margin around a region's boundary within which a point may fall either
#: side (the HEALPix cells on the edge: pixels are at most 1/32 of the radius).
EDGE = 0.08
#: Margin inside the boundary: covering cells contain every inside point.
INSIDE = 1e-3


def destination(ra: float, dec: float, bearing_deg: np.ndarray,
                distance_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Point at ``distance`` along the great circle leaving (ra, dec) at ``bearing``
    (east of north), by rotating unit vectors (accurate near the poles too);
    independent of skymaps."""
    a, d = math.radians(ra), math.radians(dec)
    centre = np.array([math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d)])
    east = np.array([-math.sin(a), math.cos(a), 0.0])
    north = np.array([-math.sin(d) * math.cos(a), -math.sin(d) * math.sin(a), math.cos(d)])
    theta, delta = np.radians(bearing_deg)[:, None], np.radians(distance_deg)[:, None]
    p = np.cos(delta) * centre + np.sin(delta) * (np.cos(theta) * north + np.sin(theta) * east)
    lon = np.degrees(np.arctan2(p[:, 1], p[:, 0])) % 360.0
    lat = np.degrees(np.arctan2(p[:, 2], np.hypot(p[:, 0], p[:, 1])))
    return lon, lat


def check_region(region: Region) -> None:
    """Invariants of every region."""
    r, t = region.ranges, region.tile_ranges
    assert r.dtype == IPIX_DTYPE and r.ndim == 2 and r.shape[1] == 2 and len(r) > 0
    assert np.all(r[:, 0] < r[:, 1]) and np.all(r[1:, 0] > r[:-1, 1])
    assert t.dtype == IPIX_DTYPE and np.all(t[:, 0] < t[:, 1]) and np.all(t[1:, 0] >= t[:-1, 1])
    assert len(t) == len(region.tile_credible_level) == len(region.tile_density_deg2)
    assert np.all((region.tile_credible_level >= 0) & (region.tile_credible_level <= 1))
    assert np.all(region.tile_density_deg2 >= 0)
    assert region.area_deg2 == pytest.approx(area_deg2(r))
    # The tiles cover the region.
    uncovered = MOC.from_depth29_ranges(29, r).difference(MOC.from_depth29_ranges(29, t))
    assert uncovered.sky_fraction == 0.0
    assert region.convention


centres = st.tuples(st.floats(0, 360, exclude_max=True), st.floats(-90, 90))
bearings = np.linspace(0.0, 360.0, 24, endpoint=False) + 7.0


@settings(max_examples=60, deadline=None)
@given(centres, st.floats(-4.0, 1.5), st.floats(0.3, 0.95))
def test_circle_contains_inside_and_not_outside(
    centre: tuple[float, float], log_radius: float, containment: float
) -> None:
    ra, dec = centre
    region = region_for(Circle(ra, dec, 10**log_radius, containment))
    check_region(region)
    assert region.radius90_deg is not None and region.sigma_deg is not None
    r90 = region.radius90_deg
    for scale, expected in [(0.0, True), (0.5, True), (1 - INSIDE, True),
                            (1 + EDGE, False), (1.6, False)]:
        if scale * r90 >= 179.0:
            continue
        lon, lat = destination(ra, dec, bearings, np.full(len(bearings), scale * r90))
        inside = contains(region.ranges, ang2pix29(lon, lat))
        assert np.all(inside == expected), (scale, expected)
        level = credible_level_at(region, lon, lat)
        expected_level = float(fisher.level(scale * r90, region.sigma_deg))
        assert level == pytest.approx(np.full(len(bearings), expected_level), rel=1e-4, abs=1e-6)
    # The 90 % boundary is at level 0.9.
    lon, lat = destination(ra, dec, bearings, np.full(len(bearings), r90))
    assert credible_level_at(region, lon, lat) == pytest.approx(np.full(len(lon), 0.9), rel=1e-5)


def test_circle_tiles_agree_with_the_analytic_model() -> None:
    region = region_for(Circle(85.32, 6.21, 3.97, 0.6827, convention="fermi_gbm_ground"))
    check_region(region)
    assert region.radius90_deg == pytest.approx(11.38, abs=0.01)
    # Area of the ranges: the spherical cap plus the edge cells (a few per cent).
    cap = 2 * np.pi * (1 - np.cos(np.radians(region.radius90_deg))) * (180 / np.pi) ** 2
    assert cap < region.area_deg2 < 1.05 * cap
    # Each tile carries the model at its centre.
    import healpy as hp

    order = 29 - int(np.log2(int(region.tile_ranges[0, 1] - region.tile_ranges[0, 0]))) // 2
    ipix = region.tile_ranges[:, 0] >> (2 * (29 - order))
    lon, lat = hp.pix2ang(2**order, ipix, nest=True, lonlat=True)
    assert credible_level_at(region, lon, lat) == pytest.approx(region.tile_credible_level)
    assert density_at(region, lon, lat) == pytest.approx(region.tile_density_deg2)
    # Levels grow away from the centre, densities fall; at the centre the density is
    # the mixture's, sum_i w_i / (2 pi sigma_i^2) with Connaughton et al.'s
    # sigma_i = 0.66 hypot(R_stat, R_i) (1.8 times the single Fisher law's).
    assert credible_level_at(region, 85.32, 6.21)[()] == pytest.approx(0.0)
    s_core, s_tail = 0.66 * math.hypot(3.97, 3.72), 0.66 * math.hypot(3.97, 13.7)
    peak = 0.804 / (2 * np.pi * s_core**2) + 0.196 / (2 * np.pi * s_tail**2)
    assert density_at(region, 85.32, 6.21)[()] == pytest.approx(peak, rel=2e-3)
    assert density_at(region, 85.32, 6.21)[()] * 2 * np.pi * region.sigma_deg**2 > 1.7


def ellipse_boundary(a: float, b: float, pa: float, bearing: np.ndarray) -> np.ndarray:
    """Angular distance of the 90 % contour of a 2-D Gaussian ellipse given at 90 %,
    along each bearing (the model's definition: chord coordinates in the equal-area
    tangent plane)."""
    sa, sb = 2 * np.sin(np.radians(a) / 2), 2 * np.sin(np.radians(b) / 2)
    east, north = np.sin(np.radians(bearing)), np.cos(np.radians(bearing))
    major = east * np.sin(np.radians(pa)) + north * np.cos(np.radians(pa))
    minor = east * np.cos(np.radians(pa)) - north * np.sin(np.radians(pa))
    chord = 1 / np.hypot(major / sa, minor / sb)
    return np.degrees(2 * np.arcsin(chord / 2))


@settings(max_examples=40, deadline=None)
@given(centres.filter(lambda c: abs(c[1]) < 89.0), st.floats(-3.0, 1.0), st.floats(0.2, 1.0),
       st.floats(0.0, 180.0))
def test_ellipse_contains_inside_and_not_outside(
    centre: tuple[float, float], log_a: float, ratio: float, pa: float
) -> None:
    ra, dec = centre
    a, b = 10**log_a, 10**log_a * ratio
    region = region_for(Ellipse(ra, dec, a, b, pa, 0.9, convention="maxi_gsc"))
    check_region(region)
    edge = ellipse_boundary(a, b, pa, bearings)
    for scale, expected in [(0.0, True), (0.5, True), (1 - INSIDE, True), (1 + EDGE, False)]:
        lon, lat = destination(ra, dec, bearings, scale * edge)
        assert np.all(contains(region.ranges, ang2pix29(lon, lat)) == expected), scale
    lon, lat = destination(ra, dec, bearings, 0.5 * edge)
    # Tile levels approximate the model's level at half the 90 % contour: 0.438.
    assert credible_level_at(region, lon, lat) == pytest.approx(1 - 10 ** -0.25, abs=0.15)


def test_contour_box_is_four_quarter_ellipses() -> None:
    """A box under a contour convention: +1.30/-0.80 deg in RA, +0.52/-0.58 deg in Dec
    (90 %) are the extents of the 90 % contour."""
    ra, dec = 77.43, 5.72
    box = Box(ra, dec, ra_minus=0.80, ra_plus=1.30, dec_minus=0.58, dec_plus=0.52,
              containment=0.9, convention="generic")
    region = region_for(box)
    check_region(region)
    cos_dec = math.cos(math.radians(dec))
    extents = {  # bearing -> on-sky extent of the published 90 % contour
        90.0: math.degrees(2 * math.asin(cos_dec * math.sin(math.radians(1.30) / 2))),
        270.0: math.degrees(2 * math.asin(cos_dec * math.sin(math.radians(0.80) / 2))),
        0.0: 0.52,
        180.0: 0.58,
    }
    for bearing, extent in extents.items():
        for scale, expected in [(0.5, True), (1 - INSIDE, True), (1 + EDGE, False)]:
            lon, lat = destination(ra, dec, np.array([bearing]), np.array([scale * extent]))
            assert bool(contains(region.ranges, ang2pix29(lon, lat))[0]) == expected
    # The corners of the published rectangle are outside the 90 % contour ...
    corner = ([ra + 1.2], [dec + 0.48])
    assert not contains(region.ranges, ang2pix29(*corner))[0]
    assert credible_level_at(region, *corner)[0] > 0.9
    # ... and the box's area is that of four quarter-ellipses plus edge cells.
    quarters = math.pi / 4 * (0.80 + 1.30) * cos_dec * (0.58 + 0.52)
    assert quarters < region.area_deg2 < 1.1 * quarters


def test_rectangle_box_is_the_rectangle() -> None:
    """MAXI error rectangle given by its corners (the bounding box, 90 %)."""
    ra, dec = 346.56, 18.61
    box = Box(ra, dec, ra_minus=1.096, ra_plus=1.006, dec_minus=0.976, dec_plus=0.937,
              containment=0.9, convention="gcn_unified_containment_rectangle_bbox")
    region = region_for(box)
    check_region(region)
    inner_ra = np.linspace(ra - 1.09, ra + 1.0, 15)
    inner_dec = np.linspace(dec - 0.97, dec + 0.93, 15)
    grid_ra, grid_dec = np.meshgrid(inner_ra, inner_dec)
    assert np.all(contains(region.ranges, ang2pix29(grid_ra.ravel(), grid_dec.ravel())))
    outside_ra = np.array([ra - 1.3, ra + 1.2, ra, ra])
    outside_dec = np.array([dec, dec, dec - 1.1, dec + 1.1])
    assert not np.any(contains(region.ranges, ang2pix29(outside_ra, outside_dec)))
    rectangle = (1.096 + 1.006) * (0.976 + 0.937) * math.cos(math.radians(dec))
    assert rectangle < region.area_deg2 < 1.1 * rectangle
    # Its corners hold levels above 0.9 (the rectangle holds 90 % of the model).
    assert credible_level_at(region, ra + 1.0, dec + 0.93)[()] > 0.9


def test_region_at_another_credible_level() -> None:
    circle = Circle(10.0, 10.0, 1.0, 0.9, convention="swift_bat")
    r50 = region_for(circle, credible_level=0.5)
    assert r50.credible_level == 0.5
    assert r50.radius90_deg == pytest.approx(1.0)
    radius50 = fisher.radius_for_level(r50.sigma_deg or 0.0, 0.5)
    assert radius50 == pytest.approx(math.sqrt(math.log(2) / math.log(10)), rel=1e-3)
    assert r50.area_deg2 < 0.4 * region_for(circle).area_deg2


@pytest.mark.parametrize(
    ("localisation", "message"),
    [
        (Circle(float("nan"), 0.0, 1.0, 0.9), "must be finite"),
        (Circle(10.0, float("inf"), 1.0, 0.9), "must be finite"),
        (Circle(10.0, 91.0, 1.0, 0.9), r"dec=91.0 deg is outside \[-90, 90\]"),
        (Circle(-999.0, 10.0, 1.0, 0.9), r"ra=-999.0 deg is outside \[-360, 360\]"),
        (Circle(0.0, 0.0, 0.0, 0.9), "must be > 0"),
        (Circle(0.0, 0.0, -1.0, 0.9), "must be > 0"),
        (Circle(0.0, 0.0, 360.0, 0.9), "360 deg is the 'no localisation' code"),
        (Circle(0.0, 0.0, 200.0, 0.9), "must be < 180"),
        (Ellipse(0.0, 0.0, 1.0, 0.0, 10.0, 0.9), "semi-axis b=0.0 deg must be > 0"),
        (Ellipse(0.0, 0.0, 1.0, 0.5, float("nan"), 0.9), "position angle"),
        (Box(0.0, 90.0, 1.0, 1.0, 1.0, 1.0, 0.9), "no extent at the pole"),
        (Box(0.0, 0.0, 1.0, -2.0, 1.0, 1.0, 0.9), "ra_plus=-2.0 deg must be > 0"),
        (Ellipse(0.0, 0.0, 170.0, 100.0, 0.0, 0.9), "exceeds 150 deg"),
    ],
)
def test_bad_coordinates(localisation: Circle | Ellipse | Box, message: str) -> None:
    with pytest.raises(BadCoordinates, match=message) as info:
        region_for(localisation)
    assert info.value.reason == "bad_coordinates"


def test_ra_is_wrapped() -> None:
    region = region_for(Circle(-30.0, 0.0, 1.0, 0.9))
    assert region.center_ra == pytest.approx(330.0)
    assert region_for(Circle(360.0, 0.0, 1.0, 0.9)).center_ra == 0.0


def test_gbm_convention_on_an_ellipse_is_refused() -> None:
    with pytest.raises(ConventionError, match="defined for circles"):
        region_for(Ellipse(0.0, 0.0, 5.0, 3.0, 0.0, 0.68, convention="fermi_gbm_final"))


def test_query_positions_are_validated() -> None:
    region = region_for(Circle(0.0, 0.0, 1.0, 0.9))
    with pytest.raises(ValueError, match="NaN or infinite"):
        credible_level_at(region, [0.0, np.nan], [0.0, 0.0])
    with pytest.raises(ValueError, match="outside"):
        density_at(region, 0.0, 95.0)


def test_searched_area_of_a_circle_is_the_cap_through_the_point() -> None:
    from skymaps import searched_area_model

    region = region_for(Circle(30.0, -20.0, 40.0, 0.9))  # a wide (GBM-like) circle
    theta = np.array([0.0, 5.0, 25.0, 40.0])
    level = credible_level_at(region, np.full(4, 30.0), -20.0 + theta)
    cap = 2 * np.pi * (1 - np.cos(np.radians(theta))) * (180 / np.pi) ** 2
    assert searched_area_model(region)(level) == pytest.approx(cap, rel=1e-9, abs=1e-12)
    assert np.isnan(searched_area_model(region)(np.array([np.nan]))).all()


def test_with_sorted_tiles_reorders_tiles_with_their_values() -> None:
    from dataclasses import replace

    from skymaps import level_density_at, with_sorted_tiles

    region = region_for(Ellipse(120.0, 10.0, 3.0, 1.0, 30.0, 0.9))
    assert with_sorted_tiles(region) is region
    order = np.random.default_rng(5).permutation(len(region.tile_ranges))
    shuffled = replace(region, tile_ranges=region.tile_ranges[order],
                       tile_credible_level=region.tile_credible_level[order],
                       tile_density_deg2=region.tile_density_deg2[order])
    fixed = with_sorted_tiles(shuffled)
    assert np.array_equal(fixed.tile_ranges, region.tile_ranges)
    ra, dec = np.array([120.0, 121.0, 150.0]), np.array([10.0, 10.5, 10.0])
    for got, want in zip(level_density_at(fixed, ra, dec), level_density_at(region, ra, dec),
                         strict=True):
        assert np.array_equal(got, want)
    overlapping = replace(shuffled, tile_ranges=np.concatenate(
        [shuffled.tile_ranges[:-1], shuffled.tile_ranges[:1]]))
    with pytest.raises(ValueError, match="overlap"):
        with_sorted_tiles(overlapping)
