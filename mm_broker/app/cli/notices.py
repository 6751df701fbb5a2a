"""``mm-broker notices ingest PATH...``: one JSON line per payload (the contract)."""

from __future__ import annotations

import argparse
import json
import sys

from listeners.directory import ingest_paths
from mm_broker.app.ingest import Limits
from mm_broker.app.listen_wiring import file_handler
from mm_broker.core.config import Settings
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.errors import StoreUnavailable


def parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``notices``."""
    p.add_argument("action", choices=["ingest"])
    p.add_argument("paths", nargs="+", help="notice files or folders")
    return p


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Ingest the files, in issue-time order, and print one line per payload."""
    engine = engine_for(settings)
    try:
        handler = file_handler(engine, Limits.from_settings(settings))
        for path, outcome in ingest_paths(args.paths, handler, source="dir"):
            print(json.dumps(outcome.result.contract(str(path))), flush=True)
    except StoreUnavailable as exc:  # no retries here: one clear line, as for the CLI
        print(f"mm-broker: {exc}", file=sys.stderr)
        return 3
    finally:
        engine.dispose()
    return 0
