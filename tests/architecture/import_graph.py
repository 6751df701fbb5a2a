"""The project's import graph, read with ``ast`` (no module is imported)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Top-level packages of the project (tests excluded).
PACKAGES = ("mm_broker", "listeners", "skymaps", "fink_core", "coincidence", "publishers",
            "benchmarks", "fuzz")


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` (a module of the project) at ``line``."""

    source: str
    target: str
    line: int
    in_function: bool
    type_checking: bool


def modules() -> dict[str, Path]:
    """Dotted module name → file, for every module of the project."""
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if "migrations" in parts:  # Alembic scripts, run by Alembic
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, in_function: bool, type_checking: bool,
          ) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, in_function, type_checking
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _walk(child, True, type_checking)
        elif isinstance(child, ast.If) and _is_type_checking(child):
            for sub in child.body:
                yield from _walk(ast.Module(body=[sub], type_ignores=[]), in_function, True)
            for sub in child.orelse:
                yield from _walk(ast.Module(body=[sub], type_ignores=[]), in_function,
                                 type_checking)
        else:
            yield from _walk(child, in_function, type_checking)


def edges() -> list[Edge]:
    """Every import of a project module by a project module.

    ``from pkg import name`` is an edge to ``pkg`` (its face, ``__init__``, which
    Python runs first), and also to ``pkg.name`` when that is a module; ``import
    pkg.mod`` is an edge to ``pkg.mod``. Relative imports are resolved.
    """
    mods = modules()
    out: list[Edge] = []
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text("utf-8"), str(path))
        for node, in_fn, tc in _walk(tree, False, False):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = name.split(".") if is_pkg else name.split(".")[:-1]
                    parts = parts[:len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets.append(base)
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    if sub in mods:
                        targets.append(sub)
            for t in targets:
                if t.split(".")[0] in PACKAGES:
                    out.append(Edge(name, t, node.lineno, in_fn, tc))
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), or self-loops."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out
