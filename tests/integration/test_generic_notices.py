"""Notices of missions GCN added since our parsers were written (issue 17), through the
real ingest path into PostgreSQL: an FRB in CHIME's shape and its retraction, and an
invented mission in the core schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from mm_broker.app.ingest import Limits, ingest_files
from mm_broker.core import config
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.db.schema import events

pytestmark = pytest.mark.services

GCN = "https://gcn.nasa.gov/schema/v6.1.0/gcn/notices/"


def test_frb_and_new_mission_notices_are_stored(fresh_db: config.Settings,
                                                tmp_path: Path) -> None:
    frb = {"$schema": GCN + "chime/frb.schema.json", "alert_type": "initial",
           "trigger_time": "2025-03-02T11:12:13.250Z", "id": "512345678", "ra": 150.25,
           "dec": 40.5, "ra_dec_error": [0.4, 0.3, 30], "dm": 412.7}
    retraction = {"$schema": GCN + "chime/frb.schema.json", "alert_type": "retraction",
                  "trigger_time": "2025-03-02T11:12:13.250Z", "id": "512345678",
                  "alert_datetime": "2025-03-02T12:00:00Z"}
    zorro = {"$schema": GCN + "zorro/alert.schema.json", "mission": "Zorro",
             "alert_type": "initial", "trigger_time": "2025-05-01T00:00:00Z", "id": ["Z1"],
             "ra": 232.0, "dec": -53.1, "ra_dec_error": 4.0,
             "containment_probability": 0.68, "systematic_included": True}
    for name, doc in (("frb.json", frb), ("frb-retraction.json", retraction),
                      ("zorro.json", zorro)):
        (tmp_path / name).write_text(json.dumps(doc))
    engine = engine_for(fresh_db)
    try:
        out = {p.name: r.contract(str(p)) for p, r in
               ingest_files(engine, [tmp_path], Limits.from_settings(fresh_db))}
        with engine.connect() as conn:
            status = dict(conn.execute(select(events.c.event_id, events.c.status)).all())
    finally:
        engine.dispose()
    first = out["frb.json"]
    assert (first["status"], first["messenger"], first["event_id"]) == \
        ("stored", "FRB", "CHIME:512345678")
    assert first["region"]["kind"] == "ellipse" and first["region"]["credible_level"] == 0.9
    assert 0.1 < first["region"]["area_deg2"] < 2.0
    assert out["frb-retraction.json"]["status"] == "retracted"
    new = out["zorro.json"]
    assert (new["status"], new["messenger"], new["mission"], new["role"]) == \
        ("stored", "GRB", "Zorro", "observation")
    # A 68 % radius of 4 deg: the 90 % circle holds more than pi * 4**2.
    assert new["region"]["kind"] == "circle" and new["region"]["area_deg2"] > 50.3
    assert status == {"CHIME:512345678": "retracted", "Zorro:Z1": "active"}
