"""The event/region repository: the one version and retraction rule, and its store.

:func:`decide` is the rule, written once. Every path that takes a notice into
account goes through it: the ingest path (:func:`store_notice`, on PostgreSQL, for
the listeners, ``notices ingest`` and ``run``) and the replay (:class:`MemoryRepository`,
the same rule in memory, so that a replay is deterministic and needs no database).

The rule
--------
* A retraction retracts the event, whatever came before; the event stays retracted.
* A notice of a retracted event is kept but changes nothing (``superseded``).
* Otherwise the newest ``(notice version, issue time)`` is active: a notice older
  than the active one, arriving late, is kept as ``superseded`` and never replaces
  a newer one.
* Each notice that carries a localisation gets a new region version (1, 2, …, in
  the order they are stored), whether it becomes active or not.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from mm_broker.core.db.schema import (
    events,
    notices,
    raw_journal,
    region_ranges,
    region_tiles,
    regions,
)
from mm_broker.core.models import IPIX_DTYPE, Notice, Region

#: ``(notice version, issue time)``: the order of the versions of an event.
VersionKey = tuple[int, datetime]


@dataclass(frozen=True)
class Decision:
    """What a notice does to its event.

    Attributes
    ----------
    status : str
        ``stored`` (the notice's region becomes active), ``superseded`` (kept, not
        active) or ``retracted``.
    reason : str or None
        Why a notice is superseded.
    """

    status: str
    reason: str | None = None


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def decide(notice: Notice, active: VersionKey | None, event_retracted: bool) -> Decision:
    """The version and retraction rule (module docstring).

    Parameters
    ----------
    notice : Notice
        The incoming notice.
    active : (int, datetime) or None
        Version and issue time of the event's active notice, if any.
    event_retracted : bool
        Whether the event was retracted before.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> from mm_broker.core.models import Messenger, Notice, Role
    >>> t = datetime(2024, 1, 15, tzinfo=UTC)
    >>> n = Notice(event_id="E", messenger=Messenger.GRB, mission="M", instrument="I",
    ...            notice_type="T", role=Role.OBSERVATION, version=2,
    ...            issue_time=t, trigger_time=t, retraction=False, localisation=None)
    >>> decide(n, None, False).status
    'stored'
    >>> decide(n, (3, t), False).reason
    'older than the active version 3 issued 2024-01-15T00:00:00Z'
    >>> decide(n, (1, t), True).status
    'superseded'
    """
    if notice.retraction:
        return Decision("retracted")
    if event_retracted:
        return Decision("superseded", "event already retracted")
    if active is None or (notice.version, notice.issue_time) > active:
        return Decision("stored")
    return Decision("superseded",
                    f"older than the active version {active[0]} issued {_iso(active[1])}")


# --------------------------------------------------------------------------- #
# In memory (replay)
# --------------------------------------------------------------------------- #


@dataclass
class _EventState:
    active: VersionKey | None = None
    retracted: bool = False
    region_versions: int = 0


@dataclass
class MemoryRepository:
    """The rule applied to events held in memory (the replay's store)."""

    _events: dict[str, _EventState] = field(default_factory=dict)

    def store(self, notice: Notice, has_region: bool) -> tuple[Decision, int | None]:
        """Apply ``notice``; return the decision and the new region version, if any."""
        ev = self._events.setdefault(notice.event_id, _EventState())
        decision = decide(notice, ev.active, ev.retracted)
        if decision.status == "retracted":
            ev.retracted, ev.active = True, None
            return decision, None
        version = None
        if has_region:
            ev.region_versions += 1
            version = ev.region_versions
        if decision.status == "stored":
            ev.active = (notice.version, notice.issue_time)
        return decision, version

    def region_versions(self, event_id: str) -> int:
        """How many region versions the event has had."""
        ev = self._events.get(event_id)
        return ev.region_versions if ev else 0


# --------------------------------------------------------------------------- #
# PostgreSQL (ingest)
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Stored:
    """Outcome of :func:`store_notice`."""

    decision: Decision
    notice_id: int
    region_version: int | None = None


def store_notice(conn: Connection, journal_id: int, notice: Notice, region: Region | None,
                 window: tuple[datetime, datetime]) -> Stored:
    """Store a parsed notice (and its region) and apply the rule, in ``conn``'s transaction.

    Parameters
    ----------
    conn : Connection
        An open transaction; the caller commits.
    journal_id : int
        The raw journal row the notice came from.
    notice : Notice
    region : Region or None
        Its region (None for a retraction).
    window : (datetime, datetime)
        The event's active window for this notice's trigger time (from the settings).
    """
    now = datetime.now(UTC)
    start, end = window
    # Two listeners (GCN and VTP, say) may store notices of a new event at the same
    # moment: the insert waits for the other's commit and then does nothing, and the
    # row lock below serialises everything that follows (versions, active region).
    conn.execute(pg_insert(events).values(
        event_id=notice.event_id, messenger=str(notice.messenger), mission=notice.mission,
        instrument=notice.instrument, role=str(notice.role),
        trigger_time=notice.trigger_time, status="active", active_region_id=None,
        window_start=start, window_end=end, updated_at=now,
    ).on_conflict_do_nothing(index_elements=[events.c.event_id]))
    ev = conn.execute(select(events).where(events.c.event_id == notice.event_id)
                      .with_for_update()).one()
    active = None
    if ev.active_region_id is not None:
        active = conn.execute(
            select(regions.c.id, notices.c.id.label("notice_id"), notices.c.version,
                   notices.c.issue_time)
            .join(notices, notices.c.id == regions.c.notice_id)
            .where(regions.c.id == ev.active_region_id)).one()
    decision = decide(notice, None if active is None else (active.version, active.issue_time),
                      ev.status == "retracted")
    notice_id = conn.execute(insert(notices).values(
        event_id=notice.event_id, journal_id=journal_id, notice_type=notice.notice_type,
        version=notice.version, issue_time=notice.issue_time,
        trigger_time=notice.trigger_time, role=str(notice.role),
        retraction=notice.retraction, ivorn=notice.ivorn,
        significance=jsonable(notice.significance), extra=jsonable(notice.extra),
        status={"stored": "active", "retracted": "retracted"}.get(decision.status,
                                                                   "superseded"),
    ).returning(notices.c.id)).scalar_one()
    conn.execute(update(raw_journal).where(raw_journal.c.id == journal_id)
                 .values(notice_id=notice_id))
    if decision.status == "retracted":
        if active is not None:
            conn.execute(update(regions).where(regions.c.id == active.id)
                         .values(status="withdrawn"))
        conn.execute(update(events).where(events.c.event_id == notice.event_id).values(
            status="retracted", active_region_id=None, updated_at=now))
        return Stored(decision, notice_id)
    if region is None:
        return Stored(decision, notice_id)
    version = conn.execute(select(func.coalesce(func.max(regions.c.version), 0) + 1)
                           .where(regions.c.event_id == notice.event_id)).scalar_one()
    region_id = conn.execute(insert(regions).values(
        event_id=notice.event_id, notice_id=notice_id, version=version, kind=region.kind,
        area_deg2=float(region.area_deg2), credible_level=float(region.credible_level),
        n_ranges=int(len(region.ranges)), convention=region.convention,
        center_ra=region.center_ra, center_dec=region.center_dec,
        radius90_deg=region.radius90_deg, sigma_deg=region.sigma_deg,
        radial_model=jsonable(region.radial_model), distance=jsonable(region.distance),
        status="active" if decision.status == "stored" else "superseded", created_at=now,
    ).returning(regions.c.id)).scalar_one()
    copy_ranges(conn, region_id, region)
    if decision.status == "stored":
        if active is not None:
            conn.execute(update(regions).where(regions.c.id == active.id)
                         .values(status="superseded"))
            conn.execute(update(notices).where(notices.c.id == active.notice_id)
                         .values(status="superseded"))
        conn.execute(update(events).where(events.c.event_id == notice.event_id).values(
            active_region_id=region_id, trigger_time=notice.trigger_time,
            window_start=start, window_end=end, updated_at=now))
    return Stored(decision, notice_id, int(version))


def copy_ranges(conn: Connection, region_id: int, region: Region) -> None:
    """Bulk-load the region's ranges (and a sky map's tiles) with COPY."""
    raw = conn.connection.driver_connection
    assert raw is not None
    cur = raw.cursor()
    buf = io.StringIO()
    for lo, hi in np.asarray(region.ranges, dtype=IPIX_DTYPE):
        buf.write(f"{region_id}\t[{lo},{hi})\n")
    with cur.copy("COPY region_ranges (region_id, rng) FROM STDIN") as copy:
        copy.write(buf.getvalue())
    if region.kind == "circle":
        # Circles: levels and densities follow analytically from the stored centre and
        # law (regions.radial_model, else the Fisher width sigma_deg); no tiles stored.
        return
    buf = io.StringIO()
    tiles = np.asarray(region.tile_ranges, dtype=IPIX_DTYPE)
    for (lo, hi), lev, dens in zip(tiles, region.tile_credible_level,
                                   region.tile_density_deg2, strict=True):
        buf.write(f"{region_id}\t[{lo},{hi})\t{float(lev)!r}\t{float(dens)!r}\n")
    with cur.copy("COPY region_tiles (region_id, rng, credible_level, density_deg2) "
                  "FROM STDIN") as copy:
        copy.write(buf.getvalue())


def _bounds(value: Any) -> tuple[int, int]:
    return int(value.lower), int(value.upper)


def load_region(conn: Connection, row: Any) -> Region:
    """Rebuild a :class:`Region` from its stored rows (``row``: a ``regions`` row,
    with ``id``)."""
    rngs = conn.execute(select(region_ranges.c.rng).where(region_ranges.c.region_id == row.id)
                        ).scalars().all()
    ranges = np.array(sorted(_bounds(r) for r in rngs), dtype=IPIX_DTYPE).reshape(-1, 2)
    tiles = conn.execute(select(region_tiles.c.rng, region_tiles.c.credible_level,
                                region_tiles.c.density_deg2)
                         .where(region_tiles.c.region_id == row.id)).all()
    tiles = sorted(tiles, key=lambda t: _bounds(t.rng))
    return Region(
        kind=row.kind, ranges=ranges, area_deg2=row.area_deg2,
        credible_level=row.credible_level,
        tile_ranges=np.array([_bounds(t.rng) for t in tiles],
                             dtype=IPIX_DTYPE).reshape(-1, 2),
        tile_credible_level=np.array([t.credible_level for t in tiles], dtype=float),
        tile_density_deg2=np.array([t.density_deg2 for t in tiles], dtype=float),
        center_ra=row.center_ra, center_dec=row.center_dec, radius90_deg=row.radius90_deg,
        sigma_deg=row.sigma_deg, convention=row.convention, distance=dict(row.distance or {}),
        radial_model=dict(getattr(row, "radial_model", None) or {}))


def change_signature(conn: Connection) -> tuple[Any, ...]:
    """A cheap signature of the events and regions tables: it changes whenever a region
    is added, superseded or withdrawn."""
    return tuple(conn.execute(select(
        select(func.count(regions.c.id)).scalar_subquery(),
        select(func.max(regions.c.id)).scalar_subquery(),
        select(func.max(events.c.updated_at)).scalar_subquery())).one())


def event_states(conn: Connection) -> Sequence[Any]:
    """Every event with its active region and notice (columns of ``events`` plus the
    region's ``id``, ``region_version``, ``kind``, …, and the notice's
    ``notice_version``, ``ivorn``, ``significance``), oldest change first."""
    return conn.execute(
        select(events, regions.c.id, regions.c.version.label("region_version"),
               regions.c.kind, regions.c.area_deg2, regions.c.credible_level,
               regions.c.center_ra, regions.c.center_dec, regions.c.radius90_deg,
               regions.c.sigma_deg, regions.c.radial_model, regions.c.convention,
               regions.c.distance, notices.c.version.label("notice_version"), notices.c.ivorn,
               notices.c.significance)
        .outerjoin(regions, regions.c.id == events.c.active_region_id)
        .outerjoin(notices, notices.c.id == regions.c.notice_id)
        .order_by(events.c.updated_at, events.c.event_id)).all()


def first_ivorn(conn: Connection, event_id: str) -> str | None:
    """IVORN of the event's first notice (the trigger)."""
    return conn.execute(select(notices.c.ivorn).where(notices.c.event_id == event_id)
                        .order_by(notices.c.issue_time).limit(1)).scalar_one_or_none()


def region_versions(conn: Connection, event_id: str) -> int:
    """The event's last region version (0 if it never had a region)."""
    return int(conn.execute(select(func.coalesce(func.max(regions.c.version), 0))
                            .where(regions.c.event_id == event_id)).scalar_one())


def retraction_notice(conn: Connection, event_id: str) -> Any:
    """The retraction notice of a retracted event (``version``, ``issue_time``,
    ``ivorn``), the first one if the mission sent several."""
    return conn.execute(select(notices.c.version, notices.c.issue_time, notices.c.ivorn)
                        .where(notices.c.event_id == event_id, notices.c.retraction)
                        .order_by(notices.c.issue_time, notices.c.id).limit(1)).one_or_none()


def jsonable(value: Any) -> Any:
    """JSON-safe copy of a dict (datetimes as ISO strings, numpy scalars as Python)."""
    return json.loads(json.dumps(value, default=_default))


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return _iso(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, bytes):
        return f"<{len(obj)} bytes>"
    return str(obj)
