"""Mission conventions: published error -> 90 % radius, on worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from mm_broker.core.errors import BadCoordinates
from mm_broker.core.models import Circle
from skymaps import fisher
from skymaps.circle_model import circle_model
from skymaps.conventions import CONVENTIONS, ConventionError, get_convention


def flat_gbm_r90(stat: float, core_weight: float, core: float, tail: float) -> float:
    """Connaughton et al. (2015) eq. 1-2 in the flat-sky limit, solved independently:
    sigma**2 = 0.4356 (R_stat**2 + R_sys**2); P(<r) = sum w (1 - exp(-r**2 / 2 sigma**2))."""
    s1 = 0.4356 * (stat**2 + core**2)
    s2 = 0.4356 * (stat**2 + tail**2)

    def excess(r: float) -> float:
        return (core_weight * -math.expm1(-r * r / (2 * s1))
                + (1 - core_weight) * -math.expm1(-r * r / (2 * s2)) - 0.9)

    return float(brentq(excess, 0.0, 180.0))


def test_gbm_ground_worked_example() -> None:
    """GBM ground position of 3.97 deg (1 sigma, statistical; fermi_gbm_gnd_pos_1834):
    core 3.72 deg (80.4 %), tail 13.7 deg: sigma_core = 0.66 * sqrt(3.97^2 + 3.72^2)
    = 3.591 deg, sigma_tail = 0.66 * sqrt(3.97^2 + 13.7^2) = 9.414 deg; the flat-sky
    mixture holds 90 % within 11.36 deg, the Fisher mixture within 11.38 deg."""
    model = circle_model(Circle(85.32, 6.21, 3.97, 0.6827, convention="fermi_gbm_ground"))
    assert model.radius90_deg == pytest.approx(11.38, abs=0.01)
    assert model.radius90_deg == pytest.approx(flat_gbm_r90(3.97, 0.804, 3.72, 13.7), rel=3e-3)
    # The single Fisher law used for levels has the same 90 % radius.
    assert float(fisher.level(model.radius90_deg, model.sigma_deg)) == pytest.approx(0.9)
    assert "Connaughton" in model.description and "3.97" in model.description
    # Far wider than the statistical radius alone: 3.97 / 0.66 * 2.146 = 5.6 deg.
    assert model.radius90_deg > 2 * 3.97 / 1.515 * 2.146 / 1.5


def test_gbm_final_and_flight_worked_examples() -> None:
    final = circle_model(Circle(204.38, 33.04, 1.0, 0.6827, convention="fermi_gbm_final"))
    assert final.radius90_deg == pytest.approx(4.93, abs=0.01)
    assert final.radius90_deg == pytest.approx(flat_gbm_r90(1.0, 0.52 / 0.99, 1.8, 4.1),
                                               rel=3e-3)
    assert "25726" in final.description
    flight = circle_model(Circle(214.2, 48.2, 15.82, 0.6827, convention="fermi_gbm_flight"))
    assert flight.radius90_deg == pytest.approx(31.16, abs=0.01)
    # The Fisher law is wider than the flat-sky Gaussian at these sizes.
    assert flight.radius90_deg == pytest.approx(flat_gbm_r90(15.82, 0.897, 7.52, 55.6),
                                                rel=2e-2)


def test_generic_worked_example() -> None:
    """A 1 deg radius at 50 %: sigma = 1 / sqrt(2 ln 2) = 0.8493 deg, and
    r90 = sigma sqrt(2 ln 10) = sqrt(ln 10 / ln 2) = 1.8227 deg."""
    model = circle_model(Circle(0.0, 0.0, 1.0, 0.5))
    assert model.sigma_deg == pytest.approx(1 / math.sqrt(2 * math.log(2)), rel=1e-4)
    assert model.radius90_deg == pytest.approx(math.sqrt(math.log(10) / math.log(2)), rel=1e-4)


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-5, 3.0), st.floats(0.05, 0.99))
def test_generic_matches_the_gaussian_rule_for_small_radii(radius: float, c: float) -> None:
    flat_r90 = radius * math.sqrt(math.log(10) / -math.log1p(-c))
    assume(flat_r90 < 5.0)
    model = circle_model(Circle(10.0, -20.0, radius, c))
    assert model.radius90_deg == pytest.approx(flat_r90, rel=2e-3)
    assert model.radius_deg == pytest.approx(model.radius90_deg)


@settings(max_examples=100, deadline=None)
@given(st.floats(1e-4, 60.0), st.floats(0.05, 0.95))
def test_fisher_inversions_round_trip(radius: float, c: float) -> None:
    assume(c > (1 - math.cos(math.radians(radius))) / 2 + 0.01)  # more than a uniform sky
    sigma = fisher.sigma_for_radius(radius, c)
    assert float(fisher.level(radius, sigma)) == pytest.approx(c, abs=1e-9)
    assert fisher.radius_for_level(sigma, c) == pytest.approx(radius, rel=1e-9)


def test_fisher_density_integrates_to_level() -> None:
    sigma = 20.0  # wide: the spherical normalisation matters
    theta = np.linspace(0.0, 180.0, 200_001)
    ring_deg2 = 2 * np.pi * np.sin(np.radians(theta)) * (180 / np.pi)  # d(area)/d(theta)
    integrand = fisher.density_deg2(theta, sigma) * ring_deg2
    cumulative = np.concatenate(([0.0], np.cumsum((integrand[1:] + integrand[:-1]) / 2
                                                  * np.diff(theta))))
    assert cumulative[-1] == pytest.approx(1.0, abs=1e-6)
    i = np.searchsorted(theta, 40.0)
    assert cumulative[i] == pytest.approx(float(fisher.level(theta[i], sigma)), abs=1e-6)


@pytest.mark.parametrize("name", ["swift_bat", "swift_xrt", "swift_uvot", "einstein_probe_wxt",
                                  "svom_eclairs", "svom_mxt", "maxi_gsc", "integral_ibas",
                                  "icecube_cascade"])
def test_ninety_percent_missions_keep_their_radius(name: str) -> None:
    model = circle_model(Circle(120.0, 40.0, 0.05, 0.9, convention=name))
    assert model.radius90_deg == pytest.approx(0.05, rel=1e-9)
    assert CONVENTIONS[name].documented_containment == 0.9
    assert CONVENTIONS[name].source in model.description


def test_containment_disagreeing_with_the_mission_is_used_and_said() -> None:
    model = circle_model(Circle(0.0, 0.0, 1.0, 0.68, convention="swift_bat"))
    assert model.radius90_deg == pytest.approx(1.0 * math.sqrt(math.log(10) / -math.log(0.32)),
                                               rel=1e-3)
    assert "mission documents 90 %" in model.description


def test_systematic_added_in_quadrature() -> None:
    model = circle_model(Circle(0.0, 0.0, 3.0, 0.9, systematic_deg=4.0))
    assert model.radius90_deg == pytest.approx(5.0, rel=1e-9)
    assert "quadrature" in model.description


def test_gbm_with_explicit_systematic_is_refused() -> None:
    with pytest.raises(ConventionError, match="systematic_deg must be None"):
        circle_model(Circle(0.0, 0.0, 3.0, 0.68, systematic_deg=2.0,
                            convention="fermi_gbm_ground"))


def test_unknown_convention() -> None:
    with pytest.raises(ConventionError, match="unknown error convention 'nope'") as info:
        circle_model(Circle(0.0, 0.0, 1.0, 0.9, convention="nope"))
    assert info.value.reason == "convention"


def test_region_wider_than_150_degrees_is_refused() -> None:
    # A Fisher law's 90 % radius never exceeds the uniform sky's 143.1 deg; at 99 % it can.
    assert circle_model(Circle(0.0, 0.0, 100.0, 0.6)).radius90_deg < 143.2
    with pytest.raises(BadCoordinates, match="exceeds 150 deg"):
        circle_model(Circle(0.0, 0.0, 100.0, 0.6), credible_level=0.99)


def test_rectangle_suffix() -> None:
    conv = get_convention("gcn_unified_containment_rectangle_bbox")
    assert conv.box_shape == "rectangle" and "rectangle" in conv.label
    with pytest.raises(ConventionError):
        get_convention("fermi_gbm_final_rectangle_bbox")


@pytest.mark.parametrize(
    ("radius", "containment", "message"),
    [
        (0.0, 0.9, "must be > 0"),
        (-1.0, 0.9, "must be > 0"),
        (360.0, 0.9, "SNEWS"),
        (180.0, 0.9, "must be < 180"),
        (float("nan"), 0.9, "must be finite"),
        (float("inf"), 0.9, "must be finite"),
        (1.0, 1.0, "strictly between 0 and 1"),
        (1.0, 0.0, "strictly between 0 and 1"),
        (100.0, 0.3, "not possible"),  # less than a uniform sky would hold
    ],
)
def test_impossible_radius_or_containment(radius: float, containment: float,
                                          message: str) -> None:
    with pytest.raises(BadCoordinates, match=message):
        circle_model(Circle(0.0, 0.0, radius, containment))
