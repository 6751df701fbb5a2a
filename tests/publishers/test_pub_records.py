"""Validation before producing: what is refused, with the field named, and what passes
unchanged through Avro."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pub_records import record

from publishers import records as rec
from publishers import schema as sch

COUNTERPART = sch.load("counterpart")
RETRACTION = sch.load("retraction")
DOUBLES = [f["name"] for f in COUNTERPART.fields
           if "double" in (f["type"] if isinstance(f["type"], list) else [f["type"]])]


def test_valid_record_round_trips_with_equal_values() -> None:
    r = record(mag=19.25, mag_err=0.05, band="g", quality=True,
               significance={"far_hz": 3.2e-10, "n_instruments": 2, "significant": True})
    out = rec.validate(r, COUNTERPART)
    assert [f["name"] for f in COUNTERPART.fields] == list(out)
    assert out["classification"] is None  # optional field filled with its default
    decoded = COUNTERPART.decode(COUNTERPART.encode(out))
    assert decoded == out
    assert decoded["ra"] == 263.5 and decoded["p_chance"] == 0.0012
    assert decoded["significance"] == {"far_hz": 3.2e-10, "n_instruments": 2,
                                       "significant": True}


@pytest.mark.parametrize("field", COUNTERPART.required)
def test_missing_required_field_is_named(field: str) -> None:
    r = record()
    del r[field]
    with pytest.raises(rec.InvalidRecord, match=f"^{field}: missing required field") as info:
        rec.validate(r, COUNTERPART)
    assert info.value.field == field


@pytest.mark.parametrize("field", DOUBLES)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused(field: str, bad: float) -> None:
    with pytest.raises(rec.InvalidRecord, match="not a finite number") as info:
        rec.validate(record(**{field: bad}), COUNTERPART)
    assert info.value.field == field


def test_non_finite_inside_a_map_is_refused() -> None:
    with pytest.raises(rec.InvalidRecord, match=r"significance\['far'\]: nan"):
        rec.validate(record(significance={"far": math.nan}), COUNTERPART)


@pytest.mark.parametrize("field, value", [
    ("ra", 360.0), ("ra", -0.1), ("dec", 90.5), ("dec", -91.0), ("p_chance", 1.5),
    ("p_chance", -1e-9), ("credible_level", 1.01), ("separation_deg", 181.0),
    ("separation_ratio", -0.1), ("prob_density_deg2", -1.0), ("rank", 0),
    ("searched_area_deg2", 41300.0), ("rate_per_deg2_day", -0.5), ("elapsed_days", -1.0),
    ("mag_err", -0.1), ("region_version", -1),
])
def test_out_of_range_values_are_refused(field: str, value: Any) -> None:
    with pytest.raises(rec.InvalidRecord, match="outside") as info:
        rec.validate(record(**{field: value}), COUNTERPART)
    assert info.value.field == field


@pytest.mark.parametrize("field, value, message", [
    ("messenger", "OPTICAL", "not one of"),
    ("role", "observatoin", "not one of"),
    ("status", "maybe", "not one of"),
    ("rank", True, "is not a long"),
    ("rank", 1.0, "is not a long"),
    ("ra", "263.5", "is not a double"),
    ("event_id", None, "not nullable"),
    ("trigger_time", "2018-06-26T03:10:00", "not UTC"),
    ("alert_time", "2018-06-26T06:21:36+02:00", "not UTC"),
    ("alert_time", "yesterday", "not an ISO 8601 time"),
    ("event_id", "a|b", "key separator"),
    ("alert_id", " ", "is empty"),
    ("quality", "yes", "is not a boolean"),
    ("significance", ["far"], "is not a map"),
])
def test_wrong_types_and_values_are_refused(field: str, value: Any, message: str) -> None:
    with pytest.raises(rec.InvalidRecord, match=message) as info:
        rec.validate(record(**{field: value}), COUNTERPART)
    assert info.value.field == field


def test_unknown_field_is_refused() -> None:
    with pytest.raises(rec.InvalidRecord,
                       match=f"unknown field, not in {re.escape(COUNTERPART.name)}"):
        rec.validate(record(radius=3.0), COUNTERPART)
    with pytest.raises(rec.InvalidRecord, match="not a mapping"):
        rec.validate(["ra", 1.0], COUNTERPART)  # type: ignore[arg-type]


def test_nulls_where_the_contract_allows_them() -> None:
    out = rec.validate(record(separation_deg=None, separation_ratio=None, p_chance=None,
                              rate_per_deg2_day=None, searched_area_deg2=None,
                              credible_level=None, prob_density_deg2=0.002), COUNTERPART)
    assert out["p_chance"] is None and out["prob_density_deg2"] == 0.002


def test_numpy_scalars_become_python_numbers() -> None:
    out = rec.validate(record(ra=np.float64(12.5), rank=np.int64(3),
                              notice_version=np.int32(2)), COUNTERPART)
    assert type(out["ra"]) is float and type(out["rank"]) is int
    assert type(out["notice_version"]) is int
    with pytest.raises(rec.InvalidRecord, match="finite"):
        rec.validate(record(dec=np.float32("nan")), COUNTERPART)


def test_keys() -> None:
    r = record(event_id="LVK:S240115ak", region_version=3, alert_id="2600")
    assert rec.counterpart_key(r) == "LVK:S240115ak|3|2600"
    assert rec.key_or_none(r, "counterpart") == "LVK:S240115ak|3|2600"
    del r["alert_id"]
    assert rec.key_or_none(r, "counterpart") is None
    assert rec.retraction_key({"event_id": "E", "notice_version": 5}) == "E|5|retraction"


def test_retraction_defaults_and_checks() -> None:
    r = {"event_id": "LVK:S1", "messenger": "GW", "mission": "LVK", "instrument": "x",
         "role": "observation", "notice_version": 2, "region_version": None,
         "trigger_time": None, "retracted_at": "2024-01-15T21:00:00Z"}
    out = rec.validate(r, RETRACTION)
    assert out["withdrawn_alert_ids"] == [] and out["reason"] is None
    with pytest.raises(rec.InvalidRecord, match=r"withdrawn_alert_ids\[1\]"):
        rec.validate({**r, "withdrawn_alert_ids": ["1", 2]}, RETRACTION)


@settings(max_examples=200, deadline=None)
@given(ra=st.floats(0, 360, exclude_max=True), dec=st.floats(-90, 90),
       p=st.one_of(st.none(), st.floats(0, 1)), cl=st.one_of(st.none(), st.floats(0, 1)),
       dt=st.floats(-600, 20 * 86400), rank=st.integers(1, 10**6))
def test_any_in_range_record_passes_and_round_trips(ra: float, dec: float, p: float | None,
                                                     cl: float | None, dt: float,
                                                     rank: int) -> None:
    out = rec.validate(record(ra=ra, dec=dec, p_chance=p, credible_level=cl, delta_t_s=dt,
                              rank=rank), COUNTERPART)
    assert COUNTERPART.decode(COUNTERPART.encode(out)) == out


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(DOUBLES),
       bad=st.sampled_from([math.nan, math.inf, -math.inf, float("-nan")]))
def test_any_non_finite_double_is_refused(field: str, bad: float) -> None:
    with pytest.raises(rec.InvalidRecord) as info:
        rec.validate(record(**{field: bad}), COUNTERPART)
    assert info.value.field == field


def test_integers_beyond_avro_long_are_refused() -> None:
    with pytest.raises(rec.InvalidRecord, match="does not fit an Avro long") as info:
        rec.validate(record(notice_version=2**63), COUNTERPART)
    assert info.value.field == "notice_version"
