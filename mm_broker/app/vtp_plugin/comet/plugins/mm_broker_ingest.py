"""Comet handler plugin: hand every received VOEvent to mm_broker's ingest path.

For sites that run their own ``twistd comet``: put ``mm_broker/app/vtp_plugin`` on
``PYTHONPATH`` and run ``twistd comet --remote HOST:PORT --mm-broker-ingest``.
(Comet handlers run after Comet has acknowledged the event; ``mm-broker listen vtp``
journals before the ACK, so prefer it where nothing acknowledged may be lost.)

Application wiring, like ``mm-broker listen``: the handler is
:func:`mm_broker.app.listen_wiring.ingest_handler`, built on the first event from the
effective configuration (``MM_CONFIG`` and the ``MM_*`` environment). Twisted imports
this module to discover the plugin; nothing connects to the store until an event
arrives.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from comet.icomet import IHandler
from twisted.plugin import IPlugin
from zope.interface import implementer

from listeners.types import Handler
from mm_broker.app.ingest import Limits
from mm_broker.app.listen_wiring import Ingested, ingest_handler
from mm_broker.core import config
from mm_broker.core.db.migrate import engine_for


@implementer(IPlugin, IHandler)
class MMBrokerIngest:
    """Hand each event's raw bytes to the ingest handler (source ``vtp``, topic the
    event's IVORN)."""

    name = "mm-broker-ingest"

    def __init__(self) -> None:
        self._handler: Handler[Ingested] | None = None

    def __call__(self, event: Any) -> None:
        """Comet's handler call, with a :class:`comet.utility.xml.xml_document`."""
        if self._handler is None:
            settings = config.load()
            self._handler = ingest_handler(engine_for(settings), Limits.from_settings(settings))
        self._handler("vtp", event.element.attrib.get("ivorn"), event.raw_bytes,
                      datetime.now(UTC))


mm_broker_ingest = MMBrokerIngest()
