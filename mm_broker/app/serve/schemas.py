"""Response models of the REST API (they document ``/api/v1/openapi.json``).

Field names are stable: clients depend on them. Counterpart records are returned as
the published records (the fields of the Kafka topics, ARCHITECTURE.md), so their
model is open (``extra="allow"``) beyond the contract fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Problem(BaseModel):
    """Every error: the HTTP status and a message a person can read."""

    status: int
    message: str


class EventSummary(BaseModel):
    """One event of ``GET /api/v1/events``."""

    event_id: str
    messenger: str
    mission: str
    instrument: str
    role: str
    trigger_time: str | None
    status: str
    window_start: str | None
    window_end: str | None
    updated_at: str | None
    latest_notice_type: str | None
    latest_notice_version: int | None
    region_version: int | None
    region_kind: str | None
    area90_deg2: float | None
    far_hz: float | None
    significance_sigma: float | None
    significance: dict[str, Any]
    n_candidates: int
    n_new: int
    n_pre_existing: int


class EventDetail(EventSummary):
    """``GET /api/v1/events/{event_id}``: the summary, its notices, regions, VOEvents."""

    notices: list[dict[str, Any]]
    regions: list[dict[str, Any]]
    voevents: list[dict[str, Any]]
    retraction: dict[str, Any] | None
    links: dict[str, str]


class Record(BaseModel):
    """A counterpart record, as published on the topics."""

    model_config = ConfigDict(extra="allow")

    event_id: str
    status: str
    survey: str | None = None
    object_id: str | None = None
    alert_id: str
    rank: int | None = None


class ConeHit(BaseModel):
    """An active region holding the position."""

    event_id: str
    messenger: str
    mission: str
    trigger_time: str
    region_version: int
    region_kind: str
    area90_deg2: float
    credible_level: float
    prob_density_deg2: float
    separation_deg: float | None


class ObjectView(BaseModel):
    """``GET /api/v1/objects/{survey}/{object_id}``."""

    survey: str
    object_id: str
    events: list[dict[str, Any]]
    records: list[dict[str, Any]]
    light_curve: dict[str, Any]
    classification: str | None
    classification_rule: str | None
    catalogue_matches: dict[str, Any]
    latest_alert_id: str | None
    n_alerts_archived: int
    cutouts: dict[str, str]
    cutouts_note: str | None


class Health(BaseModel):
    """``GET /api/v1/health``."""

    model_config = ConfigDict(extra="allow")

    status: str
    postgres: dict[str, Any]
    kafka: dict[str, Any]
    comet: dict[str, Any]
    run: dict[str, Any]
