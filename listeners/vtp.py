"""VTP listener (``mm-broker listen vtp --remote HOST:PORT``), on Comet.

Comet acknowledges an event to the upstream broker once its validators pass and
*before* its handlers run, so the journal write cannot be a handler if nothing
acknowledged may be lost. This listener therefore runs Comet's own subscriber
service (``twistd comet --remote``) with one change, made in :func:`_patch`: every
subscriber gets :class:`JournalValidator` as its first validator, which hands the
event's bytes to the handler (journal, parse, store) before Comet sends the ACK. A
store outage (:class:`~mm_broker.core.errors.StoreUnavailable`) makes the validator
retry with backoff, so the ACK waits. Payloads are handled one at a time, in arrival
order: Comet runs validators in its thread pool, and two notices of one event stored
at once collide on the new event's row (the loser would be ACKed unstored).

When the upstream broker goes away, Comet's subscriber (a Twisted
``ReconnectingClientFactory``) retries with a delay growing by a factor e per failure
up to one hour; here the delay is bounded by ``[listen] backoff_initial_s`` and
``backoff_max_s``, as for every other listener.

For sites that run their own ``twistd comet``, ``mm_broker/app/vtp_plugin`` holds a
plain Comet handler plugin (``--mm-broker-ingest``) using the same ingest path (after
the ACK, as every Comet handler).

Twisted and Comet are imported inside the functions that run the service: importing
Twisted's reactor machinery has side effects (the reactor is installed on first use)
that the rest of the project, which imports this module for its types, must not pay.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

from listeners.daemon import log_outcome
from listeners.types import Handler, Outcome
from mm_broker.core.config import Settings
from mm_broker.core.errors import StoreUnavailable

log = logging.getLogger("mm_broker.listen")


class JournalValidator:
    """Comet validator that hands the event to the handler before it is acknowledged.

    It never rejects: a payload that does not parse is journaled with its reason
    (and Comet, as a subscriber, ACKs it anyway so upstream keeps sending).

    Parameters
    ----------
    handler : Handler
        Called as ``handler("vtp", remote, raw_bytes, received_at)``.
    remote : str
        ``host:port`` of the upstream broker (the payloads' origin).
    backoff : tuple of float
        Initial and largest wait (seconds) between attempts while the store is away.
    """

    def __init__(self, handler: Handler[Outcome], remote: str,
                 backoff: tuple[float, float]) -> None:
        from twisted.internet.defer import DeferredLock  # Twisted: see the module docstring

        self.handler = handler
        self.remote = remote
        self.backoff = backoff
        self.serial = DeferredLock()  # one payload at a time

    def handle_blocking(self, raw: bytes) -> None:
        """Hand one payload on, retrying while the store is unreachable (in a thread)."""
        received = datetime.now(UTC)
        delay = self.backoff[0]
        while True:
            try:
                outcome = self.handler("vtp", self.remote, raw, received)
            except StoreUnavailable as exc:
                log.warning("vtp: %s; retrying in %.0f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, self.backoff[1])
                continue
            log_outcome("vtp", self.remote, outcome)
            return

    def __call__(self, event: Any) -> Any:
        """Comet's validator call: a Deferred firing ``True`` once the payload is handled."""
        from twisted.internet.threads import deferToThread  # Twisted: see the module docstring

        return (self.serial.run(deferToThread, self.handle_blocking, event.raw_bytes)
                .addCallback(lambda _: True))


def _patch(validator: JournalValidator) -> None:
    """Make Comet's subscribers journal first; bind every socket to 127.0.0.1."""
    import functools

    # Comet and Twisted: see the module docstring.
    import comet.service.broker as broker
    from twisted.application import internet

    base = broker.VOEventSubscriberFactory

    class JournalingSubscriberFactory(base):  # type: ignore[misc, valid-type]
        # Reconnection delay: backoff_initial_s, growing to at most backoff_max_s
        # (Twisted's default maximum is 3600 s).
        initialDelay, maxDelay = validator.backoff
        delay = initialDelay

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.validators: list[Any] = [validator, *self.validators]

        def buildProtocol(self, addr: Any) -> Any:  # noqa: N802 - Twisted's name
            # Connected: the broker sends us every event from now on. Said once per
            # connection, so operators (and tests) know when the subscription is live.
            log.info("vtp: subscribed to %s", validator.remote)
            return super().buildProtocol(addr)

    broker.VOEventSubscriberFactory = JournalingSubscriberFactory
    broker.TCPServer = functools.partial(internet.TCPServer, interface="127.0.0.1")


def run(settings: Settings, remote: str, handler: Handler[Outcome],
        local_ivo: str | None = None) -> None:
    """Subscribe to ``remote`` and hand every VOEvent to ``handler`` before its ACK.

    Runs until SIGTERM (twistd handles the signal and stops the reactor cleanly).

    Parameters
    ----------
    settings : Settings
        ``[listen]`` (backoff), ``[comet]`` (local IVORN) and the state directory
        (Comet's event database of this subscriber).
    remote : str
        ``host:port`` of the upstream VTP broker.
    handler : Handler
        Journals and processes one payload.
    local_ivo : str, optional
        IVORN this subscriber announces (default ``<comet.local_ivo>/subscriber``).
    """
    from twisted.scripts import twistd  # Twisted: see the module docstring

    backoff = (settings.listen.backoff_initial_s,
               settings.listen.backoff_max_s)
    _patch(JournalValidator(handler, remote, backoff))
    state = settings.state_dir / "vtp"
    state.mkdir(parents=True, exist_ok=True)
    ivo = local_ivo or f"{settings.comet.local_ivo}/subscriber"
    sys.argv = ["twistd", "-n", "--pidfile=", "comet", f"--remote={remote}",
                f"--local-ivo={ivo}", f"--eventdb={state / 'eventdb'}"]
    twistd.run()
