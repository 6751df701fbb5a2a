"""Sky maps: real LVK, GBM and IPN maps against ligo.skymap and mocpy; bad maps."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from pathlib import Path

import healpy as hp
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from ligo.skymap.postprocess.crossmatch import crossmatch
from sky_reference import Reference

from mm_broker.core.errors import BadSkyMap
from mm_broker.core.models import Region, SkyMap
from skymaps import Limits, credible_level_at, density_at, region_for, region_to_moc
from skymaps.ranges import PIX29_AREA_DEG2

DEG2_PER_SR = (180 / np.pi) ** 2
S230518H = "gw/S230518h-INITIAL-20230518T160718Z.multiorder.fits"
GW190814 = "gw/GW190814_S190814bv_LALInference.v1.fits.gz"
S190425Z = "gw/GW190425_S190425z_G330561_bayestar.fits.gz"

RegionOf = Callable[[Path], Region]
ReferenceOf = Callable[[Path], Reference]


def tile_areas(region: Region) -> np.ndarray:
    return (region.tile_ranges[:, 1] - region.tile_ranges[:, 0]).astype(float) * PIX29_AREA_DEG2


def crossing_cell_area(region: Region) -> float:
    """Area of the last cells taken into the region: the run of equal density (usually
    one cell) in which the cumulative probability crosses the region's level."""
    levels = region.tile_credible_level
    crossing = np.min(levels[levels >= region.credible_level])
    return float(np.sum(tile_areas(region)[levels == crossing]))


def run_probability(region: Region, levels: np.ndarray) -> np.ndarray:
    """Probability of the run of equal-density tiles sharing each of these levels."""
    prob = region.tile_density_deg2 * tile_areas(region)
    return np.array([np.sum(prob[region.tile_credible_level == level]) for level in levels])


