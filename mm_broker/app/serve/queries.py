"""Read-only queries of the portal over the store (PostgreSQL).

Every function takes an open :class:`sqlalchemy.Connection` and returns plain
Python values (dicts, lists), ready for JSON or a template. Filters and sort keys
are chosen from fixed tables (:data:`EVENT_SORTS`), values are bound parameters:
no client text reaches the SQL.

Live candidates
---------------
The ``associations`` table is an outbox: a candidate row, and later perhaps a
withdrawn row of the same ``(event, region_version, alert)``. A candidate is *live*
when no withdrawn row follows it; :func:`candidates` returns each alert of a region
version once, with the status it has now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from mm_broker.core.repository import jsonable

#: Significance keys read as "sigma" figures (GRB and X-ray missions); the largest one
#: of a notice is its ``significance_sigma``.
SIGMA_KEYS = ("data_significance_sigma", "burst_significance_sigma", "significance_sigma",
              "rate_significance_sigma", "image_significance_sigma",
              "detection_significance_sigma")

#: Sort keys of the events list → SQL expression over the ``page`` columns.
EVENT_SORTS: dict[str, str] = {
    "trigger_time": "e.trigger_time", "event_id": "e.event_id",
    "messenger": "e.messenger", "mission": "e.mission", "status": "e.status",
    "updated_at": "e.updated_at", "area_deg2": "r.area_deg2",
    "far_hz": "(n.significance->>'far_hz')::float8",
}

_SIGMA_SQL = "GREATEST(" + ", ".join(f"(n.significance->>'{k}')::float8"
                                      for k in SIGMA_KEYS) + ")"

_LIVE = """NOT EXISTS (SELECT 1 FROM associations w WHERE w.event_id = a.event_id
           AND w.region_version = a.region_version AND w.alert_id = a.alert_id
           AND w.status = 'withdrawn')"""


@dataclass(frozen=True)
class EventFilter:
    """Filters of the events list (each ``None``: not filtered).

    Attributes
    ----------
    messenger, mission, status : str or None
        Exact values (``status``: ``active`` or ``retracted``).
    since, until : datetime or None
        Trigger time range, inclusive.
    max_far_hz : float or None
        Notices with a false-alarm rate (GW) at most this.
    min_sigma : float or None
        Notices with a significance (largest of :data:`SIGMA_KEYS`) at least this.
    role : str or None
        ``observation`` or ``test``.
    """

    messenger: str | None = None
    mission: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    max_far_hz: float | None = None
    min_sigma: float | None = None
    role: str | None = None

    def where(self) -> tuple[str, dict[str, Any]]:
        """The SQL condition (over ``e``, ``r``, ``n``) and its parameters."""
        parts, params = ["TRUE"], {}
        for name in ("messenger", "mission", "status", "role"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"e.{name} = :{name}")
                params[name] = value
        if self.since is not None:
            parts.append("e.trigger_time >= :since")
            params["since"] = self.since
        if self.until is not None:
            parts.append("e.trigger_time <= :until")
            params["until"] = self.until
        if self.max_far_hz is not None:
            parts.append("(n.significance->>'far_hz')::float8 <= :max_far_hz")
            params["max_far_hz"] = self.max_far_hz
        if self.min_sigma is not None:
            parts.append(f"{_SIGMA_SQL} >= :min_sigma")
            params["min_sigma"] = self.min_sigma
        return " AND ".join(parts), params


def _iso(t: datetime | None) -> str | None:
    return None if t is None else jsonable({"t": t})["t"]


def _event_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    sig = dict(row["significance"] or {})
    sigmas = [float(sig[k]) for k in SIGMA_KEYS if isinstance(sig.get(k), int | float)]
    return {
        "event_id": row["event_id"], "messenger": row["messenger"],
        "mission": row["mission"], "instrument": row["instrument"], "role": row["role"],
        "trigger_time": _iso(row["trigger_time"]), "status": row["status"],
        "window_start": _iso(row["window_start"]), "window_end": _iso(row["window_end"]),
        "updated_at": _iso(row["updated_at"]),
        "latest_notice_type": row["latest_notice_type"],
        "latest_notice_version": row["latest_notice_version"],
        "region_version": row["region_version"], "region_kind": row["region_kind"],
        "area90_deg2": row["area_deg2"],
        "far_hz": sig.get("far_hz"), "significance_sigma": max(sigmas) if sigmas else None,
        "significance": jsonable(sig),
        "n_candidates": int(row["n_candidates"] or 0), "n_new": int(row["n_new"] or 0),
        "n_pre_existing": int(row["n_pre_existing"] or 0),
    }


def _events_sql(where: str, order: str, page: bool) -> str:
    tail = "ORDER BY {order} LIMIT :limit OFFSET :offset" if page else ""
    return f"""
    WITH page AS (
      SELECT e.event_id FROM events e
      LEFT JOIN regions r ON r.id = e.active_region_id
      LEFT JOIN notices n ON n.id = r.notice_id
      WHERE {where} {tail.format(order=order)}
    )
    SELECT e.*, r.version AS region_version, r.kind AS region_kind, r.area_deg2,
           n.significance, ln.notice_type AS latest_notice_type,
           ln.version AS latest_notice_version,
           c.n_candidates, c.n_new, c.n_pre_existing
    FROM page JOIN events e ON e.event_id = page.event_id
    LEFT JOIN regions r ON r.id = e.active_region_id
    LEFT JOIN notices n ON n.id = r.notice_id
    LEFT JOIN LATERAL (SELECT notice_type, version FROM notices
                       WHERE event_id = e.event_id ORDER BY issue_time DESC, id DESC
                       LIMIT 1) ln ON TRUE
    LEFT JOIN LATERAL (
      SELECT count(*) AS n_candidates,
             count(*) FILTER (WHERE a.record->>'newness' = 'new') AS n_new,
             count(*) FILTER (WHERE a.record->>'newness' = 'pre_existing') AS n_pre_existing
      FROM associations a
      WHERE a.event_id = e.event_id AND a.region_version = r.version
        AND a.status = 'candidate' AND {_LIVE}) c ON TRUE
    ORDER BY {order}
    """  # noqa: S608  (fixed fragments of this module; every value is bound)


def list_events(conn: Connection, flt: EventFilter, sort: str = "trigger_time",
                descending: bool = True, limit: int = 50, offset: int = 0,
                ) -> tuple[list[dict[str, Any]], int]:
    """One page of events and the number of events that pass the filters.

    Parameters
    ----------
    conn : Connection
    flt : EventFilter
    sort : str
        A key of :data:`EVENT_SORTS`.
    descending : bool
        Sort order (ties broken by ``event_id``).
    limit, offset : int
        The page.

    Returns
    -------
    items : list of dict
        Each event with its active region, latest notice and live candidate counts.
    total : int
        Events passing the filters.
    """
    where, params = flt.where()
    direction = "DESC NULLS LAST" if descending else "ASC NULLS LAST"
    order = f"{EVENT_SORTS[sort]} {direction}, e.event_id"
    rows = conn.execute(text(_events_sql(where, order, page=True)),
                        {**params, "limit": limit, "offset": offset}).mappings().all()
    count = f"""SELECT count(*) FROM events e
        LEFT JOIN regions r ON r.id = e.active_region_id
        LEFT JOIN notices n ON n.id = r.notice_id WHERE {where}"""  # noqa: S608  (as above)
    total = conn.execute(text(count), params).scalar_one()
    return [_event_dict(dict(r)) for r in rows], int(total)


def get_event(conn: Connection, event_id: str) -> dict[str, Any] | None:
    """One event as in :func:`list_events`, or ``None`` if unknown."""
    rows = conn.execute(text(_events_sql("e.event_id = :eid", "e.event_id", page=True)),
                        {"eid": event_id, "limit": 1, "offset": 0}).mappings().all()
    return _event_dict(dict(rows[0])) if rows else None


def notice_history(conn: Connection, event_id: str) -> list[dict[str, Any]]:
    """Every notice of the event, in issue order, with its region version."""
    rows = conn.execute(text("""
        SELECT n.id, n.notice_type, n.version, n.issue_time, n.trigger_time, n.role,
               n.retraction, n.ivorn, n.status, n.significance, j.size, j.source,
               j.received_at, r.version AS region_version, r.kind, r.area_deg2,
               r.status AS region_status
        FROM notices n JOIN raw_journal j ON j.id = n.journal_id
        LEFT JOIN regions r ON r.notice_id = n.id
        WHERE n.event_id = :eid ORDER BY n.issue_time, n.id"""), {"eid": event_id})
    return [{
        "notice_id": r.id, "notice_type": r.notice_type, "version": r.version,
        "issue_time": _iso(r.issue_time), "trigger_time": _iso(r.trigger_time),
        "role": r.role, "retraction": r.retraction, "ivorn": r.ivorn, "status": r.status,
        "significance": jsonable(dict(r.significance or {})), "payload_bytes": r.size,
        "source": r.source, "received_at": _iso(r.received_at),
        "region_version": r.region_version, "region_kind": r.kind,
        "region_area_deg2": r.area_deg2, "region_status": r.region_status,
    } for r in rows]


def region_versions(conn: Connection, event_id: str) -> list[dict[str, Any]]:
    """The event's region versions (metadata, no ranges)."""
    rows = conn.execute(text("""
        SELECT version, kind, area_deg2, credible_level, n_ranges, convention, center_ra,
               center_dec, radius90_deg, sigma_deg, distance, status, created_at, notice_id
        FROM regions WHERE event_id = :eid ORDER BY version"""), {"eid": event_id})
    return [{**{k: v for k, v in r._mapping.items() if k not in ("created_at", "distance")},
             "distance": jsonable(dict(r.distance or {})), "created_at": _iso(r.created_at)}
            for r in rows]


