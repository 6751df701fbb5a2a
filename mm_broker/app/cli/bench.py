"""``mm-broker bench NAME [--json] [--param KEY=VALUE]``: one benchmark, figures as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from mm_broker.app import bench
from mm_broker.core.config import Settings


def parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``bench``."""
    p.add_argument("name", help="notices, pipeline, join, latency, retro, publish, soak")
    p.add_argument("--json", action="store_true", help="one-line JSON")
    p.add_argument("--param", action="append",
                   help="benchmark parameter KEY=VALUE, e.g. rate=200 or, for soak, "
                        "minutes=1 (repeatable; see benchmarks/README.md)")
    return p


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Run the benchmark and print its figures."""
    table = bench.registry()
    if args.name not in table:
        print(f"unknown benchmark {args.name!r}; known: {', '.join(sorted(table))}",
              file=sys.stderr)
        return 2
    params: dict[str, float] = {}
    for item in args.param or []:
        key, _, value = item.partition("=")
        params[key.replace("-", "_")] = float(value) if "." in value else int(value)
    figures = table[args.name](settings, **params)
    print(json.dumps(figures, indent=None if args.json else 2))
    return 0
