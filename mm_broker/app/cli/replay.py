"""``mm-broker replay --notices … --alerts … --out DIR [--publish]``: the offline,
time-ordered, deterministic run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mm_broker.app import replay
from mm_broker.core.config import Settings


def parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``replay``."""
    p.add_argument("--notices", nargs="+", required=True, help="notice files or folders")
    p.add_argument("--alerts", nargs="+", required=True, help="alert files or folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--publish", action="store_true",
                   help="also publish to the Kafka topics and broadcast through Comet")
    return p


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Replay and print the summary's counts."""
    summary = replay.replay(settings, args.notices, args.alerts, Path(args.out),
                            publish=args.publish)
    print(json.dumps({k: summary[k] for k in ("alerts", "notices", "counterparts",
                                                "published")}))
    return 0
