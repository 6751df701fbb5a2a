"""Schema files and the evolution rule: every consecutive pair of versions present in
publishers/schemas/ is checked, and mutated copies of v1 show what the checker refuses."""

from __future__ import annotations

import copy
import doctest
import io
import json
from itertools import pairwise
from typing import Any

import fastavro
import pytest
from pub_coincidence import coincidence_sample
from pub_records import record

import publishers.consume
import publishers.kafka
import publishers.records
import publishers.schema
import publishers.voevent
import publishers.voevent_build
import publishers.voevent_check
from publishers import schema as sch


def _fields(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in raw["fields"]}


@pytest.mark.parametrize("kind", sch.KINDS)
def test_schema_files_follow_the_conventions(kind: str) -> None:
    present = sch.versions(kind)
    assert present and present[0] == 1 and present == list(range(1, len(present) + 1))
    for version in present:
        s = sch.load(kind, version)
        assert s.raw["version"] == version and s.raw["namespace"] == "mm_broker"
        assert s.name == f"mm_broker.{kind}/{version}" and sch.by_name(s.name) is s
        assert s.raw["doc"]
        for f in s.fields:
            assert f.get("doc"), f"{s.filename}: field {f['name']} has no doc"
            if "default" in f:  # optional: nullable with a null default, or an empty array
                assert (isinstance(f["type"], list) and f["type"][0] == "null"
                        and f["default"] is None) or f["default"] == [], f["name"]
    assert sch.load(kind) is sch.load(kind, present[-1])


def test_counterpart_v1_carries_the_public_contract() -> None:
    contract = ("event_id messenger mission instrument notice_version region_version role "
                "status trigger_time survey object_id alert_id alert_time ra dec delta_t_s "
                "separation_deg credible_level prob_density_deg2 p_chance rank").split()
    s = sch.load("counterpart", 1)
    assert set(contract) <= set(s.required)
    fields = _fields(s.raw)
    assert fields["messenger"]["type"]["symbols"] == ["GW", "GRB", "NU", "X"]
    assert fields["status"]["type"]["symbols"] == ["candidate", "withdrawn"]
    for nullable in ("separation_deg", "separation_ratio", "credible_level",
                     "prob_density_deg2", "p_chance"):
        assert fields[nullable]["type"] == ["null", "double"] and "default" not in fields[nullable]


def test_counterpart_v2_adds_the_provenance_maps() -> None:
    v1, v2 = sch.load("counterpart", 1), sch.load("counterpart", 2)
    added = [f["name"] for f in v2.fields][len(v1.fields):]
    assert [f["name"] for f in v2.fields][:len(v1.fields)] == [f["name"] for f in v1.fields]
    assert added == ["catalogue_versions", "rule_versions"]
    for name in added:
        f = _fields(v2.raw)[name]
        assert f["type"] == ["null", {"type": "map", "values": "string"}]
        assert f["default"] is None
    assert v2.required == v1.required


def test_provenance_maps_round_trip_and_project_onto_v1() -> None:
    from publishers.records import InvalidRecord, validate

    v1, v2 = sch.load("counterpart", 1), sch.load("counterpart", 2)
    cats = {"gcvs": "sha256:d7ac03d87495 r=1.5arcsec",
            "4lac": "v28 sha256:01ea965408db+0ba0a50d21f5 r=1.5arcsec"}
    rules = {"quality": "1.0.0", "classification": "1.0.0", "coincidence": "1.0.0"}
    r = {**_sample("counterpart"), "mm_broker_version": "0.1.0", "config_hash": "abc",
         "catalogue_versions": cats, "rule_versions": rules}
    out = validate(r, v2)
    back = v2.decode(v2.encode(out))
    assert back["catalogue_versions"] == cats and back["rule_versions"] == rules
    # Written with v1 (a deployment not yet on v2): the maps are left out, the rest kept;
    # a v2 reader then sees their default.
    old = validate(r, v1)
    assert "catalogue_versions" not in old and "rule_versions" not in old
    assert old["config_hash"] == "abc" and old["mm_broker_version"] == "0.1.0"
    resolved = fastavro.schemaless_reader(io.BytesIO(v1.encode(old)), v1.parsed, v2.parsed)
    assert resolved["catalogue_versions"] is None and resolved["rule_versions"] is None
    # A field of no version is still refused, by v1 and v2.
    for s in (v1, v2):
        with pytest.raises(InvalidRecord, match="unknown field"):
            validate({**r, "catalogue_version": cats}, s)
    # And the maps are type-checked.
    with pytest.raises(InvalidRecord, match=r"rule_versions\['quality'\]"):
        validate({**r, "rule_versions": {"quality": 1}}, v2)


