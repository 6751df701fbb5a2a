"""Comet handler plugin: ingest every received VOEvent into mm_broker.

Put ``listeners/vtp_plugin`` on ``PYTHONPATH`` and run
``twistd comet --remote HOST:PORT --mm-broker-ingest``. (Comet handlers run after
Comet has acknowledged the event; ``mm-broker listen vtp`` journals before the ACK.)
"""

from comet.icomet import IHandler
from twisted.plugin import IPlugin
from zope.interface import implementer


@implementer(IPlugin, IHandler)
class MMBrokerIngest:
    """Hand each event's raw bytes to :func:`mm_broker.app.ingest.ingest`."""

    name = "mm-broker-ingest"

    def __init__(self):
        self._engine = None
        self._limits = None

    def __call__(self, event):
        from mm_broker.app.ingest import Limits, ingest
        from mm_broker.core import config
        from mm_broker.core.db.migrate import engine_for

        if self._engine is None:
            settings = config.load()
            self._engine = engine_for(settings)
            self._limits = Limits.from_settings(settings)
        ingest(self._engine, event.raw_bytes, "vtp", event.element.attrib.get("ivorn"),
               limits=self._limits)


mm_broker_ingest = MMBrokerIngest()
