"""``mm-broker listen gcn|vtp|dir``: the notice daemons, in the foreground.

This command wires a transport of :mod:`listeners` to the ingest path: it processes
the journal rows a crash left ``received`` (:func:`~mm_broker.app.listen_wiring.recover`),
then runs the transport with the handler of :mod:`mm_broker.app.listen_wiring`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from listeners import directory, gcn, vtp
from listeners.daemon import Stopper
from mm_broker.app.ingest import Limits
from mm_broker.app.listen_wiring import file_handler, ingest_handler, recover
from mm_broker.core.config import Settings
from mm_broker.core.db.migrate import engine_for

log = logging.getLogger("mm_broker")


def parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``listen``."""
    p.add_argument("transport", choices=["gcn", "vtp", "dir"])
    p.add_argument("path", nargs="?", help="folder to watch (dir)")
    p.add_argument("--remote", help="HOST:PORT of the VTP broker (vtp)")
    p.add_argument("--topic", action="append", help="GCN topic (repeat; default: config)")
    return p


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Run one listener until SIGTERM/SIGINT."""
    if args.transport == "vtp" and not args.remote:
        print("mm-broker listen vtp: --remote HOST:PORT is required", file=sys.stderr)
        return 2
    if args.transport == "dir" and not args.path:
        print("mm-broker listen dir: PATH is required", file=sys.stderr)
        return 2
    engine = engine_for(settings)
    limits = Limits.from_settings(settings)
    try:
        # Payloads journaled but not processed before a crash, before anything new.
        recover(engine, limits, args.transport)
        if args.transport == "vtp":
            # twistd runs until SIGTERM and handles the signal itself.
            vtp.run(settings, args.remote, ingest_handler(engine, limits))
            return 0
        stopper = Stopper()
        if args.transport == "gcn":
            n = gcn.run(settings, ingest_handler(engine, limits), stopper,
                        topics=args.topic or None)
        else:
            n = directory.watch(Path(args.path), file_handler(engine, limits), stopper,
                                settings.listen.dir_poll_s,
                                (settings.listen.backoff_initial_s,
                                 settings.listen.backoff_max_s))
    finally:
        engine.dispose()
    log.info("listener stopped after %d payloads", n)
    return 0
