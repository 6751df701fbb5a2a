"""The REST API against the real PostgreSQL holding the demo night (``conftest.py``):
every endpoint, pagination, filters, bad input, downloads, the OpenAPI document."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io.votable import parse_single_table
from fastapi.testclient import TestClient
from mocpy import MOC
from openapi_spec_validator import validate
from sqlalchemy import select, text

from mm_broker.app.ingest import Limits, ingest
from mm_broker.app.serve.app import create_app
from mm_broker.core import config
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.db.schema import associations, events, notices, raw_journal, voevents
from tests.portal.conftest import RETRACTED_EVENT

pytestmark = pytest.mark.services


def _db(settings: config.Settings, query: Any, params: dict[str, Any] | None = None) -> list[Any]:
    engine = engine_for(settings)
    try:
        with engine.connect() as conn:
            return list(conn.execute(query, params or {}).all())
    finally:
        engine.dispose()


def _live(settings: config.Settings, event_id: str, version: int) -> list[dict[str, Any]]:
    """Live candidates of a region version, computed here from the outbox rows."""
    rows = _db(settings, select(associations.c.alert_id, associations.c.status,
                                associations.c.record)
               .where(associations.c.event_id == event_id,
                      associations.c.region_version == version))
    withdrawn = {r.alert_id for r in rows if r.status == "withdrawn"}
    return [dict(r.record) for r in rows if r.status == "candidate"
            and r.alert_id not in withdrawn]


def _all_events(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/api/v1/events", params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    return r.json()


def _busiest(client: TestClient) -> dict[str, Any]:
    return max(_all_events(client), key=lambda e: (e["n_candidates"], e["event_id"]))


def test_events_list_every_event_with_its_live_candidate_count(client: TestClient,
                                                               night: config.Settings) -> None:
    items = _all_events(client)
    stored = {r.event_id for r in _db(night, select(events.c.event_id))}
    assert {e["event_id"] for e in items} == stored and len(items) == len(stored) >= 25
    for e in items:
        if e["region_version"] is None:
            assert e["n_candidates"] == 0
        else:
            assert e["n_candidates"] == len(_live(night, e["event_id"], e["region_version"]))
    assert sum(e["n_candidates"] for e in items) > 100
    gw = next(e for e in items if e["messenger"] == "GW" and e["status"] == "active")
    assert gw["far_hz"] is not None and gw["latest_notice_type"] and gw["area90_deg2"] > 0


def test_events_pagination(client: TestClient) -> None:
    everything = [e["event_id"] for e in _all_events(client)]
    r = client.get("/api/v1/events", params={"limit": 7})
    assert r.status_code == 200 and len(r.json()) == 7
    assert r.headers["X-Total-Count"] == str(len(everything))
    assert 'rel="next"' in r.headers["Link"] and "offset=7" in r.headers["Link"]
    seen: list[str] = []
    url: str | None = "/api/v1/events?limit=7"
    while url:
        page = client.get(url)
        seen += [e["event_id"] for e in page.json()]
        link = page.headers.get("Link")
        url = link.split(">")[0].lstrip("<") if link else None
    assert seen == everything
    assert client.get("/api/v1/events", params={"offset": 10_000}).json() == []
    for bad in ({"limit": 0}, {"limit": 100_000}, {"offset": -1}, {"limit": "x"}):
        r = client.get("/api/v1/events", params=bad)
        assert r.status_code == 422 and r.json()["status"] == 422, bad


def test_events_filters_and_sorting(client: TestClient, night: config.Settings) -> None:
    gw = _all_events(client, messenger="GW")
    assert gw and all(e["messenger"] == "GW" for e in gw)
    n_gw = len(_db(night, select(events.c.event_id).where(events.c.messenger == "GW")))
    assert len(gw) == n_gw
    fermi = _all_events(client, mission="Fermi")
    assert fermi and all(e["mission"] == "Fermi" for e in fermi)
    retracted = _all_events(client, status="retracted")
    assert [e["event_id"] for e in retracted] == [RETRACTED_EVENT]
    day = _all_events(client, since="2024-01-15T00:00:00Z", until="2024-01-15T23:59:59Z")
    assert day and all(e["trigger_time"].startswith("2024-01-15") for e in day)
    significant = _all_events(client, max_far_hz=1e-7)
    assert significant and all(e["far_hz"] <= 1e-7 for e in significant)
    assert len(significant) < len(gw)
    loud = _all_events(client, min_sigma=5)
    assert loud and all(e["significance_sigma"] >= 5 for e in loud)
    asc = _all_events(client, sort="trigger_time", order="asc")
    times = [e["trigger_time"] for e in asc]
    assert times == sorted(times)
    by_area = [e["area90_deg2"] for e in _all_events(client, sort="area_deg2", order="desc")
               if e["area90_deg2"] is not None]
    assert by_area == sorted(by_area, reverse=True)
    for bad in ({"messenger": "XYZ"}, {"since": "yesterday"}, {"sort": "password"},
                {"status": "gone"}, {"max_far_hz": "nan"}, {"order": "sideways"}):
        r = client.get("/api/v1/events", params=bad)
        assert r.status_code == 422, bad
        assert set(r.json()) == {"status", "message"} and "Traceback" not in r.text


def test_event_detail_and_its_downloads(client: TestClient, night: config.Settings) -> None:
    ev = _busiest(client)
    r = client.get(f"/api/v1/events/{ev['event_id']}")
    assert r.status_code == 200
    body = r.json()
    stored = _db(night, select(notices.c.id, raw_journal.c.payload)
                 .join(raw_journal, raw_journal.c.id == notices.c.journal_id)
                 .where(notices.c.event_id == ev["event_id"]))
    assert {n["notice_id"] for n in body["notices"]} == {s.id for s in stored}
    assert [r["version"] for r in body["regions"]] == sorted(r["version"] for r in body["regions"])
    payloads = {s.id: bytes(s.payload) for s in stored}
    for notice in body["notices"]:
        raw = client.get(notice["raw_url"])
        assert raw.status_code == 200 and raw.content == payloads[notice["notice_id"]]
    assert client.get(f"/api/v1/events/{ev['event_id']}/notices/999999999/raw"
                      ).status_code == 404
    sent = _db(night, select(voevents.c.ivorn, voevents.c.xml)
               .where(voevents.c.event_id == ev["event_id"]))
    assert {v["ivorn"] for v in body["voevents"]} == {s.ivorn for s in sent}
    # the retraction VOEvent of the retracted event is one we surely issued
    retracted = client.get(f"/api/v1/events/{RETRACTED_EVENT}").json()["voevents"]
    sent = _db(night, select(voevents.c.ivorn, voevents.c.xml)
               .where(voevents.c.event_id == RETRACTED_EVENT))
    assert [v["kind"] for v in retracted] == ["retraction"] and len(sent) == 1
    assert retracted[0]["ivorn"] == sent[0].ivorn
    for s in sent:
        x = client.get("/api/v1/voevents", params={"ivorn": s.ivorn})
        assert x.status_code == 200 and x.content == bytes(s.xml)
        assert x.headers["content-type"].startswith("application/xml")
    assert client.get("/api/v1/voevents", params={"ivorn": "ivo://nobody#1"}).status_code == 404


def test_unknown_event_is_a_json_404_everywhere(client: TestClient) -> None:
    for path in ("/api/v1/events/LVK:S000000zz", "/api/v1/events/nope/candidates",
                 "/api/v1/events/nope/regions/1", "/api/v1/events/nope/regions/1/map"):
        r = client.get(path)
        assert r.status_code == 404 and r.headers["content-type"] == "application/json"
        assert r.json()["status"] == 404 and "nope" in r.json()["message"] or "S000000zz" in \
            r.json()["message"]
    assert client.get("/api/v1/no-such-endpoint").json() == {"status": 404,
                                                             "message": "Not Found"}


def test_candidates_are_the_store_records_rank_1_first(client: TestClient,
                                                       night: config.Settings) -> None:
    ev = _busiest(client)
    r = client.get(f"/api/v1/events/{ev['event_id']}/candidates", params={"limit": 1000})
    assert r.status_code == 200
    got = r.json()
    live = _live(night, ev["event_id"], ev["region_version"])
    assert sorted(x["alert_id"] for x in got) == sorted(x["alert_id"] for x in live)
    assert got[0]["rank"] == 1 and [x["rank"] for x in got] == sorted(x["rank"] for x in got)
    by_id = {x["alert_id"]: x for x in live}
    assert all(x == by_id[x["alert_id"]] for x in got)  # the published record, unchanged
    contract = ("event_id", "messenger", "mission", "instrument", "notice_version",
                "region_version", "role", "status", "trigger_time", "survey", "object_id",
                "alert_id", "alert_time", "ra", "dec", "delta_t_s", "separation_deg",
                "credible_level", "prob_density_deg2", "p_chance", "rank")
    assert all(k in got[0] for k in contract)
    page = client.get(f"/api/v1/events/{ev['event_id']}/candidates", params={"limit": 5,
                                                                             "offset": 5})
    assert page.json() == got[5:10] and page.headers["X-Total-Count"] == str(len(got))
    assert client.get(f"/api/v1/events/{ev['event_id']}/candidates",
                      params={"status": "bogus"}).status_code == 422


def test_candidates_as_csv_and_votable(client: TestClient, night: config.Settings) -> None:
    ev = _busiest(client)
    base = f"/api/v1/events/{ev['event_id']}/candidates"
    r = client.get(base, params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == ev["n_candidates"] and rows[0]["rank"] == "1"
    assert list(rows[0])[:3] == ["event_id", "messenger", "mission"]
    v = client.get(base, params={"format": "votable"})
    assert v.status_code == 200
    table = parse_single_table(io.BytesIO(v.content)).to_table()
    assert len(table) == ev["n_candidates"]
    assert sorted(map(str, table["alert_id"])) == sorted(x["alert_id"] for x in rows)
    assert str(table["ra"].unit) == "deg"


def test_a_retracted_event_has_only_withdrawn_records(client: TestClient,
                                                      night: config.Settings) -> None:
    r = client.get(f"/api/v1/events/{RETRACTED_EVENT}")
    body = r.json()
    assert body["status"] == "retracted" and body["region_version"] is None
    assert body["retraction"]["event_id"] == RETRACTED_EVENT
    assert any(n["retraction"] for n in body["notices"])
    assert [r["status"] for r in body["regions"]] == ["withdrawn"]
    assert client.get(f"/api/v1/events/{RETRACTED_EVENT}/candidates").json() == []


def test_regions_as_ivoa_moc(client: TestClient, night: config.Settings) -> None:
    ev = _busiest(client)
    version = ev["region_version"]
    ranges = _db(night, text("""SELECT lower(rr.rng), upper(rr.rng) FROM region_ranges rr
        JOIN regions r ON r.id = rr.region_id WHERE r.event_id = :e AND r.version = :v
        ORDER BY 1"""), {"e": ev["event_id"], "v": version})
    expected = MOC.from_depth29_ranges(29, np.array(ranges, dtype=np.uint64))
    r = client.get(f"/api/v1/events/{ev['event_id']}/regions/{version}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    got = MOC.from_json({k: v for k, v in r.json().items() if v})
    assert np.array_equal(got.to_depth29_ranges, expected.to_depth29_ranges)
    f = client.get(f"/api/v1/events/{ev['event_id']}/regions/{version}", params={"format": "fits"})
    assert f.status_code == 200 and f.content.startswith(b"SIMPLE  =")
    assert b"MOCVERS = '2.0'" in f.content
    assert abs(MOC.from_fits(io.BytesIO(f.content)).sky_fraction - expected.sky_fraction) < 1e-12
    assert client.get(f"/api/v1/events/{ev['event_id']}/regions/99").status_code == 404
    assert client.get(f"/api/v1/events/{ev['event_id']}/regions/x").status_code == 422
    assert client.get(f"/api/v1/events/{ev['event_id']}/regions/{version}",
                      params={"format": "png"}).status_code == 422
    geo = client.get(f"/api/v1/events/{ev['event_id']}/regions/{version}/map").json()
    assert geo["contours"][-1]["cells"] and all(len(c) >= 4 for c in geo["contours"][-1]["cells"])


def test_cone_search_finds_the_events_of_a_candidate(client: TestClient) -> None:
    ev = next(e for e in _all_events(client) if e["region_kind"] == "skymap"
              and e["n_candidates"])
    cand = client.get(f"/api/v1/events/{ev['event_id']}/candidates").json()[0]
    r = client.get("/api/v1/cone", params={"ra": cand["ra"], "dec": cand["dec"],
                                           "time": cand["alert_time"]})
    assert r.status_code == 200
    hit = next(h for h in r.json() if h["event_id"] == ev["event_id"])
    assert hit["region_version"] == ev["region_version"]
    assert hit["credible_level"] == pytest.approx(cand["credible_level"], abs=1e-9)
    assert hit["prob_density_deg2"] == pytest.approx(cand["prob_density_deg2"], rel=1e-9)
    levels = [h["credible_level"] for h in r.json()]
    assert levels == sorted(levels)
    # long after every window: nothing; no time: every active region holding it
    assert client.get("/api/v1/cone", params={"ra": cand["ra"], "dec": cand["dec"],
                                              "time": "2030-01-01T00:00:00Z"}).json() == []
    anytime = client.get("/api/v1/cone", params={"ra": cand["ra"], "dec": cand["dec"]}).json()
    assert ev["event_id"] in {h["event_id"] for h in anytime}
    assert client.get("/api/v1/cone", params={"ra": 360, "dec": 0}).status_code == 200


@pytest.mark.parametrize("params", [{"ra": 400, "dec": 0}, {"ra": -1, "dec": 0},
                                    {"ra": 10, "dec": 91}, {"ra": 10, "dec": -90.5},
                                    {"ra": "abc", "dec": 0}, {"ra": "nan", "dec": 0},
                                    {"ra": "inf", "dec": 0}, {"dec": 0}, {"ra": 1},
                                    {"ra": 1, "dec": 1, "time": "not-a-time"}])
def test_cone_rejects_a_malformed_coordinate(client: TestClient, params: dict[str, Any]
                                             ) -> None:
    r = client.get("/api/v1/cone", params=params)
    assert r.status_code == 422 and r.json()["status"] == 422
    assert "Traceback" not in r.text and r.json()["message"].startswith("invalid parameter")


def test_object_light_curve_records_and_events(client: TestClient, night: config.Settings
                                               ) -> None:
    ev = _busiest(client)
    cand = client.get(f"/api/v1/events/{ev['event_id']}/candidates").json()[0]
    r = client.get(f"/api/v1/objects/{cand['survey']}/{cand['object_id']}")
    assert r.status_code == 200, r.text
    obj = r.json()
    assert ev["event_id"] in {e["event_id"] for e in obj["events"]}
    assert cand["alert_id"] in {x["alert_id"] for x in obj["records"]}
    lc = obj["light_curve"]
    assert lc["source"] == "archive" and obj["n_alerts_archived"] >= 1
    jds = [p["jd"] for p in lc["points"]]
    assert jds == sorted(jds) and len(jds) >= 2
    assert set(lc["bands"]) <= {"g", "r", "i"}
    # the alert's own detection is a point of the curve
    assert any(not p["upper_limit"] and abs(p["mag"] - cand["mag"]) < 1e-4
               for p in lc["points"])
    assert obj["cutouts"] == {} and "cutouts" in obj["cutouts_note"]
    upper = [p for o in Counter(x["object_id"] for x in client.get(
        f"/api/v1/events/{ev['event_id']}/candidates", params={"limit": 1000}).json())
        for p in client.get(f"/api/v1/objects/ztf/{o}").json()["light_curve"]["points"]
        if p["upper_limit"]]
    assert upper, "the night's histories hold upper limits"
    assert client.get("/api/v1/objects/ztf/ZTF00nothing").status_code == 404
    assert client.get("/api/v1/objects/sdss/x").status_code == 404
    assert client.get(f"/api/v1/objects/ztf/{cand['object_id']}/cutouts/cutoutScience.png"
                      ).status_code == 404


def test_health_reports_the_real_services(client: TestClient) -> None:
    r = client.get("/api/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert {body[k]["status"] for k in ("postgres", "kafka", "comet")} == {"ok"}
    assert body["run"]["status"] == "not running"  # no checkpoint of mm-broker run here


def test_openapi_document_is_valid_and_lists_the_contract(client: TestClient) -> None:
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    validate(doc)
    for path in ("/api/v1/events", "/api/v1/events/{event_id}",
                 "/api/v1/events/{event_id}/candidates",
                 "/api/v1/events/{event_id}/regions/{version}",
                 "/api/v1/objects/{survey}/{object_id}", "/api/v1/cone", "/api/v1/health"):
        assert path in doc["paths"], path
    assert not any(p.startswith("/events") or p == "/" for p in doc["paths"])
    assert all(set(ops) <= {"get"} for ops in doc["paths"].values())  # read-only


def test_live_stream_says_hello_then_change(client: TestClient, night: config.Settings,
                                            data_dir: Path) -> None:
    """The server-sent events: a hello with the store's signature, then a change when
    a notice arrives."""
    fast = night.with_values({"serve.live_poll_s": 0.2, "serve.live_max_s": 5.0})
    app = create_app(fast)
    lines: list[str] = []
    with TestClient(app) as c, c.stream("GET", "/api/v1/stream") as s:
        assert s.headers["content-type"].startswith("text/event-stream")
        it = s.iter_lines()
        while "event: hello" not in lines:
            lines.append(next(it))
        engine = engine_for(night)
        try:
            ingest(engine, (data_dir / "notices/lvk/MS181101ab-5-Retraction.xml").read_bytes(),
                   "dir", "test", limits=Limits.from_settings(night))
        finally:
            engine.dispose()
        while not (lines and lines[-1].startswith("data: ") and "event: change" in lines):
            lines.append(next(it))
    data = [json.loads(x[len("data: "):]) for x in lines if x.startswith("data: ")]
    assert len(data) == 2 and data[0] != data[1]
    app.state.engine.dispose()
