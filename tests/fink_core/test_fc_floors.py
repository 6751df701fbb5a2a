"""The floors of fink_core and of provenance, read from the code (ast, nothing
imported): the ground floor's provenance imports nothing above it; fink_core imports
neither the join, nor the publishers, nor the listeners, nor the application; the
imports inside functions of fink_core are the heavy optional ones, each saying so."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("mm_broker", "fink_core", "coincidence", "publishers", "listeners", "skymaps",
           "benchmarks", "fuzz")
#: Third-party packages fink_core may import inside a function (heavy, optional).
LAZY_OK = ("pyspark", "confluent_kafka")


def _imports(path: Path, names: bool = True) -> list[tuple[str, int, bool]]:
    """(module, line, inside a function) of every import of ``path``; with ``names``,
    ``from pkg import x`` also gives ``pkg.x`` (x may be a module)."""
    tree = ast.parse(path.read_text("utf-8"))
    inner: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            inner |= {id(n) for n in ast.walk(fn) if isinstance(n, ast.Import | ast.ImportFrom)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in inner) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module, node.lineno, id(node) in inner))
            # `from pkg import module` imports pkg.module too
            if names:
                out += [(f"{node.module}.{a.name}", node.lineno, id(node) in inner)
                        for a in node.names]
    return out


def _project(module: str) -> str | None:
    top = module.split(".")[0]
    return top if top in PROJECT else None


def _ground(module: str) -> bool:
    """The ground floor: ``mm_broker.core`` and the face ``mm_broker`` (its version)."""
    parts = module.split(".")
    if parts[0] != "mm_broker" or len(parts) == 1 or parts[1] == "core":
        return parts[0] == "mm_broker"
    below = ROOT / "mm_broker" / parts[1]
    return not (below.is_dir() or below.with_suffix(".py").exists())  # a name, not a module


FINK_CORE = sorted((ROOT / "fink_core").glob("*.py"))


def test_the_ground_floor_imports_nothing_above_it() -> None:
    bad = []
    for path in sorted((ROOT / "mm_broker/core").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for module, line, _ in _imports(path):
            if _project(module) and not _ground(module):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not bad, bad


@pytest.mark.parametrize("path", FINK_CORE, ids=lambda p: p.name)
def test_fink_core_stays_on_its_floor(path: Path) -> None:
    allowed = ("fink_core", "skymaps")
    bad = [f"{line}: {module}" for module, line, _ in _imports(path)
           if (top := _project(module)) and top not in allowed and not _ground(module)]
    assert not bad, f"{path.name} imports above or beside its floor: {bad}"


@pytest.mark.parametrize("path", FINK_CORE, ids=lambda p: p.name)
def test_fink_core_imports_inside_functions_are_heavy_optional_ones(path: Path) -> None:
    lines = path.read_text("utf-8").splitlines()
    for module, line, inner in _imports(path, names=False):
        if not inner:
            continue
        assert module.split(".")[0] in LAZY_OK, f"{path.name}:{line} imports {module} lazily"
        assert "#" in lines[line - 1], f"{path.name}:{line}: say why {module} is lazy"


def test_no_fink_core_module_over_500_lines() -> None:
    long = {p.name: n for p in FINK_CORE if (n := len(p.read_text("utf-8").splitlines())) > 500}
    assert not long, long
