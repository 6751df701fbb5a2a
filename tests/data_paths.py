"""Where the shared real data is: ``MM_DATA_DIR``, or ``../shared/data`` beside the
repository. For module-level paths of tests; fixtures use ``data_dir`` (conftest)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Root of the shared real data (read in place, never copied)."""
    return Path(os.environ.get("MM_DATA_DIR", REPO.parent / "shared" / "data")).resolve()
