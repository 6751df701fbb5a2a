"""The package surface: region_for dispatch, MOC export/import, docstring examples."""

from __future__ import annotations

import doctest
import importlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st
from mocpy import MOC

from mm_broker.core.models import Box, Circle, Ellipse, SkyMap
from skymaps import (
    credible_level_at,
    region_for,
    region_from_moc_fits,
    region_from_moc_json,
    region_from_ranges,
    region_to_moc,
    region_to_moc_fits,
    region_to_moc_json,
)
from skymaps.moc_io import moc_order
from skymaps.ranges import cells_to_ranges, normalise

MODULES = [
    "skymaps.circles",
    "skymaps.conventions",
    "skymaps.coords",
    "skymaps.fisher",
    "skymaps.lookup",
    "skymaps.maps",
    "skymaps.moc_io",
    "skymaps.ranges",
    "skymaps.raster",
    "skymaps.region",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_region_for_dispatches_on_the_localisation(skymap_dir: Path) -> None:
    kinds = {
        "circle": Circle(10.0, 20.0, 1.0, 0.9),
        "ellipse": Ellipse(10.0, 20.0, 1.0, 0.5, 30.0, 0.9),
        "box": Box(10.0, 20.0, 1.0, 2.0, 0.5, 0.7, 0.9),
        "skymap": SkyMap((skymap_dir / "gw/MS260605l-PRELIMINARY.multiorder.fits").read_bytes()),
    }
    for kind, localisation in kinds.items():
        assert region_for(localisation).kind == kind
    with pytest.raises(TypeError, match="not a localisation: str"):
        region_for("10 20 1")  # type: ignore[arg-type]


@pytest.mark.parametrize("localisation", [
    Circle(83.23, 2.75, 1.0, 0.6827, convention="fermi_gbm_final"),
    Ellipse(346.56, 18.61, 0.22, 0.19, 153.0, 0.9, convention="maxi_gsc"),
    Box(77.43, 5.72, 0.80, 1.30, 0.58, 0.52, 0.9, convention="icecube_track"),
])
def test_moc_fits_and_json_round_trip(localisation: Circle | Ellipse | Box) -> None:
    region = region_for(localisation)
    data = region_to_moc_fits(region)
    with fits.open(io.BytesIO(data)) as hdul:
        header = hdul[1].header
        assert header["MOCDIM"] == "SPACE" and header["MOCVERS"] == "2.0"
        assert header["MOCORD_S"] == moc_order(region.ranges)
    read_back = MOC.from_fits(io.BytesIO(data))
    assert np.array_equal(np.asarray(read_back.to_depth29_ranges, dtype=np.uint64), region.ranges)
    assert np.array_equal(region_from_moc_fits(data).ranges, region.ranges)

    text = region_to_moc_json(region)
    assert all(key.isdigit() for key in json.loads(text))
    assert np.array_equal(region_from_moc_json(text).ranges, region.ranges)
    assert region_to_moc(region).sky_fraction * 4 * np.pi * (180 / np.pi) ** 2 == pytest.approx(
        region.area_deg2)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 29), st.integers(0, 2**20))
def test_moc_order_is_the_finest_cell(order: int, seed: int) -> None:
    ipix = seed % (12 * 4**order)
    # A single cell: its upper bound (ipix + 1) * 4**(29 - order) or its lower bound
    # has exactly 2 (29 - order) trailing zero bits.
    assert moc_order(cells_to_ranges(order, [ipix])) == order


def test_region_from_ranges_is_uniform() -> None:
    ranges = normalise([[0, 4**29], [5 * 4**29, 6 * 4**29]])
    region = region_from_ranges(ranges, credible_level=0.5)
    assert region.kind == "moc" and region.credible_level == 0.5
    assert np.all(region.tile_credible_level == 0.5)
    assert np.sum(region.tile_density_deg2 * region.area_deg2 / 2) == pytest.approx(0.5)
    # Inside: the tile's values; outside: level 1 and density 0.
    assert credible_level_at(region, [45.0, 180.0], [20.0, -60.0]).tolist() == [0.5, 1.0]
