"""GW distance figures on the real maps: against ligo.skymap, and an injected kilonova."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import astropy.units as u
import healpy as hp
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from ligo.skymap import distance as ligo_distance
from ligo.skymap.io import read_sky_map
from ligo.skymap.moc import uniq2order
from ligo.skymap.postprocess import crossmatch
from scipy.integrate import quad

from coincidence import distance as dist
from coincidence.alerts import AlertBatch
from coincidence.distance_figures import (
    HostSearch,
    MagnitudeRanges,
    magnitude_figures,
    prepare_distance,
)
from coincidence.galaxies import load_galaxies
from coincidence.rules import Window
from coincidence.version import EventMeta, associations, prepare
from mm_broker.core.models import Messenger, Significance
from skymaps import density_at, region_from_skymap
from skymaps.distance import distance_parameters_at
from skymaps.ranges import PIX29_AREA_DEG2
from tests.data_paths import data_dir

DATA = data_dir()
GW = DATA / "skymaps" / "gw"
CATALOGUES = DATA / "catalogues"
MAPS = ["S230518h-INITIAL-20230518T160718Z.multiorder.fits",
        "MS230518e-INITIAL-20230518T050944Z.multiorder.fits",
        "S240115ak-PRELIMINARY-20240115T200827Z.multiorder.fits",
        "GW190425_S190425z_G330561_bayestar.fits.gz"]


def _directions(region, n, seed):
    """Centres of random tiles (probability-weighted) of a region."""
    rng = np.random.default_rng(seed)
    area = (region.tile_ranges[:, 1] - region.tile_ranges[:, 0]) * PIX29_AREA_DEG2
    w = region.tile_density_deg2 * area
    rows = rng.choice(len(w), size=n, p=w / w.sum())
    mid = (region.tile_ranges[rows, 0] + region.tile_ranges[rows, 1]) // 2
    ra, dec = hp.pix2ang(2**29, mid, nest=True, lonlat=True)
    return ra, dec


@pytest.mark.parametrize("name", MAPS)
def test_line_of_sight_posterior_matches_ligo_skymap(name):
    data = (GW / name).read_bytes()
    region = region_from_skymap(data)
    assert region.distance_layers is not None
    ra, dec = _directions(region, 200, 1)
    mu, sigma, norm, ok = distance_parameters_at(region, ra, dec)
    assert ok.all()
    # the layers are the map's own: ligo.skymap's values at the same directions
    table = read_sky_map(str(GW / name), moc=True)
    result = crossmatch(table, SkyCoord(ra * u.deg, dec * u.deg), cosmology=False)
    np.testing.assert_allclose(density_at(region, ra, dec) * (180 / math.pi) ** 2,
                               result.probdensity, rtol=1e-9)
    x = mu / sigma
    good = x > -5.0  # where ligo.skymap's own closed forms keep 1e-10 (see below)
    for ours, theirs in zip(dist.moments(mu, sigma),
                            ligo_distance.parameters_to_moments(mu, sigma), strict=True):
        np.testing.assert_allclose(ours[good], theirs[good], rtol=1e-8)
    np.testing.assert_allclose(norm, ligo_distance.parameters_to_moments(mu, sigma)[2],
                               rtol=1e-6)
    mean = dist.moments(mu, sigma)[0]
    for scale in (0.3, 0.8, 1.0, 1.5, 2.5):
        r = scale * mean
        np.testing.assert_allclose(dist.conditional_pdf(r, mu, sigma, norm),
                                   ligo_distance.conditional_pdf(r, mu, sigma, norm),
                                   rtol=1e-12)
        np.testing.assert_allclose(dist.conditional_cdf(r, mu, sigma, norm),
                                   ligo_distance.conditional_cdf(r, mu, sigma, norm),
                                   atol=1e-11)
    for p in (0.05, 0.5, 0.95):
        np.testing.assert_allclose(dist.conditional_ppf(p, mu, sigma, norm)[good],
                                   ligo_distance.conditional_ppf(p, mu, sigma, norm)[good],
                                   rtol=1e-9)


def test_far_tail_cells_against_quadrature():
    """Cells with mu/sigma far below 0 (down to -18 in the real maps): the series
    branch against a direct quadrature (ligo.skymap loses digits there)."""
    for x in (-12.0, -18.0):
        y = -x
        s = [quad(lambda t, n=n: t**n * np.exp(-y * t - t * t / 2), 0, np.inf,
                  epsabs=0, epsrel=1e-13)[0] for n in (2, 3, 4)]
        mean, std, _ = dist.moments(x, 1.0)
        assert float(mean) == pytest.approx(s[1] / s[0], rel=1e-12)
        assert float(std) == pytest.approx(math.sqrt(s[2] / s[0] - (s[1] / s[0]) ** 2),
                                           rel=1e-10)


def test_volume_density_matches_crossmatch():
    name = MAPS[0]
    region = region_from_skymap((GW / name).read_bytes())
    ra, dec = _directions(region, 100, 2)
    mu, sigma, norm, _ = distance_parameters_at(region, ra, dec)
    d = np.random.default_rng(3).uniform(0.3, 2.0, len(ra)) * region.distance["distmean"]
    table = read_sky_map(str(GW / name), moc=True)
    result = crossmatch(table, SkyCoord(ra * u.deg, dec * u.deg, distance=d * u.Mpc),
                        cosmology=False)
    rho = density_at(region, ra, dec) * (180 / math.pi) ** 2
    # crossmatch evaluates dP/dV on its grid of 1000 shells out to 6 x the marginal
    # mean distance, at the shell's inner radius: comparable there.
    prob = table["PROBDENSITY"] * (4 * np.pi / 12) / 4.0 ** table_order(table)
    max_r = 6 * float(ligo_distance.parameters_to_marginal_moments(
        prob, table["DISTMU"], table["DISTSIGMA"])[0])
    step = max_r / 1000
    grid_r = step * np.floor(d / step)
    np.testing.assert_allclose(dist.volume_density(rho, grid_r, mu, sigma, norm),
                               result.probdensity_vol, rtol=1e-9)
    # and between two shells it is the ansatz itself, not a step function
    assert np.all(np.isfinite(dist.volume_density(rho, d, mu, sigma, norm)))


def table_order(table):
    """HEALPix order of each multi-order cell."""
    return uniq2order(table["UNIQ"])


@pytest.fixture(scope="module")
def gw190814():
    return region_from_skymap(
        (GW / "GW190814_S190814bv_LALInference.v1.fits.gz").read_bytes())


def test_injected_kilonova_outranks_alerts_at_inconsistent_distances(gw190814):
    region = gw190814
    galaxies = load_galaxies([CATALOGUES / "CLU_mini.hdf5",
                              CATALOGUES / "glade_S190814bv_subset.csv"],
                             error_fraction=0.1, peculiar_velocity_kms=300.0)
    hosts = HostSearch(galaxies, max_radius_arcsec=60.0, max_offset_kpc=20.0)
    # GLADE galaxies of the map, with the line-of-sight posterior at each
    glade = np.flatnonzero(galaxies.sources == "glade_S190814bv_subset.csv")
    mu, sigma, norm, ok = distance_parameters_at(region, galaxies.ra[glade],
                                                 galaxies.dec[glade])
    glade, mu, sigma, norm = glade[ok], mu[ok], sigma[ok], norm[ok]
    median = dist.conditional_ppf(0.5, mu, sigma, norm)
    p = dist.distance_p_value(galaxies.distance_mpc[glade], galaxies.distance_err_mpc[glade],
                              mu, sigma, norm)
    consistent = glade[np.argmax(p)]
    assert p.max() > 0.5
    # the subset was drawn near the map's distance: its least consistent galaxies
    order = np.argsort(p)
    inconsistent = glade[order[:5]]
    worst_p = float(p[order[4]])
    assert worst_p < 0.05
    d_host = float(galaxies.distance_mpc[consistent])
    assert abs(d_host - float(median[np.argmax(p)])) < 0.5 * float(sigma[np.argmax(p)]) + 30
    # alerts 2 arcsec east of each galaxy
    chosen = np.concatenate([[consistent], inconsistent])
    ra = galaxies.ra[chosen] + 2.0 / 3600 / np.cos(np.radians(galaxies.dec[chosen]))
    dec = galaxies.dec[chosen]
    t0 = datetime(2019, 8, 14, 21, 10, 39, tzinfo=UTC)
    t_ns = int(t0.timestamp() * 1e9) + 3600 * 10**9
    batch = AlertBatch.from_arrays(alert_id=[f"a{i}" for i in range(len(chosen))],
                                   object_id=[f"o{i}" for i in range(len(chosen))],
                                   survey="ZTF", ra=ra, dec=dec,
                                   time_ns=np.full(len(chosen), t_ns),
                                   first_ns=np.full(len(chosen), t_ns))
    meta = EventMeta("LVK:S190814bv", Messenger.GW, "LVK", "LIGO-Virgo", t0, 1,
                     significance=Significance.from_mapping({"far_hz": 2e-33}))
    version = prepare(meta, 1, region, Window(600.0, 20 * 86400.0, 600.0), hosts)
    assert version.distance is not None and version.distance.total_weight > 0
    out = associations(version, batch, None)
    kilonova, others = out[0], out[1:]
    assert kilonova.host_name == str(galaxies.names[consistent])
    assert kilonova.host_distance_p_value > 0.5
    assert kilonova.prob_density_vol_mpc3 > 0
    for other in others:
        assert other.host_distance_p_value <= worst_p + 1e-9
        assert kilonova.galaxy_prob > other.galaxy_prob
    # a kilonova's magnitude at the host's distance: M = -16
    mag = -16.0 + 5 * math.log10(d_host) + 25
    ranges = MagnitudeRanges((-17.5, -11.5), (-30.0, -18.0))
    figures = magnitude_figures(kilonova.to_record(), mag, ranges)
    assert figures["abs_mag"] == pytest.approx(-16.0)
    assert figures["fits_kilonova"] is True and figures["fits_afterglow"] is False
    assert kilonova.dist_lo_mpc < kilonova.dist_median_mpc < kilonova.dist_hi_mpc
    # without a catalogue the line-of-sight figures stay, the host ones do not
    bare = prepare_distance(region, None)
    assert bare is not None and bare.total_weight == 0.0


def test_significance_from_notice_mapping():
    s = Significance.from_mapping({"far_hz": 3e-10, "significant": True,
                                   "classification": {"BNS": 0.95, "Terrestrial": 0.05},
                                   "properties": {"HasNS": 1.0, "HasRemnant": 1.0}})
    assert (s.far_hz, s.has_ns, s.significant) == (3e-10, 1.0, True)
    assert s.p_astro == pytest.approx(0.95)
    assert Significance.from_mapping({"signalness": 0.3, "far_hz": "x"}).far_hz is None
