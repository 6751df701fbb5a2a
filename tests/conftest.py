"""Shared fixtures.

Real data is read in place from ``MM_DATA_DIR`` (default: ``../shared/data`` next to
the repository); it is never copied into the repository.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mm_broker.app import services
from mm_broker.core import config
from tests import data_paths

REPO = Path(__file__).resolve().parent.parent

# The suite never reaches the network: official sky maps linked by notices are not
# fetched (each lookup of a real map host would fail, slowly, on a machine without
# the network). The fetcher's own tests turn it on against a local HTTP server.
os.environ.setdefault("MM_SKYMAPS__FETCH", "false")


def _data_dir() -> Path:
    return data_paths.data_dir()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Root of the shared real data (notices, alerts, sky maps, catalogues)."""
    path = _data_dir()
    if not path.is_dir():
        pytest.fail(f"real data not found at {path}; set MM_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def settings() -> config.Settings:
    """Effective configuration (defaults + MM_* environment)."""
    return config.load()


@pytest.fixture(scope="session")
def running(settings: config.Settings) -> config.Settings:
    """Make sure the local services run (idempotent ``services up``)."""
    services.up(settings)
    return settings


@pytest.fixture(scope="session")
def spark(running: config.Settings) -> Iterator[object]:
    """One Spark session (with the connector jars) for the whole test session."""
    from fink_core import session as sparkmod

    session = sparkmod.session(running, "mm_broker-tests")
    yield session
    session.stop()


@pytest.fixture
def fresh_db(running: config.Settings) -> Iterator[config.Settings]:
    """A new, empty database at the newest migration in the real local PostgreSQL
    (dropped afterwards), so tests that store events do not see each other's."""
    from mm_broker.core.db.scratch import temporary_database

    with temporary_database(running, "mm_test") as settings:
        yield settings
