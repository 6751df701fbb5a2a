"""A published circle to its radial law under the mission's convention.

:func:`circle_model` applies the rules of :mod:`skymaps.conventions` to a
:class:`~mm_broker.core.models.Circle`: the containment of the published radius, a
systematic (published, or the convention's), and the law (:mod:`skymaps.radial`):

* Fermi GBM conventions: the core + tail mixture of Connaughton et al. (2015), the
  statistical width combined in quadrature with each component;
* a circle with a 90 % and a 50 % radius (IceCube, AMON), or a convention with a
  typical ratio of the two (IceCube GCN JSON): the King profile through both radii,
  or the Fisher law when the pair is at the Gaussian ratio;
* every other circle: the Fisher law through the published radius.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import skymaps.fisher as fisher
from mm_broker.core.errors import BadCoordinates, ConventionError
from mm_broker.core.models import Circle
from skymaps.conventions import (
    GBM_SIGMA_PER_R68,
    MAX_RADIUS_DEG,
    Convention,
    get_convention,
)
from skymaps.coords import validate_containment, validate_radius
from skymaps.radial import FisherLaw, FisherMixture, RadialLaw, king_from_radii

__all__ = ["CircleModel", "circle_model"]


@dataclass(frozen=True)
class CircleModel:
    """The error model of a circle: its law, radii and how they were obtained.

    Attributes
    ----------
    law : RadialLaw
        Gives levels, densities and searched areas (stored as ``Region.radial_model``).
    sigma_deg : float
        Width of the Fisher law with the same radius at the credible level (the law
        itself for a Fisher circle; ``Region.sigma_deg``).
    radius_deg : float
        Radius of the region at the requested credible level.
    radius90_deg : float
        Radius holding 90 % of the law's probability.
    description : str
        What was done, in words (goes to ``Region.convention``).
    """

    law: RadialLaw
    sigma_deg: float
    radius_deg: float
    radius90_deg: float
    description: str


def _pct(c: float) -> str:
    return f"{100.0 * c:.4g} %"


def _check_region_radius(radius: float, what: str) -> None:
    if radius > MAX_RADIUS_DEG:
        raise BadCoordinates(
            f"{what} radius {radius:.1f} deg exceeds {MAX_RADIUS_DEG:.0f} deg: "
            "not a usable localisation"
        )


def _at90(containment: float) -> bool:
    return math.isclose(containment, 0.9, abs_tol=5e-3)


def _with_systematic(
    conv: Convention, circle: Circle, radius: float, containment: float,
    r50: float | None, words: list[str],
) -> tuple[float, float | None]:
    """Published radii with the systematic in quadrature (the notice's, else the
    convention's), each scaled as a Gaussian to its containment."""
    if circle.systematic_deg is not None:
        if conv.systematic is not None:
            raise ConventionError(
                f"convention {conv.name!r} applies its own systematic model; "
                "systematic_deg must be None"
            )
        sys_r = float(circle.systematic_deg)
        if not (math.isfinite(sys_r) and 0.0 <= sys_r < 180.0):
            raise BadCoordinates(f"systematic radius {sys_r!r} deg must be in [0, 180)")
        sys_sigma, what = sys_r / fisher.gaussian_k(containment), "the notice's"
    elif conv.systematic_r90_deg is not None:
        sys_sigma = conv.systematic_r90_deg / fisher.gaussian_k(0.9)
        what = f"the convention's ({conv.systematic_r90_deg:.6g} deg at 90 %)"
    else:
        return radius, r50
    radius = validate_radius(math.hypot(radius, sys_sigma * fisher.gaussian_k(containment)),
                             what="total error radius")
    words.append(f"plus {what} systematic in quadrature: {radius:.6g} deg")
    if r50 is not None:
        r50 = math.hypot(r50, sys_sigma * fisher.gaussian_k(0.5))
        words.append(f"50 % radius {r50:.6g} deg")
    return radius, r50


def _gbm_law(conv: Convention, radius: float, containment: float,
             words: list[str]) -> RadialLaw:
    mix = conv.systematic
    assert mix is not None
    # Published statistical radius to a Gaussian width, then the 68 % systematic radii
    # with Connaughton et al.'s factor 0.66, combined in quadrature per component.
    sigma_stat = radius / fisher.gaussian_k(containment)
    sigmas = (math.hypot(sigma_stat, GBM_SIGMA_PER_R68 * mix.core_deg),
              math.hypot(sigma_stat, GBM_SIGMA_PER_R68 * mix.tail_deg))
    words.append(
        f"systematic model {mix.source}: core {mix.core_deg} deg weight "
        f"{mix.core_weight:.3f}, tail {mix.tail_deg} deg (68 % radii), combined in "
        f"quadrature with sigma_stat {sigma_stat:.6g} deg (sigma = 0.66 R68); levels and "
        f"densities from the mixture of Fisher laws with sigma {sigmas[0]:.6g} and "
        f"{sigmas[1]:.6g} deg")
    return FisherMixture(sigmas, (mix.core_weight, 1.0 - mix.core_weight))


def _profile_law(conv: Convention, radius: float, containment: float, r50: float | None,
                 words: list[str]) -> RadialLaw:
    if r50 is not None and _at90(containment):
        if not r50 < radius:
            raise BadCoordinates(f"50 % radius {r50!r} deg is not below the 90 % radius "
                                 f"{radius!r} deg")
        king = king_from_radii(r50, radius)
        if king is not None:
            words.append(f"King profile through the 50 % radius {r50:.6g} deg and the 90 % "
                         f"radius {radius:.6g} deg: sigma {king.sigma_deg:.6g} deg, gamma "
                         f"{king.gamma:.6g}")
            return king
        words.append(f"50 % and 90 % radii at the Gaussian ratio (r50/r90 "
                     f"{r50 / radius:.4f}): Fisher law")
    elif r50 is not None:
        words.append(f"50 % radius {r50:.6g} deg not used (published radius not at 90 %)")
    try:
        sigma = fisher.sigma_for_radius(radius, containment)
    except ValueError as exc:
        raise BadCoordinates(str(exc)) from exc
    words.append(f"Fisher (spherical Gaussian) law, sigma {sigma:.6g} deg")
    return FisherLaw(sigma)


def circle_model(circle: Circle, credible_level: float = 0.9) -> CircleModel:
    """Convert a published circle to its error model under the circle's convention.

    Parameters
    ----------
    circle : Circle
        Position, radius (and 50 % radius) and containment as published (validated).
    credible_level : float
        Probability content of the region to build.

    Returns
    -------
    CircleModel

    Raises
    ------
    BadCoordinates
        Impossible radius or containment, or a region larger than
        :data:`~skymaps.conventions.MAX_RADIUS_DEG`.
    ConventionError
        Unknown convention, or a systematic radius given for a mission whose
        systematic is modelled here.

    Examples
    --------
    A Swift XRT radius is already a 90 % radius:

    >>> m = circle_model(Circle(10.0, 20.0, 3.5 / 3600, 0.9, convention="swift_xrt"))
    >>> round(m.radius90_deg * 3600, 6)
    3.5

    A generic 50 % radius of 1 deg scales by ``sqrt(ln 10 / ln 2)``:

    >>> round(circle_model(Circle(0.0, 0.0, 1.0, 0.5)).radius90_deg, 4)
    1.8227

    A Fermi GBM ground position of 3.97 deg (1 sigma, statistical) with the
    Connaughton et al. core and tail; at 4 deg the mixture's level is 0.39:

    >>> m = circle_model(Circle(85.32, 6.21, 3.97, 0.6827, convention="fermi_gbm_ground"))
    >>> round(m.radius90_deg, 2), round(float(m.law.level(4.0)), 2)
    (11.38, 0.39)
    """
    conv = get_convention(circle.convention)
    radius = validate_radius(circle.radius_deg, what="error radius")
    r50 = (None if circle.radius50_deg is None
           else validate_radius(circle.radius50_deg, what="50 % radius"))
    containment = validate_containment(circle.containment)
    credible_level = validate_containment(credible_level, what="credible level")
    words = [f"{conv.label}: published radius {radius:.6g} deg at {_pct(containment)}"]
    if r50 is not None:
        words.append(f"and {r50:.6g} deg at 50 %")
    if conv.documented_containment is not None and not math.isclose(
        containment, conv.documented_containment, abs_tol=5e-3
    ):
        words.append(
            f"(the notice's containment; the mission documents "
            f"{_pct(conv.documented_containment)})"
        )
    words.append(f"[{conv.meaning}; {conv.source}]")
    if r50 is None and conv.typical_r50_per_r90 is not None and _at90(containment):
        r50 = conv.typical_r50_per_r90 * radius
        words.append(f"no 50 % radius: the convention's typical r50/r90 "
                     f"{conv.typical_r50_per_r90:.4g} gives {r50:.6g} deg")
    radius, r50 = _with_systematic(conv, circle, radius, containment, r50, words)
    law = (_gbm_law(conv, radius, containment, words) if conv.systematic is not None
           else _profile_law(conv, radius, containment, r50, words))
    try:
        r_cl = law.radius_for_level(credible_level)
        r90 = law.radius_for_level(0.9)
    except (OverflowError, ZeroDivisionError, ValueError) as exc:
        raise BadCoordinates(
            f"error model has no solution for radius {radius!r} deg at containment "
            f"{containment!r}: {exc}") from exc
    _check_region_radius(r_cl, _pct(credible_level))
    if isinstance(law, FisherLaw):
        sigma = law.sigma_deg
    else:
        sigma = fisher.sigma_for_radius(r_cl, credible_level)
    words.append(f"{_pct(credible_level)} radius {r_cl:.6g} deg")
    return CircleModel(law, sigma, r_cl, r90, "; ".join(words))
