"""The chance probability: worked values, units, the rate estimator, calibration.

Calibration (the issue's requirement): under the null — unrelated new transients,
Poisson in area and time at rate ρ — the p_chance of the **best** candidate of each
event version (smallest p_chance, i.e. rank 1) is uniform on [0, 1 − exp(−ρ·A_R·T)]
and there is no candidate at all with probability exp(−ρ·A_R·T)
(:mod:`coincidence.pchance`). The tests below simulate that null many times, take
the best candidate of each realisation, and test uniformity with a Kolmogorov–Smirnov
test: directly against U(0, 1) when ρ·A_R·T is large (an empty realisation has
probability < 1e-12), and conditionally on at least one candidate when it is small.
Twins with time in years, and with the naive rectangle probability
1 − exp(−ρ·A_s·Δt), must fail the same test.
"""

from __future__ import annotations

import math
from datetime import timedelta

import healpy as hp
import numpy as np
import pytest
from coinc_regions import (
    CONTRACT_WINDOW,
    T0,
    WINDOWS,
    alerts_frame,
    circle_region,
    gaussian_map_region,
    random_in_cap,
)
from scipy import stats

from coincidence.engine import CoincidenceEngine, EventMeta
from coincidence.index import ActiveRegions, RegionEntry, ipix29
from coincidence.pchance import (
    FixedRate,
    TransientRate,
    elapsed_days,
    expected_background,
    p_chance,
)
from coincidence.rules import Window, time_mask
from coincidence.times import NS_PER_DAY, to_ns
from mm_broker.core.models import Messenger, Region
from skymaps.lookup import level_density_at, searched_area_model

DAY = NS_PER_DAY
KS_ALPHA = 0.01


# --------------------------------------------------------------------------- #
# Worked values
# --------------------------------------------------------------------------- #


def test_worked_example_corner_of_region_and_window() -> None:
    # ρ = 0.05 /deg²/day, A_s = A_R = 10 deg², Δt = T = 2 days: μ = Λ = 1.0.
    # times from datetimes and literal nanoseconds, not from the module's constants
    opens = to_ns(T0 - timedelta(seconds=600))
    dt = elapsed_days(to_ns(T0 - timedelta(seconds=600) + timedelta(days=2)), opens)
    assert float(elapsed_days(172_800_000_000_000, 0)) == 2.0
    assert float(dt) == 2.0
    lam = expected_background(0.05, 10.0, dt, region_area_deg2=10.0, window_days=2.0)
    assert float(lam) == pytest.approx(1.0, rel=1e-12)
    p = p_chance(0.05, 10.0, dt, region_area_deg2=10.0, window_days=2.0)
    assert float(p) == pytest.approx(0.6321205588285577, rel=1e-12)


def test_worked_example_inside_region_and_window() -> None:
    # Same rectangle (10 deg², 2 days) inside 100 deg² and 20 days:
    # Λ = ρ·v·(1 + ln(V/v)) = 0.05·20·(1 + ln 100) = 5.605170185988092.
    p = p_chance(0.05, 10.0, 2.0, region_area_deg2=100.0, window_days=20.0)
    assert float(p) == pytest.approx(1 - math.exp(-(1 + math.log(100.0))), rel=1e-12)
    assert float(p) == pytest.approx(0.996321, abs=1e-6)


@pytest.mark.parametrize(
    ("unit", "per_day"),
    [("years", 1 / 365.25), ("seconds", 86_400.0), ("hours", 24.0)],
)
def test_the_worked_example_detects_other_time_units(unit: str, per_day: float) -> None:
    # The value pinned above is not what a time in years, seconds or hours gives.
    wrong = p_chance(0.05, 10.0, 2.0 * per_day, region_area_deg2=10.0, window_days=2.0 * per_day)
    assert abs(float(wrong) - 0.6321205588285577) > 0.1, unit


