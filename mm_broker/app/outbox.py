"""The outbox: counterparts, retractions and VOEvents, stored before they are sent.

A record is inserted (and committed) before it is published and marked once Kafka
confirmed its delivery; the tables' keys make a replay or a restart find what was
done and publish nothing twice:

* ``associations``, keyed ``(event_id, region_version, alert_id, status)``;
* ``retractions``, one row per retracted event;
* ``voevents``, every VOEvent we broadcast, by IVORN (the numbering of our VOEvents
  and the VOEvents a retraction cites survive restarts);
* ``coincidences``, keyed ``(event_id, region_version, external_event_id,
  external_region_version, status)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from mm_broker.core.db.schema import associations, coincidences, retractions, voevents

#: Key of a counterpart row: ``(event_id, region_version, alert_id, status)``.
Key = tuple[str, int, str, str]

_CHUNK = 1000  # rows per statement


def key(record: Mapping[str, Any]) -> Key:
    """The outbox key of a counterpart record."""
    return (str(record["event_id"]), int(record["region_version"]), str(record["alert_id"]),
            str(record["status"]))


def _jsonb(record: Mapping[str, Any]) -> Any:
    return json.loads(json.dumps(record, default=str))


def insert_counterparts(db: Engine, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Insert the records not stored before; return those (in the given order)."""
    if not records:
        return []
    now = datetime.now(UTC)
    by_key = {key(r): dict(r) for r in records}
    inserted: set[Key] = set()
    with db.begin() as conn:
        keys = list(by_key)
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            rows = conn.execute(
                pg_insert(associations).values([
                    {"event_id": k[0], "region_version": k[1], "alert_id": k[2],
                     "status": k[3], "created_at": now, "record": _jsonb(by_key[k])}
                    for k in chunk])
                .on_conflict_do_nothing(constraint="uq_associations_key")
                .returning(associations.c.event_id, associations.c.region_version,
                           associations.c.alert_id, associations.c.status)).all()
            inserted.update((r[0], int(r[1]), r[2], r[3]) for r in rows)
    return [by_key[k] for k in by_key if k in inserted]


def mark_counterparts(db: Engine, keys: Sequence[Key]) -> None:
    """Mark counterpart rows as delivered."""
    now = datetime.now(UTC)
    with db.begin() as conn:
        for start in range(0, len(keys), _CHUNK):
            chunk = list(keys[start:start + _CHUNK])
            conn.execute(update(associations)
                         .where(tuple_(associations.c.event_id, associations.c.region_version,
                                       associations.c.alert_id, associations.c.status)
                                .in_(chunk))
                         .values(published_at=now))


def pending_counterparts(db: Engine) -> list[tuple[dict[str, Any], datetime]]:
    """Rows inserted but not confirmed delivered (a crash in between), oldest first."""
    with db.connect() as conn:
        rows = conn.execute(select(associations.c.record, associations.c.created_at)
                            .where(associations.c.published_at.is_(None))
                            .order_by(associations.c.id)).all()
    return [(dict(r.record), r.created_at) for r in rows]


def live_candidates(db: Engine, event_id: str) -> list[dict[str, Any]]:
    """Candidate records of an event that no withdrawn record follows yet."""
    with db.connect() as conn:
        rows = conn.execute(select(associations.c.record, associations.c.region_version,
                                   associations.c.alert_id, associations.c.status)
                            .where(associations.c.event_id == event_id)
                            .order_by(associations.c.id)).all()
    withdrawn = {(r.region_version, r.alert_id) for r in rows if r.status == "withdrawn"}
    return [dict(r.record) for r in rows
            if r.status == "candidate" and (r.region_version, r.alert_id) not in withdrawn]


def insert_retraction(db: Engine, record: Mapping[str, Any]) -> bool:
    """Insert an event's retraction record; False if the event has one already."""
    with db.begin() as conn:
        row = conn.execute(pg_insert(retractions).values(
            event_id=str(record["event_id"]), notice_version=int(record["notice_version"]),
            role=str(record["role"]), record=_jsonb(record), created_at=datetime.now(UTC))
            .on_conflict_do_nothing(index_elements=[retractions.c.event_id])
            .returning(retractions.c.event_id)).first()
    return row is not None


