"""``mm-broker bench NAME [--json] [--param KEY=VALUE]``: one benchmark, figures as JSON.

The benchmarks and their parameters are the table :data:`benchmarks.registry.BENCHMARKS`.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks import registry
from benchmarks.common import dumps
from mm_broker.core.config import Settings


def _epilog() -> str:
    lines = ["benchmarks and their parameters (default):"]
    for bench in registry.BENCHMARKS.values():
        lines.append(f"  {bench.name}: {bench.summary}")
        lines += [f"      {key}={p.default!r}  {p.help}" for key, p in bench.params.items()]
    return "\n".join(lines)


def parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``bench``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The sub-parser of the command.

    Returns
    -------
    argparse.ArgumentParser
        ``p``, with the arguments added.
    """
    p.add_argument("name", help=", ".join(registry.BENCHMARKS))
    p.add_argument("--json", action="store_true", help="one-line JSON")
    p.add_argument("--param", action="append",
                   help="benchmark parameter KEY=VALUE, e.g. rate=200 or, for soak, "
                        "minutes=1 (repeatable; see below and benchmarks/README.md)")
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = _epilog()
    return p


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Run the benchmark and print its figures.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments (``name``, ``json``, ``param``).
    settings : Settings
        Effective configuration.

    Returns
    -------
    int
        0, or 2 for an unknown benchmark or a bad parameter.
    """
    if args.name not in registry.BENCHMARKS:
        print(f"unknown benchmark {args.name!r}; known: {', '.join(registry.BENCHMARKS)}",
              file=sys.stderr)
        return 2
    bench = registry.get(args.name)
    try:
        params = bench.parse(args.param or [])
    except ValueError as exc:
        print(f"mm-broker bench {args.name}: {exc}", file=sys.stderr)
        return 2
    print(dumps(bench.run(settings, **params), compact=args.json))
    return 0