def test_p_chance_limits_and_validation() -> None:
    kw = {"region_area_deg2": 50.0, "window_days": 20.0}
    assert p_chance(0.1, 0.0, 3.0, **kw) == 0.0
    assert p_chance(0.1, 5.0, 0.0, **kw) == 0.0
    assert p_chance(0.0, 5.0, 3.0, **kw) == 0.0
    # saturates at the corner: Λ = ρ·A_R·T
    full = 1 - math.exp(-0.1 * 50 * 20)
    assert float(p_chance(0.1, 80.0, 30.0, **kw)) == pytest.approx(full)
    # monotonic in area and time
    p = p_chance(0.01, np.array([1.0, 2.0, 2.0]), np.array([1.0, 1.0, 2.0]), **kw)
    assert np.all(np.diff(p) > 0)
    with pytest.raises(ValueError):
        p_chance(0.1, 5.0, -1.0, **kw)
    with pytest.raises(ValueError):
        p_chance(-0.1, 5.0, 1.0, **kw)
    with pytest.raises(ValueError):
        p_chance(0.1, np.nan, 1.0, **kw)
    with pytest.raises(ValueError):
        p_chance(0.1, 5.0, 1.0, region_area_deg2=0.0, window_days=1.0)


# --------------------------------------------------------------------------- #
# The rate of new transients measured from the stream
# --------------------------------------------------------------------------- #


