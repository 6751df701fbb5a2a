"""The publish benchmark runs against the real services (tiny sizes here)."""

from __future__ import annotations

import pytest

from benchmarks import publish as bench
from mm_broker.core import config

pytestmark = pytest.mark.services


def test_bench_publish_small(running: config.Settings) -> None:
    figures = bench.run(n_records=300, n_voevents=5, settings=running)
    assert figures["benchmark"] == "publish" and figures["cores"] >= 1
    assert figures["kafka"]["n_records"] == 300 and figures["kafka"]["records_per_s"] > 0
    assert figures["comet"]["n_voevents"] == 5 and figures["comet"]["voevents_per_s"] > 0
    assert 0 < figures["comet"]["submit_median_ms"] <= figures["comet"]["submit_p95_ms"]
