"""The portal's pages: events (``/``), an event, an object; server-rendered with Jinja2.

The pages are plain HTML tables and forms that read without JavaScript; the small
scripts of ``static/`` (no framework, no CDN) add what needs it: sorting, the sky
map with pan and zoom (``skymap.js``), the light curve (``lightcurve.js``) and live
updates of the events list through the server-sent events of ``/api/v1/stream``
(``portal.js``). The map's geometry is embedded in the event page (drawn as the page
loads, no second request). Data for the scripts is embedded as ``<script type="application/json">``
blocks (not executed, so the Content-Security-Policy stays ``script-src 'self'``).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from mm_broker import __version__
from mm_broker.app.serve import queries, sky, views
from mm_broker.app.serve.api import Config, Conn, SortKey, utc
from mm_broker.core.repository import load_region

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")


def _num(value: Any, digits: int = 3) -> str:
    """A number for a table cell (— when missing)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if value != 0 and (abs(value) < 10 ** -(digits - 1) or abs(value) >= 1e6):
        return f"{value:.{max(digits - 1, 1)}e}"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _hours(seconds: Any) -> str:
    if seconds is None:
        return "—"
    return f"{float(seconds) / 3600:+.2f} h"


def _when(iso: Any) -> str:
    if not iso:
        return "—"
    return str(iso).replace("T", " ").replace("Z", "")[:19]


def _tojson(value: Any) -> str:
    # "</" cannot close the data block: JSON text with "<" escaped.
    return json.dumps(value, default=str).replace("<", "\\u003c")


templates.env.filters.update(num=_num, hours=_hours, when=_when, tojson_safe=_tojson,
                             q=lambda s: quote(str(s), safe=":"))
templates.env.globals.update(app_version=__version__)


def error_page(request: Request, status: int, message: str) -> Response:
    """A short error page (no traceback)."""
    return templates.TemplateResponse(request, "error.html",
                                      {"status": status, "message": message},
                                      status_code=status)


@router.get("/", response_class=HTMLResponse)
def events_page(
    request: Request, conn: Conn, settings: Config,
    messenger: Annotated[Literal["GW", "GRB", "NU", "X", "FRB", ""] | None, Query()] = None,
    mission: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[Literal["active", "retracted", ""] | None, Query()] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
    max_far_hz: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    min_sigma: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    sort: Annotated[SortKey, Query()] = "trigger_time",
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    offset: Annotated[int, Query(ge=0)] = 0,
    fragment: Annotated[bool, Query()] = False,
) -> Response:
    """Every event, filtered and sorted; ``fragment=true`` gives the table alone (the
    live update)."""
    size = settings.serve.page_size
    flt = queries.EventFilter(messenger=messenger or None, mission=mission or None,
                              status=status or None, since=utc(since), until=utc(until),
                              max_far_hz=max_far_hz, min_sigma=min_sigma)
    items, total = queries.list_events(conn, flt, sort, order == "desc", size, offset)
    params = {k: v for k, v in request.query_params.items()
              if k not in ("offset", "fragment", "sort", "order") and v}
    missions = sorted({str(m) for m in conn.exec_driver_sql(
        "SELECT DISTINCT mission FROM events").scalars()})

    def link(**changes: Any) -> str:
        merged = {**params, "sort": sort, "order": order, "offset": offset, **changes}
        return "/?" + urlencode({k: v for k, v in merged.items() if v not in (None, "")})

    context = {"events": items, "total": total, "offset": offset, "size": size,
               "sort": sort, "order": order, "link": link, "missions": missions,
               "filters": {"messenger": messenger or "", "mission": mission or "",
                           "status": status or "", "since": request.query_params.get(
                               "since", ""), "until": request.query_params.get("until", ""),
                           "max_far_hz": request.query_params.get("max_far_hz", ""),
                           "min_sigma": request.query_params.get("min_sigma", "")}}
    name = "events_table.html" if fragment else "events.html"
    return templates.TemplateResponse(request, name, context)


@router.get("/events/{event_id}", response_class=HTMLResponse)
def event_page(request: Request, event_id: str, conn: Conn,
               region_version: Annotated[int | None, Query(ge=1)] = None) -> Response:
    """One event: notices, map, candidates, VOEvents, downloads."""
    view = views.event_view(conn, event_id)
    version = region_version or view["shown_region_version"]
    known = {r["version"] for r in view["regions"]}
    if region_version is not None and region_version not in known:
        return error_page(request, 404, f"event {event_id!r} has no region version "
                                        f"{region_version}")
    cands = queries.candidates(conn, event_id, version, "all")[0] if version else []
    links = views.api_links(event_id, version)
    row = queries.region_row(conn, event_id, version) if version else None
    geometry = None if row is None else {"event_id": event_id, "region_version": version,
                                         **sky.map_geometry(load_region(conn, row))}
    return templates.TemplateResponse(request, "event.html", {
        "ev": view, "version": version, "candidates": cands, "links": links,
        "geometry": geometry,
        "n_live": sum(c.get("status") == "candidate" for c in cands),
        "markers": [{"id": str(c.get("alert_id")), "ra": c.get("ra"), "dec": c.get("dec"),
                     "rank": c.get("rank"), "object_id": c.get("object_id"),
                     "status": c.get("status")} for c in cands]})


@router.get("/objects/{survey}/{object_id}", response_class=HTMLResponse)
def object_page(request: Request, survey: str, object_id: str, conn: Conn,
                settings: Config) -> Response:
    """One object: light curve, stamps, classification, matches, its events."""
    view = views.object_view(settings, conn, survey, object_id)
    triggers = sorted({(e["event_id"], e["trigger_time"]) for e in view["events"]
                       if e.get("trigger_time")}, key=lambda x: str(x[1]))
    plot = {"points": view["light_curve"]["points"],
            "triggers": [{"event_id": e, "time": t} for e, t in triggers]}
    return templates.TemplateResponse(request, "object.html", {"obj": view, "plot": plot})
