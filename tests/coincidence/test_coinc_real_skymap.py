"""The engine's map model (the one of skymaps) against ligo.skymap's crossmatch, on a
real LVK sky map whose tiles come in the file's order (not sorted by index)."""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from coinc_regions import CONTRACT_WINDOW, T0, multiorder_map_region, random_in_cap

from coincidence.index import ActiveRegions, RegionEntry, ipix29
from coincidence.version import EventMeta, prepare
from mm_broker.core.models import Messenger
from skymaps.lookup import level_density_at

MAP = "skymaps/gw/G361581_S200129m_bayestar.multiorder.fits"  # S200129m, A90 = 53.1 deg²
META = EventMeta("LVK:S200129m", Messenger.GW, "LVK", "H1,L1,V1", T0, 1)


def test_levels_density_and_searched_area_match_ligo_skymap(data_dir: Path) -> None:
    from ligo.skymap.io import read_sky_map
    from ligo.skymap.postprocess.crossmatch import crossmatch

    # 2-D only: the distance columns make crossmatch compute volumes (seconds)
    table = read_sky_map(str(data_dir / MAP), moc=True)["UNIQ", "PROBDENSITY"]
    region = multiorder_map_region(table["UNIQ"], table["PROBDENSITY"])
    assert region.area_deg2 == pytest.approx(53.1, abs=0.1)  # SOURCES table, ligo.skymap
    assert np.any(np.diff(region.tile_ranges[:, 0]) < 0)  # tiles in UNIQ order, unsorted

    rng = np.random.default_rng(3)
    ra, dec = random_in_cap(rng, 400, 318.34, 4.574, 8.0)
    result = crossmatch(table, SkyCoord(ra * u.deg, dec * u.deg))
    # as the engine prepares it: tiles sorted once, the searched-area model built once
    version = prepare(META, 1, region, CONTRACT_WINDOW)
    level, density, described = level_density_at(version.region, ra, dec)
    assert described.all()
    area = version.areas(level)
    deg2_per_sr = (180 / np.pi) ** 2
    assert density == pytest.approx(np.asarray(result.probdensity) / deg2_per_sr, rel=1e-9)
    assert level == pytest.approx(np.asarray(result.searched_prob), abs=1e-9)
    # Searched area: identical up to the 99 % level. Beyond it the map's tiles of
    # (numerically) zero probability share one cumulative level, and the order among
    # ties decides the area: no candidate is ever that far out.
    useful = level <= 0.99
    assert useful.sum() > 80
    expected = np.asarray(result.searched_area)
    assert area[useful] == pytest.approx(expected[useful], rel=1e-6, abs=1e-9)

    # the index puts exactly the positions at level <= 0.9 in the region
    index = ActiveRegions([RegionEntry("S200129m", region, 0, 1)])
    alert_idx, _ = index.match(ipix29(ra, dec))
    inside = np.zeros(len(ra), dtype=bool)
    inside[alert_idx] = True
    assert inside.any() and (~inside).any()
    np.testing.assert_array_equal(inside, level <= 0.9)
