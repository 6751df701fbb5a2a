"""What every notice daemon shares: stop on SIGTERM/SIGINT, retry with backoff, log lines."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from listeners.types import Outcome
from mm_broker.core.errors import StoreUnavailable

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
    """Run ``action`` until it succeeds, retrying while the store is unreachable.

    Parameters
    ----------
    action : callable
        Calls the handler; raises :class:`StoreUnavailable` while the store is away.
    stopper : Stopper
        Ends the retries early.
    what : str
        Names the payload in the log lines.
    initial, maximum : float
        The wait between attempts: ``initial``·2ⁿ seconds, at most ``maximum``.
    idle : callable, optional
        Called about every second while waiting (the GCN listener keeps its Kafka
        group membership alive with it during a long outage).

    Returns
    -------
    object or None
        What ``action`` returned, or ``None`` if stopped first.
    """
    delay = initial
    while not stopper.stopping:
        try:
            return action()
        except StoreUnavailable as exc:
            log.warning("%s: %s; retrying in %.1f s", what, exc, delay)
            deadline = time.monotonic() + delay
            while not stopper.stopping and time.monotonic() < deadline:
                if idle is not None:
                    idle()
                stopper.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, maximum)
    return None


def log_outcome(source: str, where: str, outcome: Outcome) -> None:
    """One log line per payload: ``<source> <where>: <outcome>``."""
    log.info("%s %s: %s", source, where, outcome.describe())


def monotonic() -> float:
    """Monotonic clock (seconds), for durations only."""
    return time.monotonic()
