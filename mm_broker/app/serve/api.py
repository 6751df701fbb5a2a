"""The REST API under ``/api/v1/`` (described at ``/api/v1/openapi.json``).

Lists are JSON arrays; their pagination is in the headers: ``X-Total-Count`` (items
that pass the filters) and ``Link: <…>; rel="next"`` while there are more, with
``limit`` (at most ``serve.max_page_size``) and ``offset`` as query parameters.
Every error is ``{"status": <code>, "message": "..."}``: an unknown event or object
is a 404, a malformed parameter (a coordinate off the sphere, a bad time) a 422.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from time import monotonic
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import Connection, Engine

import skymaps
from mm_broker.app.serve import formats, health, queries, sky, views
from mm_broker.app.serve.schemas import (
    ConeHit,
    EventDetail,
    EventSummary,
    Health,
    ObjectView,
    Problem,
    Record,
)
from mm_broker.core.config import Settings
from mm_broker.core.repository import load_region

ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "Not found"},
                                           422: {"model": Problem,
                                                 "description": "Invalid parameter"}}

router = APIRouter(prefix="/api/v1", responses=ERRORS)

EventId = Annotated[str, Query(min_length=1, max_length=200)]


def get_settings(request: Request) -> Settings:
    """The application's settings."""
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    """The application's database engine."""
    engine: Engine = request.app.state.engine
    return engine


def get_conn(request: Request) -> Iterator[Connection]:
    """A connection for one request."""
    with get_engine(request).connect() as conn:
        yield conn


#: The sort keys of the events list (queries.EVENT_SORTS).
SortKey = Literal["trigger_time", "event_id", "messenger", "mission", "status", "updated_at",
                  "area_deg2", "far_hz"]

Conn = Annotated[Connection, Depends(get_conn)]
Config = Annotated[Settings, Depends(get_settings)]


def utc(t: datetime | None) -> datetime | None:
    """A time as aware UTC (a naive time is read as UTC)."""
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def page_params(request: Request, limit: int | None, offset: int) -> int:
    """The page size (the default, or ``limit``, at most ``serve.max_page_size``)."""
    s = get_settings(request).serve
    if limit is None:
        return s.page_size
    if limit > s.max_page_size:
        raise HTTPException(422, f"limit must be at most {s.max_page_size}")
    return limit


def paginate(request: Request, response: Response, total: int, limit: int,
             offset: int) -> None:
    """Set ``X-Total-Count`` and the ``Link`` header of the next page."""
    response.headers["X-Total-Count"] = str(total)
    if offset + limit < total:
        query = dict(request.query_params)
        query.update({"limit": str(limit), "offset": str(offset + limit)})
        response.headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'


@router.get("/health", response_model=Health, summary="Store, bus, VTP broker, run's lag")
def get_health(request: Request, settings: Config) -> dict[str, Any]:
    """PostgreSQL, Kafka and Comet reachability, and the lag of ``mm-broker run``."""
    return health.health(settings, get_engine(request))


