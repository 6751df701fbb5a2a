"""A small run of the join benchmark (``mm-broker bench join``)."""

from __future__ import annotations

import pytest

from benchmarks.join import bench_join, run_join_bench
from mm_broker.core import config


def test_join_bench_reports_its_figures() -> None:
    result = run_join_bench(n_alerts=20_000, n_regions=8, n_gw=1, repeats=1)
    for key in ("alerts_per_s_per_core", "limit_alerts_per_s_per_core", "ratio", "cores"):
        assert key in result
    assert result["alerts_per_s_per_core"] > 0 and result["limit_alerts_per_s_per_core"] > 0
    assert result["ratio"] == pytest.approx(
        result["alerts_per_s_per_core"] / result["limit_alerts_per_s_per_core"]
    )
    assert result["gw_ranges_min"] > 10_000
    assert "alerts_per_s_per_core" in result["units"]


def test_bench_join_entry_adds_the_machine(settings: config.Settings) -> None:
    result = bench_join(settings, n_alerts=5_000, n_regions=3, n_gw=1, repeats=1, gw_depth=10)
    assert result["benchmark"] == "join" and result["cores"] >= 1
    assert "loadavg_1min" in result and result["n_alerts"] == 5_000
    assert result["n_regions"] == 3 and result["n_gw_regions"] == 1
