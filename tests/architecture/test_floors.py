"""The floors of ARCHITECTURE.md, checked on the import graph (ast; nothing imported).

* no import cycle, package faces (``__init__``) included;
* a project module is imported at the top of a module, never inside a function (a
  function-level import is how a cycle hides), except where the table below says why;
* the ground floor (``mm_broker.core``) imports nothing above it; each data-flow
  package imports only the packages the data flow gives it; the application floor
  (``mm_broker.app``, ``benchmarks``, ``fuzz``) is imported by nothing below it;
* no module over 500 lines.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict

import pytest

from tests.architecture.import_graph import ROOT, cycles, edges, modules


def _floor(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "mm_broker":
        if len(parts) == 1 or parts[1] == "core":
            return "core"
        return "app"
    return parts[0]


#: What each floor may import (besides itself). The data flow: notices are parsed
#: (listeners) and localised (skymaps); alerts are enriched (fink_core); the join
#: (coincidence) takes regions and enriched alerts; publishers format what the join
#: found. The application floor wires them all.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "skymaps": {"core"},
    "listeners": {"core"},
    "fink_core": {"core"},
    "coincidence": {"core", "skymaps", "fink_core"},
    "publishers": {"core"},
    # the CLI runs the benchmarks (`mm-broker bench`): one floor, no cycle (checked above)
    "app": {"core", "listeners", "skymaps", "fink_core", "coincidence", "publishers",
            "benchmarks"},
    "benchmarks": {"core", "listeners", "skymaps", "fink_core", "coincidence", "publishers",
                   "app"},
    "fuzz": {"core", "listeners", "skymaps", "fink_core", "coincidence", "publishers", "app"},
}

#: Function-level imports of project modules that are allowed, with the reason.
LAZY_ALLOWED: dict[tuple[str, str], str] = {}


def test_the_graph_is_read() -> None:
    mods, es = modules(), edges()
    assert len(mods) > 100 and len(es) > 200
    assert "mm_broker.core.models" in mods and "mm_broker.app.cli" in mods


def test_no_import_cycle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges():
        if not e.type_checking:
            graph[e.source].add(e.target)
    found = cycles(graph)
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_project_import_inside_a_function() -> None:
    inner = [f"{e.source}:{e.line} imports {e.target}" for e in edges()
             if e.in_function and (e.source, e.target) not in LAZY_ALLOWED]
    assert inner == [], "imports inside functions:\n" + "\n".join(inner)


def test_floors() -> None:
    bad = sorted({f"{e.source} ({_floor(e.source)}) imports {e.target} ({_floor(e.target)})"
                  for e in edges()
                  if _floor(e.target) != _floor(e.source)
                  and _floor(e.target) not in ALLOWED[_floor(e.source)]})
    assert bad == [], "imports across floors:\n" + "\n".join(bad)


@pytest.mark.parametrize(("source", "target"), [
    ("mm_broker.core.models", "listeners.parsers"), ("skymaps.maps", "listeners.parsers"),
    ("fink_core.pipeline", "coincidence.engine"), ("fink_core.pipeline", "publishers.kafka"),
    ("listeners.gcn", "mm_broker.app.ingest"), ("coincidence.engine", "mm_broker.app.run"),
])
def test_the_floor_table_refuses_what_the_issue_names(source: str, target: str) -> None:
    """The checks above would catch these imports (the table is not empty of meaning)."""
    assert _floor(target) not in ALLOWED[_floor(source)]


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_over_500_lines() -> None:
    long = sorted((n, len(p.read_text("utf-8").splitlines())) for n, p in modules().items()
                  if len(p.read_text("utf-8").splitlines()) > 500)
    assert long == [], f"modules over 500 lines: {long}"


def test_root_is_the_repository() -> None:
    assert (ROOT / "pyproject.toml").is_file()


def test_settings_are_read_typed() -> None:
    """Code reads the typed sections (``settings.kafka.bootstrap``), not the raw tree
    (``settings.get("kafka.bootstrap")``, ``settings.tree["kafka"]``), outside the
    configuration module itself."""
    raw = re.compile(r"settings\.get\(|settings\.tree\[")
    found = [f"{name}:{i}" for name, path in modules().items()
             if name not in ("mm_broker.core.config", "mm_broker.core.sections")
             for i, line in enumerate(path.read_text("utf-8").splitlines(), 1)
             if raw.search(line)]
    assert found == [], "untyped settings reads:\n" + "\n".join(found)


def test_every_error_class_lives_in_the_ground_floor() -> None:
    """Public exception classes are defined in ``mm_broker/core/errors.py`` only (other
    modules import them), so a caller catches by one name, from one place. (A
    ``BaseException`` subclass is a control signal, such as the fuzzer's per-case
    timeout, not an error: it is left where it is used.)"""
    bases = ("Error", "Exception", "Warning", "Invalid", "NotFound", "Unknown",
             "Incompatible", "Rejected", "Unavailable")
    found = []
    for name, path in modules().items():
        if name == "mm_broker.core.errors":
            continue
        for node in ast.parse(path.read_text("utf-8")).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                names = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                         for b in node.bases]
                builtin = ("ValueError", "RuntimeError", "LookupError", "KeyError", "OSError")
                if "BaseException" not in names and any(n.endswith(bases) or n in builtin
                                                        for n in names):
                    found.append(f"{name}.{node.name}")
    assert found == [], "error classes outside mm_broker/core/errors.py: " + ", ".join(found)
