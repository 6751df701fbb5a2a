"""From received bytes to a stored, versioned region: the one ingest path.

Every listener (GCN Kafka, VTP, directory) and ``mm-broker notices ingest`` call
:func:`ingest`. It

1. writes the payload to the raw journal in its own committed transaction
   (:func:`journal`), *before* parsing and before the caller acknowledges the
   transport; identical bytes are one journal row whose ``receipts`` grows;
2. parses it with the registry (:func:`listeners.parsers.parse`) and turns the
   localisation into a :class:`~mm_broker.core.models.Region` (:func:`skymaps.region_for`);
3. stores event, notice and region version in one transaction, deciding which
   version is active: the newest ``(version, issue_time)`` wins, an older notice
   arriving late never replaces a newer one, a retraction withdraws the event;
4. records the outcome (status and specific reason) on the journal row.

Outcomes are the statuses of the public contract: ``stored``, ``duplicate``,
``superseded`` (stored, but a newer version is already active), ``retracted`` and
``rejected`` (the payload stays in the journal with the reason).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DataError

from listeners.parsers import NoticeError, parse
from mm_broker.core.config import Settings
from mm_broker.core.db.schema import events, notices, raw_journal, regions
from mm_broker.core.errors import InternalError, StoreRejected
from mm_broker.core.models import Notice, Region

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Settings the ingest path needs (read once from the configuration)."""

    window_before_s: float = 600.0
    window_after_days: dict[str, float] | None = None
    default_after_days: float = 20.0
    skymap_max_bytes: int = 64 * 2**20
    skymap_max_tiles: int = 48 * 2**20

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """Build from ``[coincidence]`` and ``[skymaps]``."""
        return cls(
            window_before_s=float(settings.get("coincidence.window_before_s")),
            window_after_days=dict(settings.get("coincidence.window_after_days_by_messenger")),
            default_after_days=float(settings.get("coincidence.window_after_days")),
            skymap_max_bytes=int(settings.get("skymaps.max_bytes")),
            skymap_max_tiles=int(settings.get("skymaps.max_tiles")),
        )

    def window(self, messenger: str, t0: datetime) -> tuple[datetime, datetime]:
        """Active window ``[t0 - before, t0 + after]`` of an event."""
        after = (self.window_after_days or {}).get(messenger, self.default_after_days)
        return t0 - timedelta(seconds=self.window_before_s), t0 + timedelta(days=after)


@dataclass(frozen=True)
class IngestResult:
    """Outcome of ingesting one payload."""

    status: str
    reason: str | None
    journal_id: int
    notice: Notice | None = None
    region: Region | None = None
    region_version: int | None = None
    event_id: str | None = None

    def contract(self, path: str | None = None) -> dict[str, Any]:
        """The JSON line of ``mm-broker notices ingest`` (ARCHITECTURE.md contract)."""
        n = self.notice
        reg = None
        if self.region is not None:
            reg = {"kind": self.region.kind, "area_deg2": float(f"{self.region.area_deg2:.6g}"),
                   "credible_level": self.region.credible_level,
                   "n_ranges": int(len(self.region.ranges))}
        return {
            "path": path, "status": self.status, "reason": self.reason,
            "event_id": n.event_id if n else self.event_id,
            "messenger": str(n.messenger) if n else None,
            "mission": n.mission if n else None,
            "instrument": n.instrument if n else None,
            "notice_type": n.notice_type if n else None,
            "role": str(n.role) if n else None,
            "trigger_time": _iso(n.trigger_time) if n else None,
            "version": n.version if n else None,
            "region": reg,
        }


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def journal(conn: Connection, payload: bytes, source: str, topic: str | None,
            received_at: datetime) -> tuple[int, bool, str]:
    """Insert (or count again) a payload in the raw journal.

    Returns
    -------
    journal_id : int
    first_receipt : bool
        False when identical bytes were journaled before.
    status : str
        Current status of the journal row (``received`` until processed).
    """
    digest = hashlib.sha256(payload).hexdigest()
    base = pg_insert(raw_journal).values(
        sha256=digest, payload=payload, size=len(payload), source=source, topic=topic,
        received_at=received_at, last_received_at=received_at, status="received")
    stmt = base.on_conflict_do_update(
        index_elements=[raw_journal.c.sha256],
        set_={"receipts": raw_journal.c.receipts + 1, "last_received_at": received_at},
    ).returning(raw_journal.c.id, raw_journal.c.receipts, raw_journal.c.status)
    row = conn.execute(stmt).one()
    return int(row.id), int(row.receipts) == 1, str(row.status)


def _region(notice: Notice, limits: Limits) -> Region:
    import skymaps

    assert notice.localisation is not None
    return skymaps.region_for(notice.localisation, max_bytes=limits.skymap_max_bytes,
                              max_tiles=limits.skymap_max_tiles)


