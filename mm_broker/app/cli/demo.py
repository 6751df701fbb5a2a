"""``mm-broker demo``: what ``make demo`` runs after set-up."""

from __future__ import annotations

import argparse

from mm_broker.app import demo
from mm_broker.core.config import Settings


def parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``demo``."""
    p.add_argument("--n-alerts", type=int, default=20, help="ZTF alerts to stream")
    return p


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Run the demo."""
    return demo.main(settings, n_alerts=args.n_alerts, verbose=args.verbose)
