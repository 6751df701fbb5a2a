"""Engine scenarios: late notices, updates, retractions, duplicates, test events."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from coinc_regions import (
    T0,
    WINDOWS,
    alerts_frame,
    cap_area_deg2,
    circle_region,
    gaussian_map_region,
)

from coincidence.alerts import AlertBatch, InMemoryAlertStore
from coincidence.association import Association
from coincidence.engine import CoincidenceEngine, EventMeta
from coincidence.pchance import FixedRate, TransientRate
from coincidence.times import NS_PER_DAY, to_ns
from mm_broker.core.models import Messenger, Role

H = timedelta(hours=1)
D = timedelta(days=1)

META = EventMeta(
    event_id="Fermi-GBM:727029942",
    messenger=Messenger.GRB,
    mission="Fermi",
    instrument="GBM",
    trigger_time=T0,
    notice_version=1,
)
V1 = circle_region(150.0, 20.0, 2.0)  # centre 150, r90 2°
V2 = circle_region(151.5, 20.0, 1.5)  # moved east, smaller

ALERTS = [
    {"alert_id": "both", "ra": 150.8, "dec": 20.0, "dt": 3 * H},
    {"alert_id": "v1-only", "ra": 148.6, "dec": 20.0, "dt": 5 * H},
    {"alert_id": "v2-only", "ra": 152.6, "dec": 20.0, "dt": 1 * D},
    {"alert_id": "too-early", "ra": 150.8, "dec": 20.0, "dt": -H},
    {"alert_id": "old-object", "ra": 150.9, "dec": 20.0, "dt": 2 * H, "first_dt": -2 * D},
    {"alert_id": "far", "ra": 10.0, "dec": -10.0, "dt": 2 * H},
]


def ids(assocs: list[Association]) -> list[tuple[str, int, str]]:
    return [(a.alert_id, a.region_version, a.status.value) for a in assocs]


def engine() -> CoincidenceEngine:
    return CoincidenceEngine(rate=FixedRate(0.05), windows=WINDOWS)


def test_late_notice_finds_earlier_alerts() -> None:
    eng = engine()
    assert eng.process_alerts(alerts_frame(ALERTS)) == []  # no region yet
    out = eng.add_region(META, 1, V1)
    assert ids(out) == [("both", 1, "candidate"), ("v1-only", 1, "candidate")]
    best = out[0]
    assert best.rank == 1 and out[1].rank == 2
    assert best.separation_deg == pytest.approx(0.8 * math.cos(math.radians(20)), rel=1e-3)
    assert best.separation_ratio == pytest.approx(best.separation_deg / 2.0)
    assert best.prob_density_deg2 is None  # circle
    assert best.delta_t_s == 3 * 3600
    assert best.credible_level is not None and 0 < best.credible_level < 0.9
    assert best.p_chance is not None and best.rate_per_deg2_day == 0.05
    # the same alerts arriving later change nothing
    assert eng.process_alerts(alerts_frame(ALERTS)) == []


def test_alerts_after_the_notice_match_in_stream() -> None:
    eng = engine()
    assert eng.add_region(META, 1, V1) == []
    out = eng.process_alerts(alerts_frame(ALERTS))
    assert ids(out) == [("both", 1, "candidate"), ("v1-only", 1, "candidate")]
    assert eng.candidates(META.event_id) == out


def test_update_withdraws_what_left_and_adds_what_entered() -> None:
    eng = engine()
    eng.process_alerts(alerts_frame(ALERTS))
    eng.add_region(META, 1, V1)
    out = eng.add_region(replace(META, notice_version=2), 2, V2)
    assert ids(out) == [
        ("v1-only", 1, "withdrawn"),  # the old record, emitted again as withdrawn
        ("both", 2, "candidate"),
        ("v2-only", 2, "candidate"),
    ]
    assert out[0].notice_version == 1 and out[1].notice_version == 2
    assert eng.active_versions() == {META.event_id: 2}
    # later alerts match the new version only
    later = [
        {"alert_id": "late-v1", "ra": 148.6, "dec": 20.5, "dt": 2 * D},
        {"alert_id": "late-v2", "ra": 152.0, "dec": 20.2, "dt": 2 * D},
    ]
    assert ids(eng.process_alerts(alerts_frame(later))) == [("late-v2", 2, "candidate")]
    # an alert that left in v2 and comes back in v3 is a new association of v3
    out3 = eng.supersede(replace(META, notice_version=3), 3, V1)
    assert ("v1-only", 3, "candidate") in ids(out3)
    assert ("v2-only", 2, "withdrawn") in ids(out3)
    assert ("late-v2", 2, "withdrawn") not in ids(out3)  # still inside V1


def test_retraction_withdraws_everything_and_is_final() -> None:
    eng = engine()
    eng.process_alerts(alerts_frame(ALERTS))
    eng.add_region(META, 1, V1)
    eng.add_region(META, 2, V2)
    out = eng.retract(META.event_id)
    assert ids(out) == [("both", 2, "withdrawn"), ("v2-only", 2, "withdrawn")]
    assert eng.retract(META.event_id) == []
    assert eng.candidates(META.event_id) == []
    later = [{"alert_id": "after", "ra": 151.5, "dec": 20.0, "dt": 3 * D}]
    assert eng.process_alerts(alerts_frame(later)) == []
    assert eng.add_region(META, 3, V1) == []
    assert eng.active_versions() == {}


def test_retraction_before_any_notice_blocks_the_event() -> None:
    eng = engine()
    assert eng.retract(META.event_id) == []
    assert eng.add_region(META, 1, V1) == []
    with pytest.raises(KeyError):
        eng.supersede(replace(META, event_id="unknown"), 2, V2)


def test_duplicates_never_double() -> None:
    eng = engine()
    frame = alerts_frame(ALERTS + ALERTS[:2])  # duplicated rows in one batch
    assert len(eng.add_region(META, 1, V1)) == 0
    first = eng.process_alerts(frame)
    assert ids(first) == [("both", 1, "candidate"), ("v1-only", 1, "candidate")]
    assert eng.process_alerts(frame) == []  # same alerts again
    assert eng.add_region(META, 1, V1) == []  # same notice again
    out = eng.add_region(META, 2, V2)
    assert len(out) == 3
    assert eng.add_region(META, 2, V2) == []  # duplicate update
    assert eng.add_region(META, 1, V1) == []  # stale version after the update
    assert eng.supersede(META, 2, V1) == []
    keys = [(a.key, a.status) for a in first + out]
    assert len(keys) == len(set(keys))


def test_test_role_is_flagged() -> None:
    eng = engine()
    meta = replace(META, event_id="LVK:MS240115a", role=Role.TEST)
    eng.process_alerts(alerts_frame(ALERTS))
    out = eng.add_region(meta, 1, V1)
    assert out and all(a.role is Role.TEST and a.is_test for a in out)
    assert {a.to_record()["role"] for a in out} == {"test"}
    science = eng.add_region(META, 1, V1)
    assert science and not any(a.is_test for a in science)


def test_window_edges_through_the_engine() -> None:
    eng = engine()
    eng.add_region(META, 1, V1)
    rows = [
        {"alert_id": "open", "ra": 150.0, "dec": 20.0, "dt": -timedelta(seconds=600)},
        {
            "alert_id": "pre",
            "ra": 150.0,
            "dec": 20.0,
            "dt": -timedelta(seconds=600, microseconds=1),
        },
        {
            "alert_id": "close",
            "ra": 150.0,
            "dec": 20.0,
            "dt": 20 * D,
            "first_dt": -timedelta(seconds=600),
        },
        {"alert_id": "post", "ra": 150.0, "dec": 20.0, "dt": 20 * D + timedelta(microseconds=1)},
        {
            "alert_id": "not-new",
            "ra": 150.0,
            "dec": 20.0,
            "dt": D,
            "first_dt": -timedelta(seconds=600, microseconds=1),
        },
    ]
    assert sorted(a.alert_id for a in eng.process_alerts(alerts_frame(rows))) == ["close", "open"]


def test_p_chance_inputs_are_in_days_and_degrees() -> None:
    eng = engine()
    eng.add_region(META, 1, V1)
    # exactly 2 days after the window opens (t0 - 600 s), 1° from the centre (along dec)
    dt = 2 * D - timedelta(seconds=600)
    (a,) = eng.process_alerts(alerts_frame([{"alert_id": "x", "ra": 150.0, "dec": 21.0, "dt": dt}]))
    assert a.elapsed_days == 2.0
    assert a.window_days == pytest.approx(20 + 600 / 86_400)
    assert a.region_area_deg2 == V1.area_deg2
    assert a.separation_deg == pytest.approx(1.0)
    area = cap_area_deg2(1.0)
    assert a.searched_area_deg2 == pytest.approx(area, rel=1e-9)
    v, big_v = area * 2.0, V1.area_deg2 * a.window_days
    expected = 1 - math.exp(-0.05 * v * (1 + math.log(big_v / v)))
    assert a.p_chance == pytest.approx(expected, rel=1e-9)
    # by hand: A_R = 12.58 deg², V = 251.7, v = 6.283, Λ = 0.05·6.283·(1 + ln 40.06) = 1.474
    assert a.p_chance == pytest.approx(0.771, abs=1e-3)


def test_map_region_levels_and_density() -> None:
    eng = engine()
    region = gaussian_map_region([(150.0, 20.0, 2.0, 0.6), (156.0, 23.0, 1.5, 0.4)])
    meta = replace(
        META, event_id="LVK:S240115a", messenger=Messenger.GW, mission="LVK", instrument="H1L1V1"
    )
    eng.add_region(meta, 1, region)
    rows = [
        {"alert_id": "lobe1", "ra": 150.0, "dec": 20.0, "dt": H},
        {"alert_id": "lobe2", "ra": 156.0, "dec": 23.0, "dt": H},
        {"alert_id": "edge", "ra": 150.0, "dec": 23.5, "dt": H},
        {"alert_id": "outside", "ra": 150.0, "dec": 28.0, "dt": H},
    ]
    out = {a.alert_id: a for a in eng.process_alerts(alerts_frame(rows))}
    assert sorted(out) == ["edge", "lobe1", "lobe2"]
    lobe1, lobe2, edge = out["lobe1"], out["lobe2"], out["edge"]
    assert lobe1.separation_deg is None and lobe1.separation_ratio is None
    # density of the mixture at the first lobe's centre (second lobe 6.3° away)
    assert lobe1.prob_density_deg2 == pytest.approx(
        0.6 / (2 * math.pi * 4.0) + 0.4 * math.exp(-0.5 * (6.3 / 1.5) ** 2) / (2 * math.pi * 2.25),
        rel=0.05,
    )
    # the narrower second lobe is the densest: it comes first
    assert lobe2.prob_density_deg2 > lobe1.prob_density_deg2 > edge.prob_density_deg2
    assert lobe2.credible_level < lobe1.credible_level < edge.credible_level <= 0.9
    assert lobe2.searched_area_deg2 < lobe1.searched_area_deg2 < edge.searched_area_deg2
    assert edge.searched_area_deg2 <= region.area_deg2
    assert (lobe2.rank, lobe1.rank, edge.rank) == (1, 2, 3)


def test_overlapping_events_each_get_their_association() -> None:
    eng = engine()
    other = replace(META, event_id="Swift:123", mission="Swift", instrument="BAT")
    eng.add_region(META, 1, V1)
    eng.add_region(other, 7, V2)
    out = eng.process_alerts(alerts_frame(ALERTS))
    assert sorted((a.event_id, a.alert_id) for a in out) == [
        ("Fermi-GBM:727029942", "both"),
        ("Fermi-GBM:727029942", "v1-only"),
        ("Swift:123", "both"),
        ("Swift:123", "v2-only"),
    ]


def test_rate_from_the_stream_and_missing_rate() -> None:
    eng = CoincidenceEngine(windows=WINDOWS)  # TransientRate measured from the alerts
    eng.add_region(META, 1, V1)
    out = eng.process_alerts(alerts_frame(ALERTS))
    assert out and all(a.rate_per_deg2_day is not None and a.rate_per_deg2_day > 0 for a in out)
    assert all(a.p_chance is not None for a in out)
    eng = CoincidenceEngine(rate=TransientRate(min_new=1000), windows=WINDOWS)
    eng.add_region(META, 1, V1)
    out = eng.process_alerts(alerts_frame(ALERTS))
    assert out and all(a.p_chance is None and a.rate_per_deg2_day is None for a in out)
    assert all(a.searched_area_deg2 is not None for a in out)
    assert eng.now is not None


def test_in_memory_store_query_by_time_and_ranges() -> None:
    store = InMemoryAlertStore()
    frame = alerts_frame(ALERTS)
    added = store.add(AlertBatch.from_frame(frame))
    assert len(added) == len(ALERTS) == len(store)
    assert len(store.add(AlertBatch.from_frame(frame))) == 0
    t0 = to_ns(T0)
    got = store.query(t0, t0 + NS_PER_DAY, V1.ranges)
    assert got.alert_id.tolist() == ["both", "v1-only", "old-object"]  # insertion order
    got = store.query(t0 - NS_PER_DAY, t0, V1.ranges)
    assert got.alert_id.tolist() == ["too-early"]
    assert len(store.query(t0, t0 + NS_PER_DAY, np.zeros((0, 2), np.uint64))) == 0


def test_alert_frame_validation() -> None:
    frame = alerts_frame(ALERTS)
    with pytest.raises(ValueError, match="lack"):
        AlertBatch.from_frame(frame.drop(columns=["first_detection_time"]))
    bad = frame.copy()
    bad.loc[0, "dec"] = 95.0
    with pytest.raises(ValueError, match="invalid position"):
        AlertBatch.from_frame(bad)
    naive = frame.copy()
    naive["alert_time"] = naive["alert_time"].dt.tz_localize(None)
    with pytest.raises(ValueError, match="timezone-aware"):
        AlertBatch.from_frame(naive)


def test_invalid_input_leaves_the_engine_unchanged() -> None:
    eng = engine()
    bad = replace(V1, ranges=np.array([[10, 20], [15, 30]], dtype=np.uint64))
    with pytest.raises(ValueError, match="sorted"):
        eng.add_region(META, 1, bad)
    naive = replace(META, trigger_time=T0.replace(tzinfo=None))
    with pytest.raises(ValueError, match="naive"):
        eng.add_region(naive, 1, V1)
    assert eng.active_versions() == {}
    eng.process_alerts(alerts_frame(ALERTS))
    assert len(eng.add_region(META, 1, V1)) == 2  # version 1 still accepted


@pytest.mark.parametrize(
    ("r90", "sep", "flat_diff"),
    [(30.0, 10.0, (1e-4, 1e-3)), (0.5, 0.3, (0.0, 1e-5))],
    ids=["gbm-like-30deg", "icecube-like-0.5deg"],
)
def test_circle_level_is_the_fisher_model_of_skymaps(
    r90: float, sep: float, flat_diff: tuple[float, float]
) -> None:
    """A circle candidate's credible level and searched area, computed by hand.

    The engine uses the model of skymaps: a Fisher distribution with
    kappa = 1 / sigma² (radians), level(θ) = (1 − exp(−κ(1 − cos θ))) / (1 − exp(−2κ))
    and the searched area the cap of radius θ. It differs from the flat-sky Gaussian
    1 − exp(−θ²/2σ²) by 5e-4 at 10° in a 30° GBM circle and by < 1e-5 on a 0.5° track.
    The ZTF alert's own position error (0.2″ per axis) is folded in: σ becomes
    hypot(σ, 0.2″), a relative change of 4e-8 in the level of the 0.5° track.
    """
    region = circle_region(200.0, 10.0, r90, depth=8 if r90 > 5 else 13)
    sigma = region.sigma_deg
    assert sigma is not None
    eng = engine()
    meta = replace(META, event_id="wide")
    eng.add_region(meta, 1, region)
    (a,) = eng.process_alerts(
        alerts_frame([{"alert_id": "x", "ra": 200.0, "dec": 10.0 + sep, "dt": H}])
    )
    # θ from unit vectors (not the code's separation function)
    def unit(ra: float, dec: float) -> np.ndarray:
        r, d = math.radians(ra), math.radians(dec)
        return np.array([math.cos(d) * math.cos(r), math.cos(d) * math.sin(r), math.sin(d)])

    theta = math.acos(float(np.clip(unit(200.0, 10.0) @ unit(200.0, 10.0 + sep), -1, 1)))
    kappa = 1.0 / math.radians(math.hypot(sigma, 0.2 / 3600)) ** 2
    fisher = -math.expm1(-kappa * (1 - math.cos(theta))) / -math.expm1(-2 * kappa)
    assert a.separation_deg == pytest.approx(sep, rel=1e-9)
    assert a.credible_level == pytest.approx(fisher, rel=1e-9)
    assert a.searched_area_deg2 == pytest.approx(cap_area_deg2(sep), rel=1e-9)
    flat = -math.expm1(-(sep / sigma) ** 2 / 2)
    low, high = flat_diff
    assert low <= abs(a.credible_level - flat) < high
    assert a.prob_density_deg2 is None  # circles: separation instead


def test_a_region_without_tiles_or_model_gives_no_figures() -> None:
    """Inside a region that has ranges but no tiles and no circle model (a bare MOC),
    the alert is a candidate without credible level, density, area or p_chance:
    never the level 1.0 / density 0.0 that skymaps reports outside a model, whose
    searched area of 0 would make p_chance 0."""
    bare = replace(gaussian_map_region([(150.0, 20.0, 2.0, 1.0)]),
                   tile_ranges=np.zeros((0, 2), np.int64), tile_credible_level=np.zeros(0),
                   tile_density_deg2=np.zeros(0))
    eng = engine()
    eng.add_region(replace(META, event_id="bare"), 1, bare)
    (a,) = eng.process_alerts(alerts_frame([{"alert_id": "x", "ra": 150.0, "dec": 20.0, "dt": H}]))
    assert a.credible_level is None and a.prob_density_deg2 is None
    assert a.searched_area_deg2 is None and a.p_chance is None
    assert a.rank == 1
