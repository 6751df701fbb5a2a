"""The worked examples in the docstrings (the join benchmark: tests/benchmarks)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "coincidence.alerts",
    "coincidence.index",
    "coincidence.pchance",
    "coincidence.rules",
    "coincidence.times",
    "coincidence.version",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