def test_unknown_names_are_refused() -> None:
    for name in ("mm_broker.counterpart/99", "mm_broker.nothing/1", "counterpart-v1", ""):
        with pytest.raises(sch.UnknownSchema):
            sch.by_name(name)


def _sample(kind: str) -> dict[str, Any]:
    if kind == "coincidence":
        return coincidence_sample()
    if kind == "counterpart":
        return record(significance={"far_hz": 1e-9, "n": 3, "significant": True,
                                    "classification": "BNS"},
                      catalogue_matches={"GLADE+": "GLADE 12345"}, mag=19.1, band="r")
    return {"event_id": "LVK:S1", "messenger": "GW", "mission": "LVK", "instrument": "gstlal",
            "role": "observation", "notice_version": 4, "region_version": 3,
            "trigger_time": "2024-01-15T20:08:27Z", "retracted_at": "2024-01-15T21:00:00Z",
            "withdrawn_alert_ids": ["1", "2"]}


@pytest.mark.parametrize("kind", sch.KINDS)
def test_every_consecutive_pair_of_versions_is_compatible(kind: str) -> None:
    """Covers v1 → v2 → … as soon as the files exist; v1 against itself today."""
    present = sch.versions(kind)
    pairs = list(pairwise(present)) or [(present[0], present[0])]
    for old_v, new_v in pairs:
        old, new = sch.load(kind, old_v), sch.load(kind, new_v)
        sch.check_backward_compatible(old.raw, new.raw)
        # And Avro agrees: data written with the old version reads with the new one.
        from publishers.records import validate

        written = validate(_sample(kind), old)
        back = fastavro.schemaless_reader(io.BytesIO(old.encode(written)), old.parsed,
                                          new.parsed)
        assert {k: back[k] for k in written} == written


# --------------------------------------------------------------------------- #
# Mutations of v1
# --------------------------------------------------------------------------- #


def _v1() -> dict[str, Any]:
    return copy.deepcopy(sch.load("counterpart", 1).raw)


def _bump(raw: dict[str, Any]) -> dict[str, Any]:
    raw["version"] = 2
    return raw


def _field(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in raw["fields"] if f["name"] == name)


def _remove(name: str):
    def m(raw: dict[str, Any]) -> None:
        raw["fields"] = [f for f in raw["fields"] if f["name"] != name]
    return m


def _rename(raw: dict[str, Any]) -> None:
    _field(raw, "p_chance")["name"] = "pchance"


def _retype_double_to_float(raw: dict[str, Any]) -> None:
    _field(raw, "ra")["type"] = "float"


def _retype_string_to_long(raw: dict[str, Any]) -> None:
    _field(raw, "alert_id")["type"] = "long"


def _nullable_to_required(raw: dict[str, Any]) -> None:
    _field(raw, "p_chance")["type"] = "double"


def _required_to_nullable(raw: dict[str, Any]) -> None:
    _field(raw, "dec")["type"] = ["null", "double"]


def _drop_enum_symbol(raw: dict[str, Any]) -> None:
    _field(raw, "messenger")["type"]["symbols"].remove("NU")


def _rename_enum(raw: dict[str, Any]) -> None:
    _field(raw, "status")["type"]["name"] = "State"


def _add_required(raw: dict[str, Any]) -> None:
    raw["fields"].append({"name": "host_galaxy", "type": "string", "doc": "x"})


def _add_bad_default(raw: dict[str, Any]) -> None:
    raw["fields"].append({"name": "host_galaxy", "type": ["null", "string"],
                          "default": "none", "doc": "x"})


def _drop_default(raw: dict[str, Any]) -> None:
    del _field(raw, "mag")["default"]


def _change_map_values(raw: dict[str, Any]) -> None:
    _field(raw, "catalogue_matches")["type"][1]["values"] = "long"


def _rename_record(raw: dict[str, Any]) -> None:
    raw["name"] = "Candidate"


