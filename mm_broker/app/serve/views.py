"""What the API and the pages show, assembled once from the queries.

The JSON of ``/api/v1/events/{event_id}`` and the event page are built from the same
:func:`event_view`; the object API and page from :func:`object_view`. A lookup that
finds nothing raises :class:`fastapi.HTTPException` (404), which the application
turns into ``{"status", "message"}`` (API) or an error page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import HTTPException
from sqlalchemy import Connection

from mm_broker.app.serve import objects, queries
from mm_broker.core.config import Settings

#: Surveys an object may belong to.
SURVEYS = ("ztf", "lsst")

NO_CUTOUTS = ("the alert archive of this deployment holds no raw alert for this object "
              "(cutouts are kept in the raw archive of mm-broker run / alerts archive; "
              "the enriched archive and the replay's records do not carry them)")


def event_or_404(conn: Connection, event_id: str) -> dict[str, Any]:
    """The event summary, or a 404."""
    event = queries.get_event(conn, event_id)
    if event is None:
        raise HTTPException(404, f"unknown event {event_id!r}")
    return event


def api_links(event_id: str, version: int | None) -> dict[str, str]:
    """The API addresses of an event's parts."""
    base = f"/api/v1/events/{quote(event_id, safe=':')}"
    links = {"self": base, "candidates": f"{base}/candidates",
             "candidates_csv": f"{base}/candidates?format=csv&status=all",
             "candidates_votable": f"{base}/candidates?format=votable&status=all",
             "page": f"/events/{quote(event_id, safe=':')}"}
    if version is not None:
        links["moc_json"] = f"{base}/regions/{version}?format=json"
        links["moc_fits"] = f"{base}/regions/{version}?format=fits"
        links["map"] = f"{base}/regions/{version}/map"
    return links


def event_view(conn: Connection, event_id: str) -> dict[str, Any]:
    """An event with its notices, region versions, VOEvents and retraction."""
    event = event_or_404(conn, event_id)
    regions = queries.region_versions(conn, event_id)
    version = queries.default_version(event, regions)
    return {**event, "notices": queries.notice_history(conn, event_id), "regions": regions,
            "voevents": queries.voevents_of(conn, event_id),
            "retraction": queries.retraction_of(conn, event_id),
            "shown_region_version": version, "links": api_links(event_id, version)}


def check_survey(survey: str) -> None:
    """404 for a survey we do not know."""
    if survey not in SURVEYS:
        raise HTTPException(404, f"unknown survey {survey!r} (known: {', '.join(SURVEYS)})")


def object_view(settings: Settings, conn: Connection, survey: str, object_id: str,
                ) -> dict[str, Any]:
    """An object: its records and events, light curve, classification, cutouts."""
    check_survey(survey)
    records = queries.object_records(conn, survey, object_id)
    alerts = objects.archive_alerts(settings.archive_uri(), survey, object_id)
    if not records and not alerts:
        raise HTTPException(404, f"unknown object {survey}/{object_id}")
    events: dict[str, dict[str, Any]] = {}
    for rec in records:
        ev = events.setdefault(str(rec["event_id"]), {
            "event_id": rec["event_id"], "messenger": rec.get("messenger"),
            "mission": rec.get("mission"), "trigger_time": rec.get("trigger_time"),
            "best_rank": rec.get("rank"), "status": rec.get("status"),
            "region_versions": []})
        ev["region_versions"] = sorted({*ev["region_versions"], rec.get("region_version")},
                                       key=lambda v: (v is None, v))
        if rec.get("status") == "candidate":
            ev["status"] = "candidate"
        if rec.get("rank") is not None and (ev["best_rank"] is None
                                            or rec["rank"] < ev["best_rank"]):
            ev["best_rank"] = rec["rank"]
    stamps = objects.cutouts(settings.archive_uri(), alerts[-1]) if alerts else {}
    base = f"/api/v1/objects/{survey}/{quote(object_id, safe='')}"
    return {"survey": survey, "object_id": object_id, "events": list(events.values()),
            "records": records, "light_curve": objects.light_curve(alerts, records),
            **objects.summary(alerts, records),
            "cutouts": {name: f"{base}/cutouts/{name}.png" for name in stamps},
            "cutouts_note": None if stamps else NO_CUTOUTS}


def cutout_png(settings: Settings, survey: str, object_id: str, stamp: str) -> bytes:
    """One stamp of the object's latest archived alert as PNG, or a 404."""
    check_survey(survey)
    if stamp not in objects.STAMPS:
        raise HTTPException(404, f"unknown stamp {stamp!r}")
    alerts = objects.archive_alerts(settings.archive_uri(), survey, object_id)
    stamps = objects.cutouts(settings.archive_uri(), alerts[-1]) if alerts else {}
    if stamp not in stamps:
        raise HTTPException(404, f"no {stamp} archived for {survey}/{object_id}")
    return stamps[stamp]
