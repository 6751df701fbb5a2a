"""What a transport hands on, and what it learns back.

A transport (GCN Kafka, VTP, a folder) knows no mission and no store: for every
payload it calls a :data:`Handler` with ``(source, topic, payload, received_at)``.
The handler journals the bytes (and processes them) before it returns; a transport
acknowledges its payload (commits the Kafka offset, lets Comet send the VTP ACK,
marks the file seen) only once the handler has returned. A handler that cannot
reach its store raises :class:`~mm_broker.core.errors.StoreUnavailable`: nothing was
journaled, the transport retries with backoff and acknowledges nothing meanwhile.

The application floor builds the handler (``mm_broker.app.listen_wiring``) and
hands it to the transport.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar


class Outcome(Protocol):
    """What a transport needs of a handled payload.

    Any outcome means "journaled": the transport may acknowledge. The status is for
    the transport's log line only; a rejected payload is acknowledged like a stored
    one (it keeps its journal row with the reason).
    """

    @property
    def status(self) -> str:
        """Short status word (``stored``, ``duplicate``, ``rejected``, ...)."""
        ...

    def describe(self) -> str:
        """The text of one log line about this payload (status first)."""
        ...


#: The outcome type a given handler returns.
OutcomeT = TypeVar("OutcomeT", bound=Outcome)

#: ``handler(source, topic, payload, received_at) -> outcome``: journal, then process.
#: ``source`` names the transport (``gcn``, ``vtp``, ``dir``); ``topic`` is the
#: payload's origin within it (Kafka topic, VTP remote, file path) or ``None``.
Handler = Callable[[str, str | None, bytes, datetime], OutcomeT]
