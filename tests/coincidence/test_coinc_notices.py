"""Notice × notice coincidences: RAVEN's FAR forms, windows and their sign, the sky
overlap against a hand computation, and GW170817 × GRB 170817A from real notices."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

import skymaps
from coincidence.notices import (
    YEAR_S,
    NoticeIndex,
    NoticeSide,
    evaluate,
    pair_rules,
    stream_of,
    time_far_targeted,
    time_far_untargeted,
)
from coincidence.notices_record import coincidence_record
from coincidence.notices_sky import SKY_DEG2, overlap
from listeners.parsers import parse
from mm_broker.core.config import load
from mm_broker.core.models import Circle, Role
from publishers import schema as sch
from publishers.records import validate
from skymaps.circles import region_from_circle
from tests.data_paths import data_dir

DATA = data_dir() / "notices"
T0 = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)


def _side(eid: str, messenger: str, dt: float, circle: Circle, far: float | None = None,
          notice_type: str = "X", role: str = "observation", version: int = 1) -> NoticeSide:
    return NoticeSide(eid, messenger, "M", "I", notice_type, role, T0 + timedelta(seconds=dt),
                      version, version, region_from_circle(circle), far_hz=far)


@pytest.fixture(scope="module")
def cfg():  # type: ignore[no-untyped-def]
    return load(environ={}).coincidence_notices


def test_raven_forms() -> None:
    # untargeted: (th - tl) * R_ext * FAR_gw
    assert time_far_untargeted(1e-7, 6.0, 305 / YEAR_S) == pytest.approx(6 * 305 / YEAR_S * 1e-7)
    # targeted: z (1 - ln z/z_max), z = W far_ext far_gw; below z_max it exceeds z
    w, fg, fe = 12.0, 1e-8, 1e-5
    z, z_max = w * fg * fe, w * 2 / 86400 * 1e-4
    got = time_far_targeted(fg, fe, w, 2 / 86400, 1e-4)
    assert got == pytest.approx(z * (1 - math.log(z / z_max)))
    assert z < got < z_max


def test_streams() -> None:
    assert stream_of("GW", "LVK", "H1", "INITIAL", {"group": "CBC"}) == "GW"
    assert stream_of("GRB", "Swift", "BAT-GUANO", "SWIFT_BAT_GUANO_UPDATE", {}) == "SUBGRB_SWIFT"
    assert stream_of("NU", "Super-Kamiokande", "SK", "SUPERK_SN_ALERT_INITIAL", {}) == "SN_NU"
    assert stream_of("NU", "IceCube", "IC86", "ICECUBE_ASTROTRACK_GOLD", {}) == "NU"
    assert stream_of("FRB", "CHIME", "CHIME/FRB", "CHIME_FRB", {}) == "FRB"


def test_window_sign_follows_raven(cfg) -> None:  # type: ignore[no-untyped-def]
    """RAVEN's CBC x GRB window [-5, +1] is the GW time relative to the GRB: seen from
    the GW a GRB may come from 1 s before to 5 s after."""
    rules = pair_rules(cfg)
    rule = rules[("GW", "GRB")]
    assert (rule.window_lo_s, rule.window_hi_s) == (-1.0, 5.0)
    assert (rules[("GW", "SUBGRB_FERMI")].window_lo_s,
            rules[("GW", "SUBGRB_FERMI")].window_hi_s) == (-1.0, 11.0)
    assert (rules[("GW", "SUBGRB_SWIFT")].window_lo_s,
            rules[("GW", "SUBGRB_SWIFT")].window_hi_s) == (-10.0, 20.0)
    assert (rules[("GW_BURST", "GRB")].window_lo_s,
            rules[("GW_BURST", "GRB")].window_hi_s) == (-60.0, 600.0)
    assert rule.rate_other_hz == pytest.approx(305 / YEAR_S)
    gw = _side("LVK:S1", "GW", 0.0, Circle(10, 0, 5, 0.9), far=1e-9)
    for dt, found in ((1.7, True), (4.9, True), (-0.9, True), (-1.5, False), (5.5, False)):
        grb = _side("GBM:1", "GRB", dt, Circle(10, 0, 5, 0.9))
        assert (evaluate(gw, grb, rules) is not None) is found, dt
        assert (evaluate(grb, gw, rules) is not None) is found, dt  # either order


def test_two_circles_joint_far_by_hand(cfg) -> None:  # type: ignore[no-untyped-def]
    """Two small circles, uniform rates: the FARs computed by hand."""
    rules = pair_rules(cfg)
    gw = _side("LVK:S1", "GW", 0.0, Circle(100.0, 30.0, 2.146, 0.9), far=2e-8)  # sigma 1
    grb = _side("GBM:1", "GRB", 2.0, Circle(100.0, 32.0, 4.292, 0.9))  # sigma 2, 2 deg away
    c = evaluate(gw, grb, rules)
    assert c is not None and c.event is gw and c.time_difference_s == 2.0
    far_t = 6.0 * (305.0 / (365 * 86400)) * 2e-8
    s2 = 1.0**2 + 2.0**2  # flat-sky Gaussians: exp(-d²/2S) / (2 pi S) per deg²
    i_hand = SKY_DEG2 * math.exp(-(2.0**2) / (2 * s2)) / (2 * math.pi * s2)
    assert c.time_coincidence_far_hz == pytest.approx(far_t, rel=1e-12)
    assert c.sky.integral == pytest.approx(i_hand, rel=0.01)
    assert c.time_sky_position_coincidence_far_hz == pytest.approx(far_t / i_hand, rel=0.01)
    # the reference without a FAR of its own: its stream's rate stands in
    nofar = dataclasses.replace(gw, far_hz=None)
    c2 = evaluate(nofar, grb, rules)
    assert c2 is not None
    assert c2.time_coincidence_far_hz == pytest.approx(6.0 * (305 / YEAR_S) * (100 / YEAR_S))


def test_far_apart_circles_overlap_little() -> None:
    a = region_from_circle(Circle(0.0, 0.0, 1.0, 0.9))
    b = region_from_circle(Circle(0.0, 30.0, 1.0, 0.9))
    assert overlap(a, b).integral < 1e-6


def test_uniform_like_maps_give_about_one() -> None:
    """Two tiled regions: exact over shared tiles; a wide ellipse with itself is
    4 pi / (its effective area)."""
    from mm_broker.core.models import Ellipse

    e = skymaps.region_for(Ellipse(50.0, 10.0, 3.0, 2.0, 30.0, 0.9))
    o = overlap(e, e)
    assert o.method == "tiles" and o.integral > 1.0 and o.area90_deg2 is not None
    assert o.peak_ra == pytest.approx(50.0, abs=1.0)


def test_pairs_without_gw_are_ordered_by_time(cfg) -> None:  # type: ignore[no-untyped-def]
    rules = pair_rules(cfg)
    grb = _side("GBM:1", "GRB", 100.0, Circle(10, 0, 5, 0.9))
    nu = _side("IC:1", "NU", 0.0, Circle(11, 0, 1, 0.9), far=1e-8)
    c = evaluate(grb, nu, rules)
    assert c is not None and c.event is nu and c.external is grb
    assert c.time_difference_s == 100.0 and (c.window_lo_s, c.window_hi_s) == (-500.0, 500.0)


def test_index_updates_and_retractions(cfg) -> None:  # type: ignore[no-untyped-def]
    idx = NoticeIndex(cfg)
    gw = _side("LVK:S1", "GW", 0.0, Circle(10, 0, 5, 0.9), far=1e-9)
    assert idx.update(gw) == []
    found = idx.update(_side("GBM:1", "GRB", 1.7, Circle(12, 0, 5, 0.9)))
    assert [c.status for c in found] == ["candidate"]
    # a test notice is never paired with an observation
    assert idx.update(_side("GBM:2", "GRB", 1.0, Circle(12, 0, 5, 0.9), role="test")) == []
    # the GRB's update moves it 100 s later: the pair is withdrawn
    moved = idx.update(_side("GBM:1", "GRB", 100.0, Circle(12, 0, 5, 0.9), version=2))
    assert [(c.status, c.external.region_version) for c in moved] == [("withdrawn", 1)]
    back = idx.update(_side("GBM:1", "GRB", 2.0, Circle(12, 0, 5, 0.9), version=3))
    assert [(c.status, c.external.region_version) for c in back] == [("candidate", 3)]
    gone = idx.retract("LVK:S1")
    assert [c.status for c in gone] == ["withdrawn"] and idx.live == {}


def test_search_is_fast_with_a_thousand_events(cfg) -> None:  # type: ignore[no-untyped-def]
    import time

    idx = NoticeIndex(cfg)
    rng = np.random.default_rng(1)
    for i in range(1000):
        idx.update(_side(f"GBM:{i}", "GRB", float(i * 100), Circle(float(rng.uniform(0, 359)),
                                                                   0.0, 5.0, 0.9)))
    start = time.perf_counter()
    out = idx.update(_side("LVK:S1", "GW", 50_001.0, Circle(10, 0, 5, 0.9), far=1e-9))
    assert time.perf_counter() - start < 0.1
    assert [c.external.event_id for c in out] == ["GBM:500"]


def test_gw170817_with_grb170817a_from_real_notices(cfg) -> None:  # type: ignore[no-untyped-def]
    """A real LVK notice with its embedded map (the MDC superevent MS181101ab, whose
    external_coinc block names GBM trigger 524666471) moved to 1.74 s before the real
    GBM ground position of GRB 170817A: one GW x GRB coincidence with both FARs;
    moved 1,000 s earlier, none."""
    gw = parse((DATA / "lvk" / "MS181101ab-ext-update.json").read_bytes())
    grb = parse((DATA / "fermi_gbm" / "externaltrigger_original_data.xml").read_bytes())
    assert grb.event_id == "Fermi-GBM:524666471"
    gw = dataclasses.replace(gw, role=Role.OBSERVATION,
                             trigger_time=grb.trigger_time - timedelta(seconds=1.74))
    assert gw.localisation is not None and grb.localisation is not None
    g_region, b_region = skymaps.region_for(gw.localisation), skymaps.region_for(grb.localisation)
    idx = NoticeIndex(cfg)
    idx.update(NoticeSide.from_notice(grb, 1, b_region))
    found = idx.update(NoticeSide.from_notice(gw, 1, g_region))
    assert len(found) == 1
    c = found[0]
    assert c.rule.name == "GW-GRB" and c.time_difference_s == pytest.approx(1.74)
    far_gw = gw.significance["far_hz"]
    assert c.time_coincidence_far_hz == pytest.approx(6.0 * 305 / YEAR_S * far_gw)
    assert c.sky.integral > 1.0  # the GBM circle and the GW map agree
    assert c.time_sky_position_coincidence_far_hz < c.time_coincidence_far_hz
    rec = coincidence_record(c, {"mm_broker_version": "t", "config_hash": "h"})
    # LVK's own figures for this pair are carried for comparison (its block names the
    # same GBM trigger); both are the temporal FAR reduced by the sky, as ours
    assert rec["lvk_time_coincidence_far_hz"] == pytest.approx(2.14387838137e-14)
    assert rec["lvk_time_sky_position_coincidence_far_hz"] < rec["lvk_time_coincidence_far_hz"]
    validate(rec, sch.load("coincidence", 1))
    early = dataclasses.replace(gw, trigger_time=grb.trigger_time - timedelta(seconds=1000))
    idx2 = NoticeIndex(cfg)
    idx2.update(NoticeSide.from_notice(grb, 1, b_region))
    assert idx2.update(NoticeSide.from_notice(early, 1, g_region)) == []
