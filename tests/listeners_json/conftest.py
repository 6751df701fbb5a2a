"""Fixtures for the JSON parser tests: the real JSON notices, walked in place.

Every file under ``notices/`` and ``triggers/`` of the shared data that is not a
VOEvent (``.xml``), a FITS sky map (``.fits``, ``.fits.gz``) or documentation
(``.md``) is a JSON notice (``.json``, and fink-mm's ``.txt`` Kafka dumps).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from mm_broker.core.models import Box, Circle, Ellipse, Messenger, Notice, Role, SkyMap

#: Folders of the shared data that hold notices.
NOTICE_FOLDERS = ("notices", "triggers")

#: Suffixes that are not JSON notices (other parsers' or other packages' inputs).
NOT_JSON_SUFFIXES = (".xml", ".fits", ".fits.gz", ".md")


#: Significance figures that are probabilities or p-values.
PROBABILITIES = frozenset(
    {
        "p_astro",
        "signalness",
        "p_value",
        "pval_generic",
        "pval_bayesian",
        "event_pval_generic",
        "event_pval_bayesian",
    }
)


@pytest.fixture(scope="session")
def json_notice_paths(data_dir: Path) -> list[str]:
    """Relative paths (from the data root) of every JSON notice file, sorted."""
    found = []
    for folder in NOTICE_FOLDERS:
        for path in (data_dir / folder).rglob("*"):
            if path.is_file() and not path.name.endswith(NOT_JSON_SUFFIXES):
                found.append(path.relative_to(data_dir).as_posix())
    return sorted(found)


@pytest.fixture(scope="session")
def read_notice(data_dir: Path) -> Callable[[str], bytes]:
    """Read a notice file (relative path) as bytes, cached for the session."""
    cache: dict[str, bytes] = {}

    def read(rel: str) -> bytes:
        if rel not in cache:
            cache[rel] = (data_dir / rel).read_bytes()
        return cache[rel]

    return read


def check_notice(notice: Notice) -> None:
    """Invariants every Notice from a JSON parser must satisfy."""
    assert isinstance(notice, Notice)
    assert isinstance(notice.messenger, Messenger) and isinstance(notice.role, Role)
    assert notice.event_id.split(":", 1)[0] and notice.event_id.split(":", 1)[1].strip()
    assert notice.mission and notice.instrument and notice.notice_type
    for moment in (notice.trigger_time, notice.issue_time):
        assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
    assert isinstance(notice.version, int) and 0 <= notice.version < 2**63
    assert notice.retraction == (notice.localisation is None)
    loc = notice.localisation
    if isinstance(loc, Circle | Ellipse | Box):
        assert 0.0 <= loc.ra < 360.0 and -90.0 <= loc.dec <= 90.0
        assert 0.0 < loc.containment <= 1.0
    if isinstance(loc, Circle):
        assert 0.0 < loc.radius_deg <= 180.0 and math.isfinite(loc.radius_deg)
        assert loc.systematic_deg is None or loc.systematic_deg > 0
    elif isinstance(loc, Ellipse):
        assert 0.0 < loc.b_deg <= loc.a_deg <= 180.0 and 0.0 <= loc.pa_deg < 180.0
    elif isinstance(loc, Box):
        offsets = (loc.ra_minus, loc.ra_plus, loc.dec_minus, loc.dec_plus)
        assert all(math.isfinite(v) and v >= 0 for v in offsets)
        assert loc.ra_minus + loc.ra_plus > 0 and loc.dec_minus + loc.dec_plus > 0
    elif isinstance(loc, SkyMap):
        if loc.data is None:
            assert isinstance(loc.url, str) and loc.url
        else:
            assert loc.data[:6] == b"SIMPLE" or loc.data[:2] == b"\x1f\x8b"
    # Records must travel as JSON: no NaN, no bytes, no lone surrogates.
    json.dumps(notice.significance, allow_nan=False, ensure_ascii=False).encode("utf-8")
    json.dumps(notice.extra, allow_nan=False, ensure_ascii=False).encode("utf-8")
    sig = notice.significance
    assert sig.get("far_hz", 0.0) >= 0.0
    for key in PROBABILITIES & sig.keys():
        assert 0.0 <= sig[key] <= 1.0, key
    for key in ("rate_snr", "image_snr", "n_events_coincident"):
        assert sig.get(key, 0) >= 0, key


@pytest.fixture(scope="session")
def notice_invariants() -> Callable[[Notice], None]:
    """The invariant checker, as a fixture (session scope, usable under hypothesis)."""
    return check_notice
