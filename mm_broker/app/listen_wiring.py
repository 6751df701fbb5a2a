"""The listeners' handlers: the transports of :mod:`listeners` wired to the ingest path.

A transport knows no store: it calls a handler
``(source, topic, payload, received_at) -> outcome`` (:data:`listeners.types.Handler`)
and acknowledges once it returns. This module builds the two handlers the
application uses, on :mod:`mm_broker.app.ingest`:

* :func:`ingest_handler` — streams (GCN Kafka, VTP): :func:`~mm_broker.app.ingest.ingest`
  with the stream's topic (a Kafka topic may choose the JSON parser; a VOEvent records
  it as ``extra["topic"]``);
* :func:`file_handler` — files (``listen dir``): the file's path
  is journaled as the payload's origin, but a path is not a topic, so the payload's
  own content chooses the parser.

Both turn a database outage (:class:`sqlalchemy.exc.OperationalError`) into
:class:`~mm_broker.core.errors.StoreUnavailable`, on which the transports retry with
backoff, and return an :class:`Ingested` (the transports' :class:`~listeners.types.Outcome`).
:func:`recover` processes the journal rows a crash left ``received``; the commands
call it before they start a transport.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from listeners.daemon import log_outcome
from listeners.types import Handler
from mm_broker.app.ingest import IngestResult, Limits, ingest, recover_pending
from mm_broker.core.errors import StoreUnavailable

log = logging.getLogger("mm_broker.listen")


@dataclass(frozen=True)
class Ingested:
    """An :class:`~mm_broker.app.ingest.IngestResult` as a transport sees it.

    Attributes
    ----------
    result : IngestResult
        The ingest path's outcome (the contract line of ``notices ingest``).
    """

    result: IngestResult

    @property
    def status(self) -> str:
        """The contract's status (``stored``, ``duplicate``, ..., ``rejected``)."""
        return self.result.status

    def describe(self) -> str:
        """``status (reason) event=… type=… v=… area=…``: one log line's text."""
        line = self.result.contract()
        region = line["region"] or {}
        reason = f" ({self.result.reason})" if self.result.reason else ""
        return (f"{self.result.status}{reason} event={line['event_id']} "
                f"type={line['notice_type']} v={line['version']} "
                f"area={region.get('area_deg2')}")


def _unavailable(exc: OperationalError) -> StoreUnavailable:
    first = (str(exc.orig or exc).strip().splitlines() or [""])[0]
    return StoreUnavailable(f"database unavailable ({first})")


def _handler(engine: Engine, limits: Limits, topic_chooses_parser: bool) -> Handler[Ingested]:
    def handle(source: str, topic: str | None, payload: bytes,
               received_at: datetime) -> Ingested:
        try:
            return Ingested(ingest(engine, payload, source, topic, received_at,
                                   limits=limits, topic_chooses_parser=topic_chooses_parser))
        except OperationalError as exc:
            raise _unavailable(exc) from exc

    return handle


def ingest_handler(engine: Engine, limits: Limits) -> Handler[Ingested]:
    """The handler of the stream transports (GCN Kafka, VTP).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.
    limits : Limits
        Window and sky-map limits.

    Returns
    -------
    Handler
        ``handler(source, topic, payload, received_at) -> Ingested``; raises
        :class:`StoreUnavailable` while the database is unreachable.
    """
    return _handler(engine, limits, topic_chooses_parser=True)


def file_handler(engine: Engine, limits: Limits) -> Handler[Ingested]:
    """The handler of files (``listen dir``).

    The file's path is journaled as the payload's ``topic`` (its origin); the parser
    is chosen by the payload's own content, as :func:`~mm_broker.app.ingest.recover_pending`
    does for every journal row not from Kafka.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.
    limits : Limits
        Window and sky-map limits.

    Returns
    -------
    Handler
        ``handler(source, path, payload, received_at) -> Ingested``; raises
        :class:`StoreUnavailable` while the database is unreachable.
    """
    return _handler(engine, limits, topic_chooses_parser=False)


def recover(engine: Engine, limits: Limits, source: str) -> list[IngestResult]:
    """Process the journal rows left ``received`` by a crash, logging each.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.
    limits : Limits
        Window and sky-map limits.
    source : str
        The listener starting (names the log lines).

    Returns
    -------
    list of IngestResult
        One per recovered row.
    """
    results = recover_pending(engine, limits)
    for pending in results:
        log_outcome(source, "recovered", Ingested(pending))
    return results
