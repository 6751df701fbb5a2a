"""From received bytes to a stored, versioned region: the one ingest path.

Every listener (GCN Kafka, VTP, directory) and ``mm-broker notices ingest`` call
:func:`ingest`. It

1. writes the payload to the raw journal in its own committed transaction
   (:func:`journal`), *before* parsing and before the caller acknowledges the
   transport; identical bytes are one journal row whose ``receipts`` grows;
2. parses it with the registry (:func:`listeners.parsers.parse`), resolves the official
   sky map the notice links, if any (:mod:`mm_broker.app.skymap_fetch`: journal, cache
   or network; the team's map replaces a circle, a failure falls back to the circle or
   rejects a notice that has only the link) and turns the localisation into a
   :class:`~mm_broker.core.models.Region` (:func:`skymaps.region_for`);
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
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DataError

import skymaps
from listeners.directory import notice_files
from listeners.parsers import NoticeError, parse
from mm_broker.app import skymap_fetch
from mm_broker.core.config import Settings
from mm_broker.core.db.schema import notices, raw_journal
from mm_broker.core.errors import InternalError, SkymapFetchError, StoreRejected
from mm_broker.core.models import Notice, Region
from mm_broker.core.repository import store_notice
from mm_broker.core.sections import CoincidenceSettings, SkymapSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """The settings the ingest path needs: the window rule and the sky-map limits
    (``[coincidence]`` and ``[skymaps]``; their defaults live in ``default.toml``)."""

    coincidence: CoincidenceSettings
    skymaps: SkymapSettings
    #: Where fetched official maps are cached (``None``: no disk cache).
    map_cache_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits of the effective configuration."""
        return cls(settings.coincidence, settings.skymaps,
                   settings.state_dir / "skymap_cache")

    def window(self, messenger: str, t0: datetime) -> tuple[datetime, datetime]:
        """Active window ``[t0 - before, t0 + after]`` of an event."""
        return self.coincidence.window(messenger, t0)


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
    assert notice.localisation is not None
    return skymaps.region_for(notice.localisation, max_bytes=limits.skymaps.max_bytes,
                              max_tiles=limits.skymaps.max_tiles)


def _localise(engine: Engine, notice: Notice, limits: Limits,
              ) -> tuple[Notice, Region | None, str | None]:
    """Step 2's official map, then the region: :func:`skymap_fetch.with_official_map`
    with ingest's getter (journal, cache, network; a fetched map is journaled)."""
    cache = None if limits.map_cache_dir is None else skymap_fetch.MapCache(limits.map_cache_dir)
    getter = skymap_fetch.store_getter(
        engine, skymap_fetch.FetchPolicy.from_settings(limits.skymaps), cache)
    return skymap_fetch.with_official_map(notice, getter, lambda n: _region(n, limits))


def ingest(engine: Engine, payload: bytes, source: str, topic: str | None = None,
           received_at: datetime | None = None, *, limits: Limits,
           topic_chooses_parser: bool = True) -> IngestResult:
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
    limits : Limits
        Window and sky-map limits.
    topic_chooses_parser : bool
        Whether ``topic`` may choose the parser (a Kafka topic), or only names the
        payload's origin (a file path: the content chooses).

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
    return process(engine, journal_id, payload, topic if topic_chooses_parser else None,
                   limits)


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


def _parse(payload: bytes, topic: str | None) -> Notice | Exception:
    """The parsed notice, or the exception parsing raised (kept for the journal)."""
    try:
        return parse(payload, topic)
    except Exception as exc:  # noqa: BLE001 - handed to process(), which journals it
        return exc


