"""``mm-broker run [--once]``: the streaming service; stops cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading

from mm_broker.app import run
from mm_broker.core.config import Settings

log = logging.getLogger("mm_broker.app.run")


def parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``run``."""
    p.add_argument("--once", action="store_true",
                   help="process what the alert topics hold now, then stop")
    return p


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Run the service until a signal (or, with ``--once``, until the topics are read)."""
    stop = threading.Event()

    def handle(signum: int, frame: object) -> None:
        log.info("signal %d: stopping after the current micro-batch", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    counts = run.run(settings, once=args.once, stop=stop)
    print(json.dumps(counts))
    return 0
