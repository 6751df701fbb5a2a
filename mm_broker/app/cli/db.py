"""``mm-broker db upgrade|current``: the store's schema (Alembic migrations)."""

from __future__ import annotations

import argparse
import json

from mm_broker.core.config import Settings
from mm_broker.core.db import migrate


def parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``db``."""
    p.add_argument("action", choices=["upgrade", "current"],
                   help="upgrade: migrate to the newest revision (a managed PostgreSQL); "
                        "current: print the revision")
    return p


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Upgrade the schema or print its revision."""
    if args.action == "upgrade":
        revision = migrate.upgrade(settings)
    else:
        engine = migrate.engine_for(settings)
        try:
            revision = migrate.current(engine)
        finally:
            engine.dispose()
    print(json.dumps({"revision": revision, "head": migrate.head()}))
    return 0
