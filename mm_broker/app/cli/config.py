"""``mm-broker config show``: the effective configuration, secrets masked, and its hash."""

from __future__ import annotations

import argparse
import json

from mm_broker.core.config import Settings


def parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``config``."""
    p.add_argument("action", choices=["show"])
    return p


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Print the effective configuration as JSON."""
    print(json.dumps({"source": settings.source, "hash": settings.hash(),
                      "config": settings.redacted()}, indent=2, default=str))
    return 0