def region_row(conn: Connection, event_id: str, version: int) -> Any:
    """The ``regions`` row of a version (with ``id``), or ``None``."""
    return conn.execute(text("SELECT * FROM regions WHERE event_id = :eid AND version = :v"),
                        {"eid": event_id, "v": version}).one_or_none()


def voevents_of(conn: Connection, event_id: str) -> list[dict[str, Any]]:
    """The VOEvents issued for the event (no XML), oldest first."""
    rows = conn.execute(text("""
        SELECT ivorn, region_version, kind, authored, created_at, sent_at, length(xml) AS size
        FROM voevents WHERE event_id = :eid ORDER BY created_at, ivorn"""), {"eid": event_id})
    return [{"ivorn": r.ivorn, "region_version": r.region_version, "kind": r.kind,
             "authored": _iso(r.authored), "sent_at": _iso(r.sent_at), "bytes": r.size}
            for r in rows]


def voevent_xml(conn: Connection, ivorn: str) -> bytes | None:
    """The XML of one VOEvent we issued."""
    value = conn.execute(text("SELECT xml FROM voevents WHERE ivorn = :i"),
                         {"i": ivorn}).scalar_one_or_none()
    return None if value is None else bytes(value)


def notice_payload(conn: Connection, event_id: str, notice_id: int) -> bytes | None:
    """The raw payload of one notice of the event, from the journal."""
    value = conn.execute(text("""SELECT j.payload FROM notices n
        JOIN raw_journal j ON j.id = n.journal_id WHERE n.id = :n AND n.event_id = :eid"""),
                         {"n": notice_id, "eid": event_id}).scalar_one_or_none()
    return None if value is None else bytes(value)