def ingest(engine: Engine, payload: bytes, source: str, topic: str | None = None,
           received_at: datetime | None = None, limits: Limits | None = None,
           ) -> IngestResult:
    """Journal, parse, localise and store one payload.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.
    payload : bytes
        Bytes as received.
    source : str
        ``gcn``, ``vtp``, ``dir`` or ``replay``.
    topic : str, optional
        Kafka topic, VTP stream or file path.
    received_at : datetime, optional
        Reception time (now by default).
    limits : Limits, optional
        Window and sky-map limits.

    Returns
    -------
    IngestResult
    """
    received_at = received_at or datetime.now(UTC)
    with engine.begin() as conn:
        journal_id, first, status = journal(conn, payload, source, topic, received_at)
    if not first and status != "received":
        return IngestResult("duplicate", f"identical bytes already journaled (row {journal_id})",
                            journal_id, event_id=_event_of(engine, journal_id))
    return process(engine, journal_id, payload, topic, limits or Limits())


def _event_of(engine: Engine, journal_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            select(notices.c.event_id).where(notices.c.journal_id == journal_id)
        ).scalar_one_or_none()


def _reject(engine: Engine, journal_id: int, exc: NoticeError,
            notice: Notice | None = None) -> IngestResult:
    with engine.begin() as conn:
        conn.execute(update(raw_journal).where(raw_journal.c.id == journal_id)
                     .values(status="rejected", reason=str(exc)))
    return IngestResult("rejected", str(exc), journal_id, notice=notice)


def _internal(engine: Engine, journal_id: int, stage: str, exc: Exception,
              notice: Notice | None = None) -> IngestResult:
    """Reject a payload whose processing failed unexpectedly; log the traceback."""
    first = (str(exc).splitlines() or [""])[0][:300]
    log.error("journal row %d: %s failed: %s: %s", journal_id, stage, type(exc).__name__,
              first, exc_info=exc)
    return _reject(engine, journal_id,
                   InternalError(f"{stage}: {type(exc).__name__}: {first}"), notice)


def process(engine: Engine, journal_id: int, payload: bytes, topic: str | None,
            limits: Limits) -> IngestResult:
    """Parse and store a journaled payload (steps 2–4 of the module docstring)."""
    try:
        notice = parse(payload, topic)
    except NoticeError as exc:
        return _reject(engine, journal_id, exc)
    except Exception as exc:  # noqa: BLE001 - journaled with its reason, logged in full
        return _internal(engine, journal_id, "parse", exc)
    region: Region | None = None
    if not notice.retraction:
        try:
            region = _region(notice, limits)
        except NoticeError as exc:
            return _reject(engine, journal_id, exc, notice)
        except Exception as exc:  # noqa: BLE001 - journaled with its reason, logged in full
            return _internal(engine, journal_id, "region", exc, notice)
    try:
        with engine.begin() as conn:
            # A synchronous commit, like the journal's: the caller acknowledges the
            # transport (commits the Kafka offset, ACKs VTP) as soon as this returns.
            # An asynchronous one (synchronous_commit = off) was undone by a crash of
            # PostgreSQL alone, leaving the row 'received' with its offset committed;
            # recover_pending() runs only when a listener starts, so a listener that
            # outlived the crash never stored that notice (tests/faults/
            # test_postgres_restart.py).
            # Claim the row: another listener may be processing the same journal row
            # (recover_pending at its start, or the same bytes received twice at once).
            # The second to get the lock finds it done and stores nothing.
            claimed = conn.execute(select(raw_journal.c.status).where(
                raw_journal.c.id == journal_id).with_for_update()).scalar_one()
            if claimed != "received":
                return IngestResult("duplicate", f"processed meanwhile by another listener "
                                                 f"(row {journal_id}: {claimed})",
                                    journal_id, notice=notice)
            result = _store(conn, journal_id, notice, region, limits)
            conn.execute(update(raw_journal).where(raw_journal.c.id == journal_id)
                         .values(status=result.status, reason=result.reason))
    except DataError as exc:
        # A value the store cannot hold (out of range, bad text): the payload stays in
        # the journal, rejected with the database's reason; the listener goes on.
        first = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
        return _reject(engine, journal_id, StoreRejected(first), notice)
    return result


def recover_pending(engine: Engine, limits: Limits | None = None) -> list[IngestResult]:
    """Process journal rows left ``received`` (a crash between journal and store).

    Listeners call it when they start, so a payload acknowledged to its transport
    before a crash is never lost.
    """
    with engine.connect() as conn:
        rows = conn.execute(select(raw_journal.c.id, raw_journal.c.payload, raw_journal.c.topic,
                                   raw_journal.c.source)
                            .where(raw_journal.c.status == "received")
                            .order_by(raw_journal.c.id)).all()
    return [process(engine, r.id, r.payload, r.topic if r.source == "gcn" else None,
                    limits or Limits()) for r in rows]