def tile_centres(region: Region, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of some tiles (each tile is one HEALPix cell)."""
    lo, hi = region.tile_ranges[index, 0], region.tile_ranges[index, 1]
    order = 29 - np.log2((hi - lo).astype(np.float64)).astype(int) // 2
    ra, dec = np.empty(len(index)), np.empty(len(index))
    for o in np.unique(order):
        sel = order == o
        ipix = lo[sel] >> (2 * (29 - int(o)))
        ra[sel], dec[sel] = hp.pix2ang(2**int(o), ipix, nest=True, lonlat=True)
    return ra, dec


@pytest.mark.parametrize(
    ("name", "area"),
    [(S230518H, 666.0), (GW190814, 23.1), (S190425Z, 10183.0)],
)
def test_published_ninety_percent_areas(
    skymap_dir: Path, map_region: RegionOf, name: str, area: float
) -> None:
    region = map_region(skymap_dir / name)
    assert region.kind == "skymap" and region.credible_level == 0.9
    assert region.area_deg2 == pytest.approx(area, rel=0.01)


@pytest.mark.parametrize("index", range(25))
def test_every_gw_map_agrees_with_ligo_skymap_and_mocpy(
    gw_map_paths: list[Path], map_region: RegionOf, map_reference: ReferenceOf, index: int
) -> None:
    """Our 90 % area is crossmatch's interpolated searched area at contour 0.9 plus at
    most the one cell that crosses 0.9 (we keep it: the region holds >= 90 %); mocpy's
    independent 90 % MOC (which drops that cell) lies inside our ranges."""
    path = gw_map_paths[index]
    region = map_region(path)
    reference = map_reference(path)
    last_cell = crossing_cell_area(region)

    (searched_area,) = crossmatch(reference.table, contours=(0.9,)).contour_areas
    assert 0.0 <= region.area_deg2 - searched_area <= last_cell + 1e-9 * searched_area
    assert region.area_deg2 == pytest.approx(searched_area, rel=1e-3)

    moc_area = reference.moc90.sky_fraction * 4 * np.pi * DEG2_PER_SR
    assert reference.moc90.difference(region_to_moc(region)).sky_fraction == 0.0
    assert 0.0 <= region.area_deg2 - moc_area <= last_cell + 1e-6


@pytest.mark.parametrize(
    ("name", "area"),
    [
        ("grb/GBM_subthreshold_546126856_healpix.fits", 4301.0),
        ("grb/GRB180116A_glg_healpix_all_bn180116026.fit", 572.0),
        ("grb/GRB220617A_IPN_map_hpx.fits.gz", 0.089),
    ],
)
def test_grb_maps(skymap_dir: Path, map_region: RegionOf, map_reference: ReferenceOf,
                  name: str, area: float) -> None:
    """Fermi GBM (NESTED, PROBABILITY, nside 128) and IPN (RING, nside 2048) maps."""
    path = skymap_dir / name
    region = map_region(path)
    assert region.area_deg2 == pytest.approx(area, rel=0.01)
    assert "flat" in region.convention and region.distance == {}
    (searched_area,) = crossmatch(map_reference(path).table, contours=(0.9,)).contour_areas
    assert 0.0 <= region.area_deg2 - searched_area <= crossing_cell_area(region) + 1e-12


@pytest.mark.parametrize("name", [S230518H, GW190814])
def test_levels_and_densities_match_crossmatch(
    skymap_dir: Path, map_region: RegionOf, map_reference: ReferenceOf, name: str
) -> None:
    path = skymap_dir / name
    region = map_region(path)
    table = map_reference(path).table
    rng = np.random.default_rng(20230518)
    inside = np.flatnonzero(region.tile_credible_level < 0.95)
    index = np.concatenate(([int(np.argmin(region.tile_credible_level))],
                            rng.choice(inside, size=200, replace=False)))
    ra, dec = tile_centres(region, index)
    result = crossmatch(table, SkyCoord(ra, dec, unit="deg"))
    searched_prob = np.asarray(result.searched_prob)
    ours = credible_level_at(region, ra, dec)
    # Within a run of equal densities ligo.skymap counts cells one by one; we give the
    # whole run the level of its end. Runs here are single cells (S230518h) or the
    # pixels of a coarse cell rasterised into the flat GW190814 map.
    runs = run_probability(region, ours)
    assert np.all(ours >= searched_prob - 1e-6)
    assert np.all(ours <= searched_prob + runs + 1e-6)
    if name == S230518H:
        assert ours == pytest.approx(searched_prob, abs=1e-6)
    assert density_at(region, ra, dec) == pytest.approx(
        np.asarray(result.probdensity) / DEG2_PER_SR, rel=1e-6)
    # The peak: level of its cell only, the highest density.
    assert credible_level_at(region, ra[:1], dec[:1])[0] < 1e-2
    assert density_at(region, ra[:1], dec[:1])[0] == pytest.approx(
        region.tile_density_deg2.max())


def test_far_from_the_map_level_is_one_and_density_zero(
    skymap_dir: Path, map_region: RegionOf
) -> None:
    region = map_region(skymap_dir / S230518H)
    # The antipode of the peak is outside the tiles (beyond 99 % cumulative).
    peak = int(np.argmin(region.tile_credible_level))
    ra, dec = tile_centres(region, np.array([peak]))
    anti_ra, anti_dec = (ra + 180.0) % 360.0, -dec
    assert credible_level_at(region, anti_ra, anti_dec).tolist() == [1.0]
    assert density_at(region, anti_ra, anti_dec).tolist() == [0.0]


def test_distance_moments(skymap_dir: Path, map_region: RegionOf) -> None:
    region = map_region(skymap_dir / S230518H)
    assert region.distance == pytest.approx({"distmean": 277.9148872009554,
                                             "diststd": 68.2915891646133})
    cwb = skymap_dir / "gw/S240112e-PRELIMINARY-20240112T010901Z.multiorder.fits"
    assert map_region(cwb).distance == {}


def test_latency_budget_shape(skymap_dir: Path, map_region: RegionOf) -> None:
    """An LVK map: a few hundred ranges, tiles of the order of the map's cells."""
    region = map_region(skymap_dir / S230518H)
    assert 100 < len(region.ranges) < 2000
    assert 1000 < len(region.tile_ranges) <= 16896


# --------------------------------------------------------------------------- #
# Variants of one real map, made in memory
# --------------------------------------------------------------------------- #


def fits_bytes(hdul: fits.HDUList) -> bytes:
    buffer = io.BytesIO()
    hdul.writeto(buffer)
    return buffer.getvalue()


def modified_moc_map(path: Path, change: Callable[[fits.FITS_rec], None]) -> bytes:
    with fits.open(path) as hdul:
        hdul = fits.HDUList([hdu.copy() for hdu in hdul])
    change(hdul[1].data)
    return fits_bytes(hdul)


def flat_map(prob: np.ndarray, ordering: str, column: str = "PROB") -> bytes:
    hdu = fits.BinTableHDU.from_columns([fits.Column(column, "D", array=prob)])
    nside = hp.npix2nside(len(prob)) if hp.isnpixok(len(prob)) else 1
    hdu.header.update(PIXTYPE="HEALPIX", ORDERING=ordering, COORDSYS="C", NSIDE=nside,
                      INDXSCHM="IMPLICIT")
    return fits_bytes(fits.HDUList([fits.PrimaryHDU(), hdu]))


def same_region(a: Region, b: Region) -> bool:
    return (np.array_equal(a.ranges, b.ranges) and np.array_equal(a.tile_ranges, b.tile_ranges)
            and np.allclose(a.tile_credible_level, b.tile_credible_level)
            and np.allclose(a.tile_density_deg2, b.tile_density_deg2))


def test_gzip_ring_nested_and_density_variants_agree(skymap_dir: Path) -> None:
    data = (skymap_dir / S230518H).read_bytes()
    assert same_region(region_for(SkyMap(data)), region_for(SkyMap(gzip.compress(data))))

    nside = 64
    rng = np.random.default_rng(7)
    theta, phi = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)), nest=True)
    prob = np.exp(-((theta - 1.0) ** 2 + (phi - 2.0) ** 2) / 0.02) + 1e-9 * rng.random(len(theta))
    prob /= prob.sum()
    nested = region_for(SkyMap(flat_map(prob, "NESTED")))
    ring = region_for(SkyMap(flat_map(prob[hp.ring2nest(nside, np.arange(len(prob)))], "RING")))
    density = region_for(SkyMap(flat_map(prob / hp.nside2pixarea(nside), "NESTED",
                                         column="PROBDENSITY")))
    assert same_region(nested, ring) and same_region(nested, density)
    assert "nside 64" in nested.convention


