"""``mm-broker notices ingest PATH...``: one JSON line per payload (the contract)."""

from __future__ import annotations

import argparse
import json

from mm_broker.app.ingest import Limits, ingest_files
from mm_broker.core.config import Settings
from mm_broker.core.db.migrate import engine_for


def parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``notices``."""
    p.add_argument("action", choices=["ingest"])
    p.add_argument("paths", nargs="+", help="notice files or folders")
    return p


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Ingest the files, in issue-time order, and print one line per payload."""
    engine = engine_for(settings)
    try:
        for path, result in ingest_files(engine, args.paths, Limits.from_settings(settings),
                                         source="dir"):
            print(json.dumps(result.contract(str(path))), flush=True)
    finally:
        engine.dispose()
    return 0
