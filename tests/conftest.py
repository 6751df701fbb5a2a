"""Shared fixtures.

Real data is read in place from ``MM_DATA_DIR`` (default: ``../shared/data`` next to
the repository); it is never copied into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _data_dir() -> Path:
    return Path(os.environ.get("MM_DATA_DIR", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Root of the shared real data (notices, alerts, sky maps, catalogues)."""
    path = _data_dir()
    if not path.is_dir():
        pytest.fail(f"real data not found at {path}; set MM_DATA_DIR")
    return path
