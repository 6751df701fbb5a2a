"""The worked examples in the docstrings, and a small run of the join benchmark."""

from __future__ import annotations

import doctest
import importlib

import pytest

from coincidence.bench import run_join_bench

MODULES = [
    "coincidence.alerts",
    "coincidence.annotate",
    "coincidence.index",
    "coincidence.pchance",
    "coincidence.rules",
    "coincidence.times",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


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
