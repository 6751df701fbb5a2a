"""The notice × notice coincidence hook that ``run`` and ``replay`` share.

When a notice version becomes active (``replay``: at its issue time; ``run``: when
the region sync applies it), :meth:`NoticeCoincidences.on_version` hands it to the
in-memory :class:`~coincidence.notices.NoticeIndex` of active events; the pairs found
(and the pairs an update undid, withdrawn) become records
(:func:`~coincidence.notices_record.coincidence_record`) that go through the counterpart
flow (:meth:`mm_broker.app.flow.CounterpartFlow.coincide`: ``replay``'s
``DIR/coincidences.jsonl``, the ``mm.coincidences`` topic through the outbox). A
retraction withdraws every live pair of the event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from coincidence.notices import NoticeIndex, NoticeSide, stream_of
from coincidence.notices_record import coincidence_record
from mm_broker.app.flow import CounterpartFlow
from mm_broker.core.config import Settings
from mm_broker.core.db.schema import notices
from mm_broker.core.models import Notice, Region

__all__ = ["NoticeCoincidences", "side_from_row"]


class NoticeCoincidences:
    """Active events of every stream, and what their coincidences publish.

    Parameters
    ----------
    settings : Settings
        ``settings.coincidence_notices`` gives the pairs, windows and rates.
    flow : CounterpartFlow
        Where the records go.
    """

    def __init__(self, settings: Settings, flow: CounterpartFlow) -> None:
        self.index = NoticeIndex(settings.coincidence_notices)
        self.flow = flow

    def _emit(self, found: list[Any], at: datetime) -> int:
        if not found:
            return 0
        return self.flow.coincide([coincidence_record(c, self.flow.provenance)
                                   for c in found], at)

    def on_version(self, side: NoticeSide, at: datetime) -> int:
        """An event's new active version: publish its pairs (new, updated, undone)."""
        return self._emit(self.index.update(side), at)

    def on_notice(self, notice: Notice, region_version: int, region: Region) -> int:
        """:meth:`on_version` for a parsed notice (the replay), at its issue time."""
        return self.on_version(NoticeSide.from_notice(notice, region_version, region),
                               notice.issue_time)

    def on_retraction(self, event_id: str, at: datetime) -> int:
        """A retracted event: withdraw its live pairs."""
        return self._emit(self.index.retract(event_id), at)


def side_from_row(conn: Any, row: Any, region: Region) -> NoticeSide:
    """The side of an event state row of the store (``repository.event_states``)."""
    extra = conn.execute(select(notices.c.notice_type, notices.c.extra)
                         .where(notices.c.event_id == row.event_id,
                                notices.c.version == row.notice_version)
                         .order_by(notices.c.id.desc()).limit(1)).first()
    notice_type = extra.notice_type if extra is not None else ""
    sig = dict(row.significance or {})
    block = (extra.extra or {}).get("external_coinc") if extra is not None else None
    far = sig.get("far_hz")
    usable = isinstance(far, int | float) and not isinstance(far, bool) and far > 0
    far = far if usable else None
    return NoticeSide(row.event_id, str(row.messenger), row.mission, row.instrument,
                      notice_type, str(row.role), row.trigger_time, int(row.notice_version),
                      int(row.region_version), region,
                      far_hz=None if far is None else float(far),
                      stream=stream_of(str(row.messenger), row.mission, row.instrument,
                                       notice_type, sig),
                      ivorn=row.ivorn, reported=block if isinstance(block, dict) else {})