def test_probabilities_within_tolerance_are_renormalised(skymap_dir: Path) -> None:
    def scale(data: fits.FITS_rec) -> None:
        data["PROBDENSITY"] *= 0.995

    region = region_for(SkyMap(modified_moc_map(skymap_dir / S230518H, scale)))
    original = region_for(SkyMap((skymap_dir / S230518H).read_bytes()))
    assert same_region(region, original)
    assert "summed to 0.995" in region.convention


def nan_cell(data: fits.FITS_rec) -> None:
    data["PROBDENSITY"][10] = np.nan


def negative_cell(data: fits.FITS_rec) -> None:
    data["PROBDENSITY"][10] = -1e-3


def half_probability(data: fits.FITS_rec) -> None:
    data["PROBDENSITY"] *= 0.5


def overlapping_cells(data: fits.FITS_rec) -> None:
    data["UNIQ"][1] = data["UNIQ"][0]


def invalid_uniq(data: fits.FITS_rec) -> None:
    data["UNIQ"][0] = 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (nan_cell, "1 cells have NaN or infinite probability"),
        (negative_cell, "1 cells have negative probability"),
        (half_probability, "probabilities sum to 0.5, not 1 within 0.01"),
        (overlapping_cells, "overlapping cells"),
        (invalid_uniq, "invalid UNIQ cells"),
    ],
)
def test_bad_probabilities_and_cells(
    skymap_dir: Path, change: Callable[[fits.FITS_rec], None], message: str
) -> None:
    data = modified_moc_map(skymap_dir / S230518H, change)
    with pytest.raises(BadSkyMap, match=message) as info:
        region_for(SkyMap(data))
    assert info.value.reason == "bad_skymap"


def test_bad_bytes(skymap_dir: Path) -> None:
    real = (skymap_dir / S230518H).read_bytes()
    cases = [
        (b"", "empty sky map: 0 bytes"),
        (b"hello, this is not a sky map", "not a FITS file"),
        (b"\x1f\x8b\x08\x00garbage-after-a-gzip-magic", "corrupt gzip stream"),
        (gzip.compress(real)[:5000], "corrupt gzip stream"),
        (real[: len(real) // 2], "unreadable FITS sky map"),
        (real[:2880], "no binary table"),
        (b"SIMPLE  =" + b" " * 100, "unreadable FITS sky map"),
    ]
    for data, message in cases:
        with pytest.raises(BadSkyMap, match=message):
            region_for(SkyMap(data))


def test_table_without_probability(skymap_dir: Path) -> None:
    hdu = fits.BinTableHDU.from_columns([fits.Column("FOO", "D", array=np.ones(12))])
    with pytest.raises(BadSkyMap, match="no PROB, PROBABILITY or PROBDENSITY column"):
        region_for(SkyMap(fits_bytes(fits.HDUList([fits.PrimaryHDU(), hdu]))))
    with pytest.raises(BadSkyMap, match="ValueError: Number of pixels must be divisible by 12"):
        region_for(SkyMap(flat_map(np.full(13, 1 / 13), "NESTED")))


def test_size_limits(skymap_dir: Path) -> None:
    real = (skymap_dir / S230518H).read_bytes()
    with pytest.raises(BadSkyMap, match=r"sky map too large: 685440 bytes > limit 1000"):
        region_for(SkyMap(real), limits=Limits(max_bytes=1000))
    with pytest.raises(BadSkyMap, match="too large once uncompressed"):
        region_for(SkyMap(gzip.compress(real)), limits=Limits(max_uncompressed_bytes=100_000))
    with pytest.raises(BadSkyMap, match="sky map has 16896 cells > limit 1000"):
        region_for(SkyMap(real), max_tiles=1000)
    with pytest.raises(BadSkyMap, match="limit 10"):
        region_for(SkyMap(real), max_bytes=10)


def test_a_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"SIMPLE  =" + b"\0" * (20 * 2**20))
    assert len(bomb) < 50_000
    with pytest.raises(BadSkyMap, match="too large once uncompressed"):
        region_for(SkyMap(bomb), limits=Limits(max_uncompressed_bytes=2**20))


def test_map_not_embedded() -> None:
    with pytest.raises(BadSkyMap, match=r"not embedded \(url: https://x.org/m.fits\)"):
        region_for(SkyMap(data=None, url="https://x.org/m.fits"))