BREAKING = {
    "remove a required field": (_remove("ra"), "ra: field removed"),
    "remove an optional field": (_remove("mag"), "mag: field removed"),
    "rename a field": (_rename, "p_chance: field removed"),
    "retype double to float": (_retype_double_to_float, "ra: type changed"),
    "retype string to long": (_retype_string_to_long, "alert_id: type changed"),
    "nullable becomes non-null": (_nullable_to_required, "p_chance: type changed"),
    "required becomes nullable": (_required_to_nullable, "dec: type changed"),
    "drop an enum symbol": (_drop_enum_symbol, "lost symbols ['NU']"),
    "rename an enum": (_rename_enum, "enum renamed"),
    "add a field without default": (_add_required, "host_galaxy: new field without a default"),
    "default of the wrong branch": (_add_bad_default, "host_galaxy: default 'none' does not fit"),
    "optional becomes required": (_drop_default, "mag: default removed"),
    "retype map values": (_change_map_values, "catalogue_matches[1]<>: type changed"),
    "rename the record": (_rename_record, "record renamed"),
}


@pytest.mark.parametrize("case", sorted(BREAKING))
def test_breaking_changes_are_refused(case: str) -> None:
    mutate, message = BREAKING[case]
    new = _bump(_v1())
    mutate(new)
    with pytest.raises(sch.IncompatibleSchema) as info:
        sch.check_backward_compatible(_v1(), new)
    assert any(message in p for p in info.value.problems), info.value.problems


def _add_optional(raw: dict[str, Any]) -> None:
    raw["fields"].append({"name": "host_galaxy", "type": ["null", "string"],
                          "default": None, "doc": "Most probable host galaxy."})


def _add_enum_symbol(raw: dict[str, Any]) -> None:
    _field(raw, "messenger")["type"]["symbols"].append("UHECR")


def _change_docs(raw: dict[str, Any]) -> None:
    raw["doc"] = "Reworded."
    _field(raw, "ra")["doc"] = "Right ascension (reworded)."


def _add_optional_array(raw: dict[str, Any]) -> None:
    raw["fields"].append({"name": "tags", "type": {"type": "array", "items": "string"},
                          "default": [], "doc": "Tags."})


ALLOWED = {"add an optional field": _add_optional, "add an enum symbol": _add_enum_symbol,
           "change documentation": _change_docs, "add an array with default": _add_optional_array}


@pytest.mark.parametrize("case", sorted(ALLOWED))
def test_allowed_changes_pass_and_old_data_still_reads(case: str) -> None:
    new = _bump(_v1())
    ALLOWED[case](new)
    sch.check_backward_compatible(_v1(), new)
    old = sch.load("counterpart", 1)
    from publishers.records import validate

    written = validate(_sample("counterpart"), old)
    back = fastavro.schemaless_reader(io.BytesIO(old.encode(written)), old.parsed,
                                      fastavro.parse_schema(new))
    assert {k: back[k] for k in written} == written
    if case == "add an optional field":
        assert back["host_galaxy"] is None


def test_version_must_be_bumped_and_not_go_back() -> None:
    same = _v1()
    _add_optional(same)  # a change without a version bump
    with pytest.raises(sch.IncompatibleSchema, match="version stayed 1"):
        sch.check_backward_compatible(_v1(), same)
    back = _v1()
    back["version"] = 0
    with pytest.raises(sch.IncompatibleSchema, match="must not go back"):
        sch.check_backward_compatible(_v1(), back)


def test_every_problem_is_listed_at_once() -> None:
    new = _bump(_v1())
    _remove("ra")(new)
    _retype_string_to_long(new)
    _add_required(new)
    problems = sch.compatibility_problems(_v1(), new)
    assert len(problems) == 3, problems


def test_schema_round_trip_keeps_values() -> None:
    from publishers.records import validate

    s = sch.load("counterpart")
    rec = validate(_sample("counterpart"), s)
    assert s.decode(s.encode(rec)) == rec
    assert json.loads(json.dumps(rec)) == rec  # JSON-ready too (counterparts.jsonl)


@pytest.mark.parametrize("module", [publishers.schema, publishers.records, publishers.kafka,
                                    publishers.voevent, publishers.voevent_build,
                                    publishers.voevent_check, publishers.consume])
def test_doctests(module: Any) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