def _store(conn: Connection, journal_id: int, notice: Notice, region: Region | None,
           limits: Limits) -> IngestResult:
    now = datetime.now(UTC)
    messenger = str(notice.messenger)
    start, end = limits.window(messenger, notice.trigger_time)
    # Two listeners (GCN and VTP, say) may store notices of a new event at the same
    # moment: the insert waits for the other's commit and then does nothing, and the
    # row lock below serialises everything that follows (versions, active region).
    conn.execute(pg_insert(events).values(
        event_id=notice.event_id, messenger=messenger, mission=notice.mission,
        instrument=notice.instrument, role=str(notice.role),
        trigger_time=notice.trigger_time, status="active", active_region_id=None,
        window_start=start, window_end=end, updated_at=now,
    ).on_conflict_do_nothing(index_elements=[events.c.event_id]))
    ev = conn.execute(select(events).where(events.c.event_id == notice.event_id)
                      .with_for_update()).one()

    active = None
    if ev.active_region_id is not None:
        active = conn.execute(
            select(regions.c.id, regions.c.version.label("region_version"),
                   notices.c.id.label("notice_id"), notices.c.version, notices.c.issue_time)
            .join(notices, notices.c.id == regions.c.notice_id)
            .where(regions.c.id == ev.active_region_id)).one()

    key = (notice.version, notice.issue_time)
    newer = active is None or key > (active.version, active.issue_time)
    if notice.retraction:
        status, reason = "retracted", None
    elif ev.status == "retracted":
        status, reason = "superseded", "event already retracted"
    elif newer:
        status, reason = "stored", None
    else:
        status = "superseded"
        reason = (f"older than the active version {active.version} "
                  f"issued {_iso(active.issue_time)}") if active is not None else None

    notice_id = conn.execute(insert(notices).values(
        event_id=notice.event_id, journal_id=journal_id, notice_type=notice.notice_type,
        version=notice.version, issue_time=notice.issue_time,
        trigger_time=notice.trigger_time, role=str(notice.role),
        retraction=notice.retraction, ivorn=notice.ivorn,
        significance=_jsonable(notice.significance), extra=_jsonable(notice.extra),
        status={"stored": "active", "retracted": "retracted"}.get(status, "superseded"),
    ).returning(notices.c.id)).scalar_one()
    conn.execute(update(raw_journal).where(raw_journal.c.id == journal_id)
                 .values(notice_id=notice_id))

    if notice.retraction:
        if active is not None:
            conn.execute(update(regions).where(regions.c.id == active.id)
                         .values(status="withdrawn"))
        conn.execute(update(events).where(events.c.event_id == notice.event_id).values(
            status="retracted", active_region_id=None, updated_at=now))
        return IngestResult(status, reason, journal_id, notice=notice)

    assert region is not None
    version = conn.execute(select(func.coalesce(func.max(regions.c.version), 0) + 1)
                           .where(regions.c.event_id == notice.event_id)).scalar_one()
    region_id = conn.execute(insert(regions).values(
        event_id=notice.event_id, notice_id=notice_id, version=version, kind=region.kind,
        area_deg2=float(region.area_deg2), credible_level=float(region.credible_level),
        n_ranges=int(len(region.ranges)), convention=region.convention,
        center_ra=region.center_ra, center_dec=region.center_dec,
        radius90_deg=region.radius90_deg, sigma_deg=region.sigma_deg,
        distance=_jsonable(region.distance),
        status="active" if status == "stored" else "superseded", created_at=now,
    ).returning(regions.c.id)).scalar_one()
    _copy_ranges(conn, region_id, region)
    if status == "stored":
        if active is not None:
            conn.execute(update(regions).where(regions.c.id == active.id)
                         .values(status="superseded"))
            conn.execute(update(notices).where(notices.c.id == active.notice_id)
                         .values(status="superseded"))
        conn.execute(update(events).where(events.c.event_id == notice.event_id).values(
            active_region_id=region_id, trigger_time=notice.trigger_time,
            window_start=start, window_end=end, updated_at=now))
    return IngestResult(status, reason, journal_id, notice=notice, region=region,
                        region_version=int(version))


def _copy_ranges(conn: Connection, region_id: int, region: Region) -> None:
    """Bulk-load the region's ranges (and a sky map's tiles) with COPY."""
    raw = conn.connection.driver_connection
    assert raw is not None
    cur = raw.cursor()
    buf = io.StringIO()
    for lo, hi in np.asarray(region.ranges, dtype=np.int64):
        buf.write(f"{region_id}\t[{lo},{hi})\n")
    with cur.copy("COPY region_ranges (region_id, rng) FROM STDIN") as copy:
        copy.write(buf.getvalue())
    if region.kind == "circle":
        # Circles: levels and densities follow analytically from the stored centre and
        # width (regions.sigma_deg); their tiles are not stored.
        return
    buf = io.StringIO()
    tiles = np.asarray(region.tile_ranges, dtype=np.int64)
    for (lo, hi), lev, dens in zip(tiles, region.tile_credible_level,
                                   region.tile_density_deg2, strict=True):
        buf.write(f"{region_id}\t[{lo},{hi})\t{float(lev)!r}\t{float(dens)!r}\n")
    with cur.copy("COPY region_tiles (region_id, rng, credible_level, density_deg2) "
                  "FROM STDIN") as copy:
        copy.write(buf.getvalue())


def _jsonable(value: Any) -> Any:
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
