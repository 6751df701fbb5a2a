"""Ranking rules and the counterpart record."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from coinc_regions import T0

from coincidence.association import Association, Status
from coincidence.rank import rank_candidates
from mm_broker.core.models import Messenger, Role


def assoc(alert_id: str, **kw: object) -> Association:
    base = Association(
        event_id="Fermi-GBM:727029942",
        messenger=Messenger.GRB,
        mission="Fermi",
        instrument="GBM",
        notice_version=3,
        region_version=2,
        role=Role.OBSERVATION,
        status=Status.CANDIDATE,
        trigger_time=T0,
        survey="ZTF",
        object_id="ZTF24aaaaaaa",
        alert_id=alert_id,
        alert_time=T0 + timedelta(hours=5),
        ra=150.0,
        dec=20.0,
        delta_t_s=18_000.0,
        separation_deg=1.0,
        separation_ratio=0.25,
        credible_level=0.5,
        prob_density_deg2=None,
        p_chance=0.1,
        rank=0,
        rate_per_deg2_day=0.05,
        searched_area_deg2=3.0,
        elapsed_days=0.2,
        region_area_deg2=50.0,
        window_days=20.0069,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_rank_order_follows_the_documented_rules() -> None:
    later = T0 + timedelta(hours=9)
    items = [
        assoc("no-p", p_chance=None, credible_level=0.01),
        assoc("p-0.2", p_chance=0.2),
        assoc("p-0.1-bad-quality", p_chance=0.1, quality=False),
        assoc("p-0.1-level-0.5-later", p_chance=0.1, alert_time=later),
        assoc("p-0.1-level-0.5-b", p_chance=0.1),
        assoc("p-0.1-level-0.5-a", p_chance=0.1),
        assoc("p-0.1-level-0.3", p_chance=0.1, credible_level=0.3),
        assoc("p-0.1-no-level", p_chance=0.1, credible_level=None),
        assoc("p-0.01", p_chance=0.01, quality=False, credible_level=0.89),
    ]
    ranked = rank_candidates(reversed(items))
    assert [a.alert_id for a in ranked] == [
        "p-0.01",  # lowest p_chance wins over everything else
        "p-0.1-level-0.3",  # same p: quality ok, then deeper credible level
        "p-0.1-level-0.5-a",  # then earlier alert, then alert_id
        "p-0.1-level-0.5-b",
        "p-0.1-level-0.5-later",
        "p-0.1-no-level",
        "p-0.1-bad-quality",
        "p-0.2",
        "no-p",  # without p_chance: last
    ]
    assert [a.rank for a in ranked] == list(range(1, len(items) + 1))
    # deterministic whatever the input order
    assert rank_candidates(items) == ranked


def test_rank_refuses_withdrawn_and_mixed_versions() -> None:
    with pytest.raises(ValueError, match="withdrawn"):
        rank_candidates([assoc("a", status=Status.WITHDRAWN)])
    with pytest.raises(ValueError, match="several"):
        rank_candidates([assoc("a"), assoc("b", region_version=3)])
    assert rank_candidates([]) == []


def test_record_has_the_contract_fields_and_iso_times() -> None:
    record = assoc("123", rank=1, role=Role.TEST).to_record()
    contract = [
        "event_id",
        "messenger",
        "mission",
        "instrument",
        "notice_version",
        "region_version",
        "role",
        "status",
        "trigger_time",
        "survey",
        "object_id",
        "alert_id",
        "alert_time",
        "ra",
        "dec",
        "delta_t_s",
        "separation_deg",
        "credible_level",
        "prob_density_deg2",
        "p_chance",
        "rank",
    ]
    assert list(record)[: len(contract)] == contract
    assert record["trigger_time"] == "2024-01-15T08:00:00.000000Z"
    assert record["alert_time"] == "2024-01-15T13:00:00.000000Z"
    assert record["messenger"] == "GRB" and record["status"] == "candidate"
    assert record["role"] == "test"
    assert record["prob_density_deg2"] is None
    for key in ("rate_per_deg2_day", "searched_area_deg2", "elapsed_days", "separation_ratio"):
        assert key in record
    json.dumps(record)  # JSON-ready


def test_association_identity_and_test_flag() -> None:
    a = assoc("42")
    assert a.key == ("Fermi-GBM:727029942", 2, "42")
    assert not a.is_test
    assert replace(a, role=Role.TEST).is_test
