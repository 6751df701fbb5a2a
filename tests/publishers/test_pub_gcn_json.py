"""Our counterparts in GCN's JSON form: every message validates against our schema
file, and the fields we reuse from GCN's core schema obey the core's rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import pytest
from pub_records import record

from publishers import gcn_json

ISSUED = datetime(2024, 1, 15, 12, tzinfo=UTC)


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    s = gcn_json.schema()
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(s)


@pytest.mark.parametrize("over", [
    {}, {"status": "withdrawn"}, {"region_version": 3, "mag": 19.2, "band": "r",
                                  "mag_err": 0.05}, {"role": "test"},
    {"classification": "SN candidate", "separation_deg": None},
])
def test_messages_validate_and_follow_the_core_schema(over: dict) -> None:
    rec = record(**over)
    role, key, value = gcn_json.encode(rec, ISSUED)
    msg = json.loads(value)
    gcn_json.validate(msg)
    assert key == f"{rec['event_id']}|{rec['region_version']}|{rec['alert_id']}"
    assert role == rec["role"]
    # GCN core: Alert, Event, Reporter, Localization field rules
    assert msg["$schema"] == gcn_json.SCHEMA_ID
    assert msg["alert_type"] in ("initial", "update", "retraction")
    assert msg["alert_tense"] == ("current" if rec["role"] == "observation" else "test")
    assert msg["alert_type"] == ("retraction" if rec["status"] == "withdrawn"
                                 else "initial" if rec["region_version"] == 1 else "update")
    assert all(isinstance(i, str) for i in msg["id"]) and msg["record_number"] >= 0
    assert 0 <= msg["ra"] < 360 and -90 <= msg["dec"] <= 90 and msg["ra_dec_error"] > 0
    assert 0 < msg["containment_probability"] <= 1
    for t in (msg["alert_datetime"], msg["trigger_time"]):
        assert t.endswith("Z") and datetime.fromisoformat(t.replace("Z", "+00:00"))
    assert msg["data"]["targets"][0]["gcn_crossmatch"] == [rec["event_id"]]


def test_an_invalid_message_is_refused() -> None:
    msg = gcn_json.message(record(), ISSUED)
    for bad in ({"ra": 400.0}, {"alert_type": "preliminary"}, {"extra_field": 1}):
        with pytest.raises(jsonschema.ValidationError):
            gcn_json.validate({**msg, **bad})
    with pytest.raises(jsonschema.ValidationError):
        gcn_json.encode(record(ra=-5.0), ISSUED)
