"""Fixtures of the skymaps tests: the real sky maps, read once per session."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest
from sky_reference import Reference, reference

from mm_broker.core.models import Region
from skymaps import region_from_skymap


@pytest.fixture(scope="session")
def skymap_dir(data_dir: Path) -> Path:
    return data_dir / "skymaps"


@pytest.fixture(scope="session")
def gw_map_paths(skymap_dir: Path) -> list[Path]:
    paths = sorted((skymap_dir / "gw").iterdir())
    assert len(paths) == 25, "expected the 25 GW sky maps of the shared data"
    return paths


@pytest.fixture(scope="session")
def map_region() -> Callable[[Path], Region]:
    """Our region of a map file, built once per session."""
    return functools.cache(lambda path: region_from_skymap(path.read_bytes()))


@pytest.fixture(scope="session")
def map_reference() -> Callable[[Path], Reference]:
    """ligo.skymap/mocpy reference of a map file, built once per session."""
    return functools.cache(reference)
