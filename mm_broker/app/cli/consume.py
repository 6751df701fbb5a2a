"""``mm-broker consume --topic T [--event ID] [--since ISO] [--json|--table]``."""

from __future__ import annotations

import argparse

from mm_broker.core.config import Settings
from publishers import consume


def parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``consume``."""
    return consume.add_arguments(p)


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Read counterparts from a topic."""
    return consume.run_cli(args, settings)