@router.get("/events", response_model=list[EventSummary], summary="Events")
def list_events(
    request: Request, response: Response, conn: Conn,
    messenger: Annotated[Literal["GW", "GRB", "NU", "X", "FRB"] | None, Query()] = None,
    mission: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[Literal["active", "retracted"] | None, Query()] = None,
    role: Annotated[Literal["observation", "test"] | None, Query()] = None,
    since: Annotated[datetime | None, Query(description="trigger time from (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="trigger time until (ISO 8601)")
                     ] = None,
    max_far_hz: Annotated[float | None, Query(ge=0, allow_inf_nan=False)] = None,
    min_sigma: Annotated[float | None, Query(allow_inf_nan=False)] = None,
    sort: Annotated[SortKey, Query()] = "trigger_time",
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    limit: Annotated[int | None, Query(ge=1)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """Every event with its latest notice, 90 % area, significance and the number of
    live candidates of its active region version (``n_candidates``; ``n_new``,
    ``n_pre_existing`` by newness)."""
    size = page_params(request, limit, offset)
    flt = queries.EventFilter(messenger=messenger, mission=mission, status=status, role=role,
                              since=utc(since), until=utc(until), max_far_hz=max_far_hz,
                              min_sigma=min_sigma)
    items, total = queries.list_events(conn, flt, sort, order == "desc", size, offset)
    paginate(request, response, total, size, offset)
    return items


@router.get("/events/{event_id}", response_model=EventDetail, summary="One event")
def get_event(event_id: str, conn: Conn) -> dict[str, Any]:
    """The event, its notice versions (each with a download of its raw payload), its
    region versions and the VOEvents issued for it."""
    view = views.event_view(conn, event_id)
    for notice in view["notices"]:
        notice["raw_url"] = (f"{view['links']['self']}/notices/{notice['notice_id']}/raw")
    return view


@router.get("/events/{event_id}/candidates", response_model=list[Record],
            summary="Counterpart candidates of an event",
            responses={200: {"content": {"text/csv": {}, "application/x-votable+xml": {}}}})
def get_candidates(
    request: Request, response: Response, event_id: str, conn: Conn,
    region_version: Annotated[int | None, Query(ge=1)] = None,
    status: Annotated[Literal["candidate", "withdrawn", "all"], Query()] = "candidate",
    format: Annotated[Literal["json", "csv", "votable"], Query()] = "json",  # noqa: A002
    limit: Annotated[int | None, Query(ge=1)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    """The records of one region version (default: the active one, else the last),
    rank 1 first: ``status=candidate`` the live ones, ``withdrawn``, or ``all`` (each
    alert once, as it stands now). ``format=csv`` or ``votable`` downloads them (all,
    without pagination)."""
    event = views.event_or_404(conn, event_id)
    version = region_version or queries.default_version(
        event, queries.region_versions(conn, event_id))
    if version is None:
        items: list[dict[str, Any]] = []
        total = 0
    elif format != "json":
        items, total = queries.candidates(conn, event_id, version, status)
    else:
        size = page_params(request, limit, offset)
        items, total = queries.candidates(conn, event_id, version, status, size, offset)
        paginate(request, response, total, size, offset)
    stem = f"{event_id.replace(':', '_')}-r{version}-candidates"
    if format == "csv":
        return Response(formats.to_csv(items), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{stem}.csv"'})
    if format == "votable":
        return Response(formats.to_votable(items, event_id),
                        media_type="application/x-votable+xml",
                        headers={"Content-Disposition": f'attachment; filename="{stem}.xml"'})
    return items


def _region_or_404(conn: Connection, event_id: str, version: int) -> Any:
    views.event_or_404(conn, event_id)
    row = queries.region_row(conn, event_id, version)
    if row is None:
        raise HTTPException(404, f"event {event_id!r} has no region version {version}")
    return row


@router.get("/events/{event_id}/regions/{version}", summary="A region version as a MOC",
            responses={200: {"content": {"application/json": {}, "application/fits": {}}}})
def get_region(event_id: str, version: int, conn: Conn,
               format: Annotated[Literal["json", "fits"], Query()] = "json",  # noqa: A002
               ) -> Response:
    """The region version as an IVOA MOC 2.0: JSON (``{"order": [ipix, ...]}``) or
    FITS (``format=fits``)."""
    region = load_region(conn, _region_or_404(conn, event_id, version))
    stem = f"{event_id.replace(':', '_')}-r{version}-moc"
    if format == "fits":
        return Response(skymaps.region_to_moc_fits(region), media_type="application/fits",
                        headers={"Content-Disposition": f'attachment; filename="{stem}.fits"'})
    return Response(skymaps.region_to_moc_json(region), media_type="application/json",
                    headers={"Content-Disposition": f'inline; filename="{stem}.json"'})


@router.get("/events/{event_id}/regions/{version}/map", summary="What the map draws")
def get_region_map(event_id: str, version: int, conn: Conn) -> dict[str, Any]:
    """The region's MOC cells and 50 % cells (or circles) as polygons for drawing."""
    region = load_region(conn, _region_or_404(conn, event_id, version))
    return {"event_id": event_id, "region_version": version, **sky.map_geometry(region)}


@router.get("/events/{event_id}/notices/{notice_id}/raw", summary="A notice as received",
            responses={200: {"content": {"application/octet-stream": {}}}})
def get_raw_notice(event_id: str, notice_id: int, conn: Conn) -> Response:
    """The payload of one notice version, byte for byte from the raw journal."""
    payload = queries.notice_payload(conn, event_id, notice_id)
    if payload is None:
        raise HTTPException(404, f"event {event_id!r} has no notice {notice_id}")
    head = payload.lstrip()[:1]
    kind, ext = {b"<": ("application/xml", "xml"), b"{": ("application/json", "json")}.get(
        head, ("application/octet-stream", "bin"))
    return Response(payload, media_type=kind, headers={
        "Content-Disposition": f'attachment; filename="notice-{notice_id}.{ext}"'})


@router.get("/voevents", summary="A VOEvent we issued",
            responses={200: {"content": {"application/xml": {}}}})
def get_voevent(conn: Conn, ivorn: Annotated[str, Query(min_length=6, max_length=500)]
                ) -> Response:
    """The XML of a VOEvent broadcast by mm_broker, by its IVORN."""
    xml = queries.voevent_xml(conn, ivorn)
    if xml is None:
        raise HTTPException(404, f"no VOEvent {ivorn!r}")
    name = ivorn.rsplit("#", 1)[-1].replace("/", "_").replace(":", "_")
    return Response(xml, media_type="application/xml",
                    headers={"Content-Disposition": f'attachment; filename="{name}.xml"'})


@router.get("/objects/{survey}/{object_id}", response_model=ObjectView, summary="An object")
def get_object(survey: str, object_id: str, conn: Conn, settings: Config) -> dict[str, Any]:
    """Its light curve with upper limits, classification, catalogue matches, the
    events it is associated with and its records."""
    return views.object_view(settings, conn, survey, object_id)


@router.get("/objects/{survey}/{object_id}/cutouts/{stamp}.png",
            responses={200: {"content": {"image/png": {}}}}, summary="A stamp")
def get_cutout(survey: str, object_id: str, stamp: str, settings: Config) -> Response:
    """One of the three stamps of the object's latest archived alert."""
    return Response(views.cutout_png(settings, survey, object_id, stamp),
                    media_type="image/png")


@router.get("/cone", response_model=list[ConeHit], summary="Regions holding a position")
def get_cone(
    conn: Conn,
    ra: Annotated[float, Query(ge=0, le=360, allow_inf_nan=False, description="deg, ICRS")],
    dec: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False, description="deg")],
    time: Annotated[datetime | None, Query(description="ISO 8601; default: any time")
                    ] = None,
) -> list[dict[str, Any]]:
    """The active regions that contain (``ra``, ``dec``), of events whose window holds
    ``time``, with the credible level and probability density there; most probable
    first."""
    return sky.cone(conn, ra % 360.0, dec, utc(time))


@router.get("/stream", summary="Live updates (server-sent events)",
            responses={200: {"content": {"text/event-stream": {}}}})
async def stream(request: Request) -> StreamingResponse:
    """``event: change`` whenever a notice, a region version, a record or a retraction
    arrives (polled every ``serve.live_poll_s``); the stream closes after
    ``serve.live_max_s`` (browsers reconnect by themselves)."""
    settings = get_settings(request)
    engine = get_engine(request)

    def signature() -> list[Any]:
        with engine.connect() as conn:
            return queries.change_signature(conn)

    async def events() -> AsyncIterator[bytes]:
        last = await asyncio.to_thread(signature)
        yield f"event: hello\ndata: {json.dumps(last)}\nretry: 3000\n\n".encode()
        deadline = monotonic() + settings.serve.live_max_s
        while monotonic() < deadline:
            await asyncio.sleep(settings.serve.live_poll_s)
            if await request.is_disconnected():
                return
            now = await asyncio.to_thread(signature)
            if now != last:
                last = now
                yield f"event: change\ndata: {json.dumps(now)}\n\n".encode()
            else:
                yield b": keep-alive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})