def uniform_in_cells(
    rng: np.random.Generator, n: int, order: int, cells: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    shift = 2 * (29 - order)
    pick = rng.choice(cells, n) << shift
    pix = pick + rng.integers(0, 1 << shift, n)
    ra, dec = hp.pix2ang(2**29, pix, nest=True, lonlat=True)
    return np.asarray(ra), np.asarray(dec)


def test_transient_rate_recovers_a_simulated_rate() -> None:
    rng = np.random.default_rng(7)
    order = 6
    cells = np.arange(2000, 2600)  # 600 order-6 cells: 503.5 deg²
    area = 600 * 4 * math.pi * (180 / math.pi) ** 2 / (12 * 4**order)
    rho, days = 0.05, 30.0
    n_new = rng.poisson(rho * area * days)
    n_old = 30_000  # variable stars etc.: they mark cells as surveyed, never as new
    t_new = rng.uniform(0, days, n_new) * DAY
    t_old = rng.uniform(0, days, n_old) * DAY
    ra_n, dec_n = uniform_in_cells(rng, n_new, order, cells)
    ra_o, dec_o = uniform_in_cells(rng, n_old, order, cells)
    rate = TransientRate(window_days=days, order=order)
    # new objects with a second alert each (must count once), old ones first seen long ago
    rate.observe(
        np.concatenate([t_new, t_new + DAY // 2, t_old]).astype(np.int64),
        np.concatenate([ra_n, ra_n, ra_o]),
        np.concatenate([dec_n, dec_n, dec_o]),
        [f"n{i}" for i in range(n_new)] * 2 + [f"o{i}" for i in range(n_old)],
        np.concatenate([t_new, t_new, np.full(n_old, -400 * DAY)]).astype(np.int64),
    )
    est = rate.estimate(int(days * DAY))
    assert est is not None
    assert est.area_deg2 == pytest.approx(area)
    assert est.span_days == pytest.approx(days - float(min(t_new.min(), t_old.min())) / DAY)
    assert est.n_new == n_new
    sigma = rho / math.sqrt(n_new)
    assert abs(est.rate_per_deg2_day - rho) < 4 * sigma + 0.002 * rho


def test_transient_rate_window_and_missing_data() -> None:
    rate = TransientRate(window_days=10.0, order=3)
    assert rate.estimate(0) is None
    one = np.array([0], dtype=np.int64)
    rate.observe(one, np.array([10.0]), np.array([10.0]), ["a"], one - 100 * DAY)
    assert rate.estimate(DAY) is None  # alerts, but no new object
    rate.observe(one + 5 * DAY, np.array([10.0]), np.array([10.0]), ["b"], one + 5 * DAY)
    est = rate.estimate(10 * DAY)
    assert est is not None and est.n_new == 1 and est.span_days == 10.0
    cell_area = 4 * math.pi * (180 / math.pi) ** 2 / (12 * 4**3)
    assert est.rate_per_deg2_day == pytest.approx(1 / (cell_area * 10.0))
    # 16 days later "b" (first detected at day 5) has left the 10-day window
    assert rate.estimate(16 * DAY) is None
    assert FixedRate(0.2).estimate(0).rate_per_deg2_day == 0.2
    with pytest.raises(ValueError):
        FixedRate(-1.0)


# --------------------------------------------------------------------------- #
# Calibration: simulated null, best candidate per realisation, KS test
# --------------------------------------------------------------------------- #


def p_variant(
    variant: str, rho: float, area: np.ndarray, dt_days: np.ndarray, region: Region, window: Window
) -> np.ndarray:
    if variant == "days":
        return p_chance(
            rho, area, dt_days, region_area_deg2=region.area_deg2, window_days=window.duration_days
        )
    if variant == "years":  # the peer's bug: time in years, rate per day
        return p_chance(
            rho,
            area,
            dt_days / 365.25,
            region_area_deg2=region.area_deg2,
            window_days=window.duration_days / 365.25,
        )
    if variant == "naive":  # rectangle only: 1 - exp(-ρ A_s Δt)
        return -np.expm1(-rho * area * dt_days)
    raise ValueError(variant)


def simulate_best_p(
    region: Region,
    rho: float,
    n_real: int,
    patch: tuple[float, float, float],
    seed: int,
    variants: tuple[str, ...] = ("days",),
) -> dict[str, np.ndarray]:
    """Best p_chance per realisation of a Poisson null (NaN: no candidate).

    Background new transients are uniform in a cap ``patch = (ra, dec, radius)``
    enclosing the region and in [t0 − 2 d, t0 + 22 d], at rate ρ per deg² per day;
    each is a new object (first detection = its alert). Realisations are independent
    (Poisson splitting of one big sample).
    """
    rng = np.random.default_rng(seed)
    window = CONTRACT_WINDOW
    t0 = 0
    ra0, dec0, radius = patch
    patch_area = 2 * math.pi * (1 - math.cos(math.radians(radius))) * (180 / math.pi) ** 2
    n = rng.poisson(rho * patch_area * 24.0 * n_real)
    real = rng.integers(0, n_real, n)
    ra, dec = random_in_cap(rng, n, ra0, dec0, radius)
    times = (rng.uniform(-2.0, 22.0, n) * DAY).astype(np.int64)
    index = ActiveRegions([RegionEntry("event", region, window.opens_ns(t0), window.closes_ns(t0))])
    cand, _ = index.match_in_time(ipix29(ra, dec), times)
    cand = cand[time_mask(times[cand], times[cand], t0, window)]
    # the engine's model: the one of skymaps (Fisher for circles, tiles for maps)
    level, _, described = level_density_at(region, ra[cand], dec[cand])
    assert described.all()
    area = searched_area_model(region)(level)
    dt = elapsed_days(times[cand], window.opens_ns(t0))
    out = {}
    for variant in variants:
        p = p_variant(variant, rho, area, dt, region, window)
        best = np.full(n_real, np.inf)
        np.minimum.at(best, real[cand], p)
        out[variant] = np.where(np.isinf(best), np.nan, best)
    return out


@pytest.fixture(scope="module")
def circle_null() -> tuple[Region, float, dict[str, np.ndarray]]:
    region = circle_region(150.0, 20.0, 3.0)  # 28.4 deg²
    rho = 0.05  # ρ·A_R·T = 28.4: an empty realisation has probability 5e-13
    best = simulate_best_p(
        region, rho, 2000, (150.0, 20.0, 3.5), seed=11, variants=("days", "years", "naive")
    )
    return region, rho, best


def test_calibration_circle_best_candidate_is_uniform(
    circle_null: tuple[Region, float, dict[str, np.ndarray]],
) -> None:
    _, _, best = circle_null
    p = best["days"]
    assert not np.isnan(p).any()
    result = stats.kstest(p, "uniform")
    assert result.pvalue > KS_ALPHA, result


def test_calibration_fails_with_time_in_years(
    circle_null: tuple[Region, float, dict[str, np.ndarray]],
) -> None:
    _, _, best = circle_null
    result = stats.kstest(best["years"], "uniform")
    assert result.pvalue < 1e-6, result


def test_calibration_fails_with_the_naive_rectangle_probability(
    circle_null: tuple[Region, float, dict[str, np.ndarray]],
) -> None:
    _, _, best = circle_null
    result = stats.kstest(best["naive"], "uniform")
    assert result.pvalue < 1e-6, result


def test_calibration_map_best_candidate_is_uniform() -> None:
    # Two Gaussian lobes (a "banana"), 90 % region ~80 deg² at order 9.
    region = gaussian_map_region([(150.0, 20.0, 2.0, 0.6), (156.0, 23.0, 1.5, 0.4)])
    rho = 0.02  # ρ·A_R·T ≈ 32
    best = simulate_best_p(
        region, rho, 1500, (152.5, 21.5, 10.0), seed=12, variants=("days", "years")
    )
    assert not np.isnan(best["days"]).any()
    result = stats.kstest(best["days"], "uniform")
    assert result.pvalue > KS_ALPHA, result
    assert stats.kstest(best["years"], "uniform").pvalue < 1e-6


def test_calibration_small_region_conditional_on_a_candidate() -> None:
    # r90 = 0.5°: ρ·A_R·T ≈ 0.79, so many realisations have no candidate at all.
    region = circle_region(40.0, -10.0, 0.5)
    rho = 0.05
    n_real = 4000
    best = simulate_best_p(region, rho, n_real, (40.0, -10.0, 0.7), seed=13)["days"]
    total = rho * region.area_deg2 * CONTRACT_WINDOW.duration_days
    empty = np.isnan(best)
    expected_empty = math.exp(-total)
    assert abs(empty.mean() - expected_empty) < 4 * math.sqrt(expected_empty / n_real)
    scaled = best[~empty] / (1 - math.exp(-total))
    result = stats.kstest(scaled, "uniform")
    assert result.pvalue > KS_ALPHA, result


def test_calibration_through_the_engine_with_late_and_early_notices() -> None:
    """The engine's own p_chance (its time and area conversions) is calibrated too.

    300 events at random positions and times, each a 3° circle; background new
    transients around each; half the notices arrive before the alerts, half after
    (retro-match). Best candidate per event: uniform.
    """
    rng = np.random.default_rng(21)
    rho = 0.05
    engine = CoincidenceEngine(rate=FixedRate(rho), windows=WINDOWS)
    n_events = 300
    rows = []
    metas = []
    for k in range(n_events):
        ra0, dec0 = rng.uniform(0, 360), float(np.degrees(np.arcsin(rng.uniform(-0.5, 0.95))))
        t0 = timedelta(days=30.0 * k)
        meta = EventMeta(f"E{k}", Messenger.GRB, "Fermi", "GBM", T0 + t0, 1)
        metas.append((meta, circle_region(ra0, dec0, 3.0, depth=12)))
        n = rng.poisson(rho * 38.5 * 24.0)
        ra, dec = random_in_cap(rng, n, ra0, dec0, 3.5)
        dts = rng.uniform(-2.0, 22.0, n)
        rows += [
            {"alert_id": f"{k}-{i}", "ra": ra[i], "dec": dec[i], "dt": t0 + timedelta(days=dts[i])}
            for i in range(n)
        ]
    out = []
    for meta, region in metas[::2]:
        out += engine.add_region(meta, 1, region)
    out += engine.process_alerts(alerts_frame(rows))
    for meta, region in metas[1::2]:
        out += engine.add_region(meta, 1, region)
    best: dict[str, float] = {}
    for a in out:
        assert a.p_chance is not None
        best[a.event_id] = min(best.get(a.event_id, 1.0), a.p_chance)
    assert len(best) == n_events
    result = stats.kstest(np.array(list(best.values())), "uniform")
    assert result.pvalue > KS_ALPHA, result