def process(engine: Engine, journal_id: int, payload: bytes, topic: str | None,
            limits: Limits, parsed: Notice | Exception | None = None) -> IngestResult:
    """Parse and store a journaled payload (steps 2–4 of the module docstring).

    ``parsed`` is the payload's parse when the caller has it already (the notice, or
    the exception the parser raised): a payload is parsed once.
    """
    notice = _parse(payload, topic) if parsed is None else parsed
    if isinstance(notice, NoticeError):
        return _reject(engine, journal_id, notice)
    if isinstance(notice, Exception):
        return _internal(engine, journal_id, "parse", notice)
    region: Region | None = None
    map_note: str | None = None
    if not notice.retraction:
        try:
            notice, region, map_note = _localise(engine, notice, limits)
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
            stored = store_notice(conn, journal_id, notice, region,
                                  limits.window(str(notice.messenger), notice.trigger_time))
            reason = "; ".join(r for r in (stored.decision.reason, map_note) if r) or None
            result = IngestResult(stored.decision.status, reason, journal_id,
                                  notice=notice, region=region,
                                  region_version=stored.region_version)
            conn.execute(update(raw_journal).where(raw_journal.c.id == journal_id)
                         .values(status=result.status, reason=result.reason))
    except DataError as exc:
        # A value the store cannot hold (out of range, bad text): the payload stays in
        # the journal, rejected with the database's reason; the listener goes on.
        first = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
        return _reject(engine, journal_id, StoreRejected(first), notice)
    return result


def recover_pending(engine: Engine, limits: Limits) -> list[IngestResult]:
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
                    limits) for r in rows]


def retry_pending_maps(engine: Engine, limits: Limits) -> list[IngestResult]:
    """Process again the notices rejected because their only localisation, a linked
    official map, could not be fetched for a reason that may pass (a timeout, a 5xx, an
    unreachable host: journal reason ``skymap_fetch: ...; retryable``).

    Their journal rows go back to ``received`` and :func:`recover_pending` processes
    them (with any other row left ``received``); a map fetched now is journaled and
    the notice stored, a map still missing rejects it again with the new reason.
    """
    with engine.begin() as conn:
        conn.execute(update(raw_journal).where(
            raw_journal.c.status == "rejected",
            raw_journal.c.reason.like(f"{SkymapFetchError.reason}:%; retryable"),
        ).values(status="received"))
    return recover_pending(engine, limits)


def ingest_files(engine: Engine, paths: Iterable[str | Path], limits: Limits,
                 source: str = "dir") -> Iterator[tuple[Path, IngestResult]]:
    """``mm-broker notices ingest``: journal every file, then store them in issue-time
    order; yield each file's outcome.

    All the files are journaled first (one committed transaction), each is parsed
    once, and they are processed in the order of their notices' issue times (the
    unparsable ones last), so a folder of a whole notice sequence ends with the
    newest version active whatever the file names. A file whose bytes equal those of
    a file given earlier in the same call is reported as such.

    Parameters
    ----------
    engine : Engine
        The store.
    paths : iterable of str or Path
        Files, or folders searched recursively (:func:`listeners.directory.notice_files`).
    limits : Limits
    source : str
        The source journaled (``dir``).
    """
    files = notice_files(paths)
    received_at = datetime.now(UTC)
    loaded = [(f, f.read_bytes()) for f in files]
    with engine.begin() as conn:
        rows = [journal(conn, payload, source, str(f), received_at) for f, payload in loaded]
    first_path: dict[int, Path] = {}
    items = []
    for (f, payload), (jid, first, status) in zip(loaded, rows, strict=True):
        earlier = first_path.setdefault(jid, f)
        parsed = _parse(payload, None) if earlier == f else None
        when = parsed.issue_time if isinstance(parsed, Notice) else None
        items.append(((when is None, when or received_at, str(f)), f, payload, jid, first,
                      status, parsed, earlier))
    items.sort(key=lambda item: item[0])
    for _, f, payload, jid, first, status, parsed, earlier in items:
        if earlier != f:
            yield f, IngestResult("duplicate", f"identical bytes to {earlier}, given earlier "
                                               f"in this call (journal row {jid})", jid,
                                  event_id=_event_of(engine, jid))
        elif not first and status != "received":
            yield f, IngestResult("duplicate", f"identical bytes already journaled "
                                               f"(row {jid})", jid, event_id=_event_of(engine, jid))
        else:
            # A file path is not a topic: the payload's own content chooses the parser.
            yield f, process(engine, jid, payload, None, limits, parsed)
