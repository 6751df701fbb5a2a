"""``mm-broker serve [--host H] [--port P]``: the portal and REST API (uvicorn)."""

from __future__ import annotations

import argparse
import json

import uvicorn

from mm_broker.app.serve.app import create_app, describe
from mm_broker.core.config import Settings


def parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``serve``."""
    p.add_argument("--host", help="address to bind (default: serve.host)")
    p.add_argument("--port", type=int, help="TCP port (default: serve.port)")
    return p


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until interrupted (SIGINT or SIGTERM)."""
    values = {k: v for k, v in (("serve.host", args.host), ("serve.port", args.port))
              if v is not None}
    if values:
        settings = settings.with_values(values)
    print(json.dumps({"serving": describe(settings)}), flush=True)
    uvicorn.run(create_app(settings), host=settings.serve.host, port=settings.serve.port,
                log_level="info", access_log=False, server_header=False,
                proxy_headers=False)
    return 0
