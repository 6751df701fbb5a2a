"""``mm-broker plot EVENT_ID --out FILE.png``: a stored event's region and candidates."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mm_broker.app import plotcmd
from mm_broker.core.config import Settings


def parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``plot``."""
    p.add_argument("event_id")
    p.add_argument("--out", required=True, help="PNG file")
    return p


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Draw the plot."""
    try:
        n = plotcmd.plot(settings, args.event_id, Path(args.out))
    except plotcmd.PlotError as exc:
        print(f"mm-broker plot: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"event_id": args.event_id, "out": args.out, "candidates": n}))
    return 0
