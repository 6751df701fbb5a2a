"""Fixtures for tests on the real local services (PostgreSQL, Kafka, Comet, Spark)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mm_broker import config, services


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
    from mm_broker import spark as sparkmod

    session = sparkmod.session(running, "mm_broker-tests")
    yield session
    session.stop()
