"""What every notice daemon shares: stop on SIGTERM/SIGINT, retry with backoff, log lines."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError

from mm_broker.app.ingest import IngestResult

log = logging.getLogger("mm_broker.listen")

T = TypeVar("T")


class Stopper:
    """Set by SIGTERM or SIGINT; daemons finish the payload in hand, then leave."""

    def __init__(self, install: bool = True) -> None:
        self.event = threading.Event()
        if install and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._handle)
            signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        log.info("signal %d: stopping after the current payload", signum)
        self.event.set()

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self.event.is_set()

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early on a stop request."""
        self.event.wait(seconds)


def with_backoff(action: Callable[[], T], stopper: Stopper, what: str,
                 initial: float = 1.0, maximum: float = 60.0,
                 idle: Callable[[], None] | None = None) -> T | None:
    """Run ``action`` until it succeeds, sleeping ``initial``·2ⁿ (≤ ``maximum``) between
    attempts while the database is unreachable. Returns ``None`` if stopped first.

    ``idle`` is called about every second while waiting (the GCN listener keeps its
    Kafka group membership alive with it during a long outage).
    """
    delay = initial
    while not stopper.stopping:
        try:
            return action()
        except OperationalError as exc:
            log.warning("%s: database unavailable (%s); retrying in %.1f s", what,
                        str(exc).splitlines()[0], delay)
            deadline = time.monotonic() + delay
            while not stopper.stopping and time.monotonic() < deadline:
                if idle is not None:
                    idle()
                stopper.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, maximum)
    return None


def log_result(source: str, where: str, result: IngestResult) -> None:
    """One log line per payload."""
    line = result.contract(where)
    region = line["region"] or {}
    log.info("%s %s: %s%s event=%s type=%s v=%s area=%s", source, where, result.status,
             f" ({result.reason})" if result.reason else "", line["event_id"],
             line["notice_type"], line["version"], region.get("area_deg2"))


def monotonic() -> float:
    """Monotonic clock (seconds), for durations only."""
    return time.monotonic()