def retraction_of(conn: Connection, event_id: str) -> dict[str, Any] | None:
    """The event's retraction record, if it was retracted and published."""
    rec = conn.execute(text("SELECT record FROM retractions WHERE event_id = :eid"),
                       {"eid": event_id}).scalar_one_or_none()
    return None if rec is None else dict(rec)


def default_version(event: Mapping[str, Any], versions: Sequence[Mapping[str, Any]]
                    ) -> int | None:
    """The region version shown by default: the active one, else the last one."""
    if event.get("region_version") is not None:
        return int(event["region_version"])
    return int(versions[-1]["version"]) if versions else None


def candidates(conn: Connection, event_id: str, region_version: int, status: str = "candidate",
               limit: int | None = None, offset: int = 0,
               ) -> tuple[list[dict[str, Any]], int]:
    """The records of one region version, each alert once with its status now.

    Parameters
    ----------
    conn : Connection
    event_id : str
    region_version : int
    status : str
        ``candidate`` (live ones), ``withdrawn`` or ``all``.
    limit, offset : int
        The page (``limit`` None: all).

    Returns
    -------
    records : list of dict
        The published records, rank 1 first; a withdrawn one is its withdrawn record.
    total : int
        Records of that status.
    """
    cond = {"candidate": "a.status = 'candidate' AND " + _LIVE,
            "withdrawn": "a.status = 'withdrawn'",
            "all": f"(a.status = 'withdrawn' OR {_LIVE})"}[status]
    base = f"""FROM associations a WHERE a.event_id = :eid AND a.region_version = :v
               AND {cond}"""
    params: dict[str, Any] = {"eid": event_id, "v": region_version, "offset": offset,
                              "limit": limit}
    rows = conn.execute(text(f"""SELECT a.record {base}
        ORDER BY (a.record->>'rank')::int NULLS LAST, a.alert_id
        LIMIT :limit OFFSET :offset"""), params).scalars().all()
    total = conn.execute(text(f"SELECT count(*) {base}"), params).scalar_one()
    return [dict(r) for r in rows], int(total)


def object_records(conn: Connection, survey: str, object_id: str) -> list[dict[str, Any]]:
    """Every record (candidate or withdrawn, each alert and event once) of an object."""
    rows = conn.execute(text("""
        SELECT DISTINCT ON (a.event_id, a.region_version, a.alert_id) a.record
        FROM associations a
        WHERE a.record->>'object_id' = :oid AND a.record->>'survey' = :survey
        ORDER BY a.event_id, a.region_version, a.alert_id,
                 (a.status = 'withdrawn') DESC, a.id DESC"""),
                        {"oid": object_id, "survey": survey}).scalars().all()
    return sorted((dict(r) for r in rows),
                  key=lambda r: (str(r.get("alert_time")), str(r.get("event_id"))))


def change_signature(conn: Connection) -> list[Any]:
    """What changes when a notice, a region version or a record arrives (live updates)."""
    row = conn.execute(text("""SELECT (SELECT max(id) FROM notices),
        (SELECT max(updated_at) FROM events), (SELECT max(id) FROM associations),
        (SELECT count(*) FROM retractions)""")).one()
    return [jsonable({"v": v})["v"] for v in row]
