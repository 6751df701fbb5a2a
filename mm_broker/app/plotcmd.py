"""``mm-broker plot EVENT_ID --out FILE.png``: an event's region and its candidates,
from the store (active region, the notice's own sky map, published associations)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from listeners.parsers import parse
from mm_broker.core.config import Settings
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.db.schema import associations, events, notices, raw_journal, regions
from mm_broker.core.errors import PlotError
from mm_broker.core.models import SkyMap
from mm_broker.core.repository import load_region
from publishers.plot import plot_event, region_info


def plot(settings: Settings, event_id: str, out: Path) -> int:
    """Draw the event; return the number of candidates drawn."""
    db = engine_for(settings)
    try:
        with db.connect() as conn:
            ev = conn.execute(select(events).where(events.c.event_id == event_id)).one_or_none()
            if ev is None or ev.active_region_id is None:
                raise PlotError(f"no active region for event {event_id!r}")
            row = conn.execute(select(regions).where(regions.c.id == ev.active_region_id)).one()
            region = load_region(conn, row)
            payload = conn.execute(
                select(raw_journal.c.payload)
                .join(notices, notices.c.journal_id == raw_journal.c.id)
                .where(notices.c.id == row.notice_id)).scalar_one()
            cands = [r.record for r in conn.execute(
                select(associations.c.record).where(
                    (associations.c.event_id == event_id)
                    & (associations.c.region_version == row.version)
                    & (associations.c.status == "candidate")))]
    finally:
        db.dispose()
    loc = parse(payload).localisation
    fits = loc.data if isinstance(loc, SkyMap) else None
    plot_event(region_info(region, fits), cands, out,
               title=f"{event_id} (region v{row.version})")
    return len(cands)