def mark_retraction(db: Engine, event_id: str) -> None:
    """Mark an event's retraction record as delivered."""
    with db.begin() as conn:
        conn.execute(update(retractions).where(retractions.c.event_id == event_id)
                     .values(published_at=datetime.now(UTC)))


def pending_retractions(db: Engine) -> list[tuple[dict[str, Any], datetime]]:
    """Retraction rows not confirmed delivered, oldest first."""
    with db.connect() as conn:
        rows = conn.execute(select(retractions.c.record, retractions.c.created_at)
                            .where(retractions.c.published_at.is_(None))
                            .order_by(retractions.c.created_at)).all()
    return [(dict(r.record), r.created_at) for r in rows]


def store_voevents(db: Engine, docs: Iterable[Any], acked: Iterable[str],
                   authored: datetime) -> None:
    """Record VOEvents we broadcast (``docs``: :class:`publishers.voevent_build.VOEventDoc`;
    ``acked``: IVORNs Comet acknowledged)."""
    rows = [{"ivorn": d.ivorn, "event_id": d.event_id,
             "region_version": d.region_version, "kind": d.kind,
             "authored": authored, "xml": d.xml} for d in docs]
    if not rows:
        return
    ok = set(acked)
    now = datetime.now(UTC)
    with db.begin() as conn:
        conn.execute(pg_insert(voevents).values(
            [{**r, "created_at": now, "sent_at": now if r["ivorn"] in ok else None}
             for r in rows]).on_conflict_do_nothing(index_elements=[voevents.c.ivorn]))


def issued_voevents(db: Engine) -> list[tuple[str, int | None, str]]:
    """``(event_id, region_version, ivorn)`` of every VOEvent we issued, in order."""
    with db.connect() as conn:
        rows = conn.execute(select(voevents.c.event_id, voevents.c.region_version,
                                   voevents.c.ivorn)
                            .order_by(voevents.c.created_at, voevents.c.ivorn)).all()
    return [(r.event_id, r.region_version, r.ivorn) for r in rows]


# ---------------------------------------------------------------------- coincidences

#: Key of a coincidence row.
CoincidenceKey = tuple[str, int, str, int, str]


def coincidence_key(record: Mapping[str, Any]) -> CoincidenceKey:
    """The outbox key of a coincidence record."""
    return (str(record["event_id"]), int(record["region_version"]),
            str(record["external_event_id"]), int(record["external_region_version"]),
            str(record["status"]))


def insert_coincidences(db: Engine, records: Sequence[Mapping[str, Any]]
                        ) -> list[dict[str, Any]]:
    """Insert the coincidence records not stored before; return those (in order)."""
    if not records:
        return []
    now = datetime.now(UTC)
    by_key = {coincidence_key(r): dict(r) for r in records}
    inserted: set[CoincidenceKey] = set()
    with db.begin() as conn:
        rows = conn.execute(
            pg_insert(coincidences).values([
                {"event_id": k[0], "region_version": k[1], "external_event_id": k[2],
                 "external_region_version": k[3], "status": k[4], "created_at": now,
                 "record": _jsonb(r)} for k, r in by_key.items()])
            .on_conflict_do_nothing(constraint="uq_coincidences_key")
            .returning(coincidences.c.event_id, coincidences.c.region_version,
                       coincidences.c.external_event_id,
                       coincidences.c.external_region_version, coincidences.c.status)).all()
        inserted.update((r[0], int(r[1]), r[2], int(r[3]), r[4]) for r in rows)
    return [by_key[k] for k in by_key if k in inserted]


def mark_coincidences(db: Engine, keys: Sequence[CoincidenceKey]) -> None:
    """Mark coincidence rows as delivered."""
    if not keys:
        return
    now = datetime.now(UTC)
    c = coincidences.c
    with db.begin() as conn:
        conn.execute(update(coincidences)
                     .where(tuple_(c.event_id, c.region_version, c.external_event_id,
                                   c.external_region_version, c.status).in_(list(keys)))
                     .values(published_at=now))


def pending_coincidences(db: Engine) -> list[dict[str, Any]]:
    """Coincidence rows inserted but not confirmed delivered, oldest first."""
    with db.connect() as conn:
        rows = conn.execute(select(coincidences.c.record)
                            .where(coincidences.c.published_at.is_(None))
                            .order_by(coincidences.c.id)).all()
    return [dict(r.record) for r in rows]
