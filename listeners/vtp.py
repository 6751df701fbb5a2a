"""VTP listener (``mm-broker listen vtp --remote HOST:PORT``), on Comet.

Comet acknowledges an event to the upstream broker once its validators pass and
*before* its handlers run, so the journal write cannot be a handler if nothing
acknowledged may be lost. This listener therefore runs Comet's own subscriber
service (``twistd comet --remote``) with one change, made in :func:`_patch`: every
subscriber gets :class:`JournalValidator` as its first validator, which ingests the
event (journal, parse, store) before Comet sends the ACK. A database outage makes
the validator retry with backoff, so the ACK waits. Ingests run one at a time, in
arrival order: Comet runs validators in its thread pool, and two notices of one event
stored at once collide on the new event's row (the loser would be ACKed unstored).

When the upstream broker goes away, Comet's subscriber (a Twisted
``ReconnectingClientFactory``) retries with a delay growing by a factor e per failure
up to one hour; here the delay is bounded by ``[listen] backoff_initial_s`` and
``backoff_max_s``, as for every other listener.

For sites that run their own ``twistd comet``, ``listeners/vtp_plugin`` holds a plain
Comet handler plugin (``--mm-broker-ingest``) using the same ingest path (after the
ACK, as every Comet handler).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from sqlalchemy.exc import OperationalError

from mm_broker.app.ingest import Limits, ingest
from mm_broker.core.config import Settings

log = logging.getLogger("mm_broker.listen")


class JournalValidator:
    """Comet validator that ingests the event before it is acknowledged.

    It never rejects: a payload that does not parse is journaled with its reason
    (and Comet, as a subscriber, ACKs it anyway so upstream keeps sending).
    """

    def __init__(self, settings: Settings, remote: str) -> None:
        from twisted.internet.defer import DeferredLock

        from mm_broker.core.db.migrate import engine_for

        self.engine = engine_for(settings)
        self.limits = Limits.from_settings(settings)
        self.remote = remote
        self.backoff = (float(settings.get("listen.backoff_initial_s")),
                        float(settings.get("listen.backoff_max_s")))
        self.serial = DeferredLock()  # one ingest at a time

    def ingest_blocking(self, raw: bytes) -> None:
        """Ingest with retries while the database is unreachable (runs in a thread)."""
        from listeners.daemon import log_result

        delay = self.backoff[0]
        while True:
            try:
                result = ingest(self.engine, raw, "vtp", self.remote, limits=self.limits)
                log_result("vtp", self.remote, result)
                return
            except OperationalError as exc:
                log.warning("vtp: database unavailable (%s); retrying in %.0f s",
                            str(exc).splitlines()[0], delay)
                time.sleep(delay)
                delay = min(delay * 2, self.backoff[1])

    def __call__(self, event: Any) -> Any:
        from twisted.internet.threads import deferToThread

        return (self.serial.run(deferToThread, self.ingest_blocking, event.raw_bytes)
                .addCallback(lambda _: True))


def _patch(settings: Settings, remote: str) -> None:
    """Make Comet's subscribers journal first; bind every socket to 127.0.0.1."""
    import functools

    import comet.service.broker as broker
    from twisted.application import internet

    validator = JournalValidator(settings, remote)
    base = broker.VOEventSubscriberFactory

    class JournalingSubscriberFactory(base):  # type: ignore[misc, valid-type]
        # Reconnection delay: backoff_initial_s, growing to at most backoff_max_s
        # (Twisted's default maximum is 3600 s).
        initialDelay, maxDelay = validator.backoff
        delay = initialDelay

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.validators: list[Any] = [validator, *self.validators]

    broker.VOEventSubscriberFactory = JournalingSubscriberFactory
    broker.TCPServer = functools.partial(internet.TCPServer, interface="127.0.0.1")


def run(settings: Settings, remote: str, local_ivo: str | None = None) -> None:
    """Subscribe to ``remote`` (``host:port``) and ingest every VOEvent; runs until
    SIGTERM (twistd handles the signal and stops the reactor cleanly)."""
    from twisted.scripts import twistd

    from listeners.daemon import log_result
    from mm_broker.app.ingest import recover_pending
    from mm_broker.core.db.migrate import engine_for

    # Payloads journaled but not processed before a crash (as the other daemons do).
    engine = engine_for(settings)
    try:
        for pending in recover_pending(engine, Limits.from_settings(settings)):
            log_result("vtp", "recovered", pending)
    finally:
        engine.dispose()
    _patch(settings, remote)
    state = settings.state_dir / "vtp"
    state.mkdir(parents=True, exist_ok=True)
    ivo = local_ivo or f"{settings.get('comet.local_ivo')}/subscriber"
    sys.argv = ["twistd", "-n", "--pidfile=", "comet", f"--remote={remote}",
                f"--local-ivo={ivo}", f"--eventdb={state / 'eventdb'}"]
    twistd.run()
