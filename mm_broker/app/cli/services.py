"""``mm-broker services up|down|status|clean``: the local PostgreSQL, Kafka and Comet.

``clean`` stops them and deletes what would outlive the state directory (a PostgreSQL
cluster kept outside it); ``make clean`` then deletes the state directory.
"""

from __future__ import annotations

import argparse

from mm_broker.app import services
from mm_broker.core.config import Settings


def parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``services``."""
    p.add_argument("action", choices=["up", "down", "status", "clean"])
    return p


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Start, stop or report the local services."""
    if args.action == "up":
        for item in services.up(settings):
            print(f"{item.name:<11} {item.address}  ({item.seconds:.1f} s)")
    elif args.action == "down":
        for name, was in services.down(settings):
            print(f"{name:<11} {'stopped' if was else 'was not running'}")
    elif args.action == "clean":
        for name, done in services.clean(settings):
            if name == "postgres-cluster":
                print(f"{name:<11} {'deleted' if done else 'none outside the state directory'}")
            else:
                print(f"{name:<11} {'stopped' if done else 'was not running'}")
    else:
        for name, state in services.status(settings):
            print(f"{name:<11} {state}")
    return 0
