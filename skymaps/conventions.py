"""Mission error conventions: what a published error radius means, and how it
becomes a 90 % region.

A parser fills :class:`mm_broker.core.models.Circle` with the radius *as published*, its
``containment`` *as the mission defines it* and a ``convention`` name from
:data:`CONVENTIONS`. This module turns that into the width of the error model
(:mod:`skymaps.fisher`) and the radius holding the requested credible level, and
says in words what was done (``Region.convention``).

Rules
-----
* ``Circle.containment`` is authoritative: it is what the notice (or the parser's
  mission table) says. Each convention also records the containment its mission
  documents; a disagreement is not an error, it is written into the description.
* ``Circle.systematic_deg``, when given, is a systematic radius at the same
  containment as ``radius_deg`` and is added in quadrature:
  ``r = sqrt(r_stat**2 + r_sys**2)``.
* Missions with a systematic *model* (Fermi GBM) must leave ``systematic_deg`` as
  ``None``; the model is applied here.
* Every published radius at containment ``c`` is converted with the Fisher model
  (:func:`skymaps.fisher.sigma_for_radius`); for small radii this is the 2-D
  Gaussian rule ``sigma = r_c / sqrt(-2 ln(1 - c))`` and
  ``r90 = sigma * sqrt(2 ln 10) = r_c * sqrt(ln 10 / -ln(1 - c))``.

Fermi GBM
---------
GBM notices publish a statistical 1-sigma radius (GCN, "GCN/Fermi GRB Notices",
https://gcn.gsfc.nasa.gov/fermi.html: "location uncertainties ... (1 sigma)"; the
text notices say "statistical only"). The GBM team's systematic model is a mixture
of a core and a tail (Connaughton et al. 2015, ApJS 216, 32,
doi:10.1088/0067-0049/216/2/32, eq. 1-2): with ``R`` the 68 % radii,

    p(theta) = f  * Fisher(theta; sigma_core) + (1 - f) * Fisher(theta; sigma_tail),
    sigma_x**2 = 0.4356 * (R_stat**2 + R_x**2)          (0.4356 = 0.66**2 = 1/k(68.27 %)**2)

We use the same parameters as gwcelery (lpsinger/gwcelery,
``gwcelery/tasks/external_skymaps.py``, ``fermi_params``) for flight and ground
positions:

* flight (``FERMI_GBM_FLT_POS``): Connaughton et al. Table 7, row 1:
  f = 0.897, R_core = 7.52 deg, R_tail = 55.6 deg;
* ground (``FERMI_GBM_GND_POS``): Table 3, row 1: f = 0.804, R_core = 3.72 deg,
  R_tail = 13.7 deg;

and, for final positions (``FERMI_GBM_FIN_POS``), the GBM team's statement for the
automated RoboBA final localisations distributed in these notices since 2019
(Goldstein, GCN Circular 25726): a 1.8 deg core (52 %) and a 4.1 deg tail (47 %),
weights renormalised to 52:47. (gwcelery still uses Table 3 row 2 of Connaughton et
al., f = 0.900, 3.71 deg, 14.3 deg, for final positions: about 1.7 times larger 90 %
radii for bright bursts.)

The mixture's 90 % radius is solved exactly. ``Region.sigma_deg`` is then the width
of the single Fisher distribution with the same radius at the region's credible
level: the region boundary is the mixture's, and levels inside keep the mixture's
ranking (both decrease with distance) but are the single-Fisher values.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from mm_broker.core.errors import BadCoordinates, NoticeError
from mm_broker.core.models import Circle
from skymaps import fisher
from skymaps.coords import validate_containment, validate_radius

__all__ = [
    "CONVENTIONS",
    "GBM_SIGMA_PER_R68",
    "MAX_RADIUS_DEG",
    "RECTANGLE_SUFFIX",
    "CircleModel",
    "Convention",
    "ConventionError",
    "SystematicMixture",
    "circle_model",
    "get_convention",
]

#: Fisher width per 68 % radius used by Connaughton et al. (2015): sqrt(0.4356).
GBM_SIGMA_PER_R68 = 0.66

#: Largest credible-region radius we build (degrees). Beyond it a "localisation"
#: covers most of the sky; mocpy's cone coverage is also unreliable above ~160 deg.
MAX_RADIUS_DEG = 150.0


class ConventionError(NoticeError):
    """A localisation names an unknown convention or one that does not apply to it."""

    reason = "convention"


@dataclass(frozen=True)
class SystematicMixture:
    """A core + tail systematic model (68 % radii in degrees, core weight)."""

    core_weight: float
    core_deg: float
    tail_deg: float
    source: str


@dataclass(frozen=True)
class Convention:
    """What a mission's published error means.

    Attributes
    ----------
    name : str
        Identifier used in ``Circle.convention`` / ``Ellipse.convention`` ...
    label : str
        Mission and product, for people.
    documented_containment : float or None
        Containment of the published radius according to the mission (``None`` when
        the notice itself says, e.g. the GCN unified schema's
        ``containment_probability``).
    meaning : str
        What the published radius includes, in words.
    source : str
        Where the convention is documented.
    systematic : SystematicMixture or None
        Systematic model applied on top of the published (statistical) radius.
    box_shape : str
        What a :class:`~mm_broker.core.models.Box` under this convention is:
        ``"contour"`` (the offsets are the extents of the credible contour, as
        IceCube's) or ``"rectangle"`` (the RA/Dec rectangle itself is the region).
    """

    name: str
    label: str
    documented_containment: float | None
    meaning: str
    source: str
    systematic: SystematicMixture | None = None
    box_shape: str = "contour"


_GBM_FLIGHT = SystematicMixture(
    0.897, 7.52, 55.6,
    "Connaughton et al. 2015, ApJS 216, 32, Table 7 row 1 (as in gwcelery)",
)
_GBM_GROUND = SystematicMixture(
    0.804, 3.72, 13.7,
    "Connaughton et al. 2015, ApJS 216, 32, Table 3 row 1 (as in gwcelery)",
)
_GBM_FINAL = SystematicMixture(
    0.52 / (0.52 + 0.47), 1.8, 4.1,
    "GBM RoboBA final localisations, GCN Circular 25726 (2019): 1.8 deg (52 %) "
    "+ 4.1 deg (47 %)",
)
_GBM_MEANING = "statistical 1-sigma radius only"
_GBM_SOURCE = "GCN Fermi notices, https://gcn.gsfc.nasa.gov/fermi.html"
_SWIFT_SOURCE = "GCN Swift notices, https://gcn.gsfc.nasa.gov/swift.html"


_UNIFIED_SOURCE = (
    "GCN unified schema (nasa-gcn/gcn-schema): ra_dec_error at "
    "containment_probability, systematic_included"
)


def _table(*conventions: Convention) -> dict[str, Convention]:
    return {c.name: c for c in conventions}


#: Known conventions by name. Parsers choose one per notice type.
CONVENTIONS: dict[str, Convention] = _table(
    Convention(
        "generic", "containment as stated by the notice", None,
        "radius at the containment given by the notice", "the notice itself",
    ),
    Convention(
        "gcn_unified_containment", "GCN unified-schema notice", None,
        "radius at the notice's containment_probability", _UNIFIED_SOURCE,
    ),
    Convention(
        "fermi_gbm_flight", "Fermi GBM flight position (FERMI_GBM_FLT_POS)", 0.6827,
        _GBM_MEANING, _GBM_SOURCE, _GBM_FLIGHT,
    ),
    Convention(
        "fermi_gbm_ground", "Fermi GBM ground position (FERMI_GBM_GND_POS)", 0.6827,
        _GBM_MEANING, _GBM_SOURCE, _GBM_GROUND,
    ),
    Convention(
        "fermi_gbm_final", "Fermi GBM final position (FERMI_GBM_FIN_POS)", 0.6827,
        _GBM_MEANING, _GBM_SOURCE, _GBM_FINAL,
    ),
    Convention(
        # Name used in mm_broker.core.models' documentation; for a GBM position whose
        # notice type is unknown we take the ground-position model (the middle one).
        "fermi_gbm_1sigma_stat", "Fermi GBM position, notice type unknown", 0.6827,
        _GBM_MEANING, _GBM_SOURCE, _GBM_GROUND,
    ),
    Convention(
        "swift_bat", "Swift BAT position", 0.9,
        "90 % radius including systematics", _SWIFT_SOURCE,
    ),
    Convention(
        "swift_xrt", "Swift XRT position", 0.9, "90 % radius", _SWIFT_SOURCE,
    ),
    Convention(
        "swift_uvot", "Swift UVOT position", 0.9, "90 % radius", _SWIFT_SOURCE,
    ),
    Convention(
        "icecube_track", "IceCube track alert (Gold/Bronze)", 0.9,
        "90 % radius, statistical only",
        "AMON/IceCube VOEvent parameter src_error_90 ('statistical only, 90% "
        "containment'); GCN unified schema containment_probability",
    ),
    Convention(
        "icecube_cascade", "IceCube cascade alert", 0.9,
        "90 % radius, statistical and systematic combined",
        "AMON/IceCube cascade VOEvent parameter src_error_90 ('combined statistical "
        "and the systematic (90% containment)')",
    ),
    Convention(
        "icecube_90", "IceCube alert (GCN JSON)", 0.9,
        "90 % errors (notice's containment_probability), statistical only",
        _UNIFIED_SOURCE + "; https://gcn.nasa.gov/missions/icecube",
    ),
    Convention(
        "einstein_probe_wxt", "Einstein Probe WXT", 0.9,
        "90 % radius including systematics",
        "GCN Einstein Probe notices, https://gcn.nasa.gov/missions/einstein-probe",
    ),
    Convention(
        "einstein_probe_wxt_90", "Einstein Probe WXT (GCN JSON)", 0.9,
        "90 % radius including systematics",
        "GCN Einstein Probe notices, https://gcn.nasa.gov/missions/einstein-probe",
    ),
    Convention(
        "svom_eclairs", "SVOM ECLAIRs", 0.9, "90 % radius",
        "GCN SVOM notices, https://gcn.nasa.gov/missions/svom",
    ),
    Convention(
        "svom_mxt", "SVOM MXT", 0.9, "90 % radius",
        "GCN SVOM notices, https://gcn.nasa.gov/missions/svom",
    ),
    Convention(
        "maxi_gsc", "MAXI GSC", 0.9, "90 % radius",
        "GCN MAXI notices, https://gcn.nasa.gov/missions/maxi",
    ),
    Convention(
        "integral_ibas", "INTEGRAL IBAS", 0.9, "90 % radius",
        "GCN INTEGRAL notices, https://gcn.gsfc.nasa.gov/integral.html",
    ),
)


#: ``<convention>_rectangle_bbox`` names a Box that is the RA/Dec bounding box of a
#: published error rectangle (e.g. MAXI's ``rectangular_error_corners``): the
#: rectangle itself is the region, under the base convention's containment.
RECTANGLE_SUFFIX = "_rectangle_bbox"


def get_convention(name: str) -> Convention:
    """Look up a convention by name (``<known>_rectangle_bbox`` included).

    Raises
    ------
    ConventionError
        If the name is unknown.

    Examples
    --------
    >>> get_convention("swift_xrt").documented_containment
    0.9
    """
    if name in CONVENTIONS:
        return CONVENTIONS[name]
    base = CONVENTIONS.get(name.removesuffix(RECTANGLE_SUFFIX))
    if name.endswith(RECTANGLE_SUFFIX) and base is not None and base.systematic is None:
        return dataclasses.replace(
            base, name=name, box_shape="rectangle",
            label=f"{base.label}, error rectangle (bounding box of its corners)",
        )
    known = ", ".join(sorted(CONVENTIONS))
    raise ConventionError(
        f"unknown error convention {name!r} (known: {known}; "
        f"and <known>{RECTANGLE_SUFFIX})"
    )


@dataclass(frozen=True)
class CircleModel:
    """The error model of a circle: Fisher width, radii and how they were obtained.

    Attributes
    ----------
    sigma_deg : float
        Fisher width giving levels and densities (see :mod:`skymaps.fisher`).
    radius_deg : float
        Radius of the region at the requested credible level.
    radius90_deg : float
        Radius holding 90 % of the model's probability.
    description : str
        What was done, in words (goes to ``Region.convention``).
    """

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


def circle_model(circle: Circle, credible_level: float = 0.9) -> CircleModel:
    """Convert a published circle to its error model under the circle's convention.

    Parameters
    ----------
    circle : Circle
        Position, radius and containment as published (validated here).
    credible_level : float
        Probability content of the region to build.

    Returns
    -------
    CircleModel

    Raises
    ------
    BadCoordinates
        Impossible radius or containment, or a region larger than
        :data:`MAX_RADIUS_DEG`.
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
    Connaughton et al. core and tail:

    >>> m = circle_model(Circle(85.32, 6.21, 3.97, 0.6827, convention="fermi_gbm_ground"))
    >>> round(m.radius90_deg, 2)
    11.38
    """
    conv = get_convention(circle.convention)
    radius = validate_radius(circle.radius_deg, what="error radius")
    containment = validate_containment(circle.containment)
    credible_level = validate_containment(credible_level, what="credible level")
    words = [f"{conv.label}: published radius {radius:.6g} deg at {_pct(containment)}"]
    if conv.documented_containment is not None and not math.isclose(
        containment, conv.documented_containment, abs_tol=5e-3
    ):
        words.append(
            f"(the notice's containment; the mission documents "
            f"{_pct(conv.documented_containment)})"
        )
    words.append(f"[{conv.meaning}; {conv.source}]")

    if circle.systematic_deg is not None:
        if conv.systematic is not None:
            raise ConventionError(
                f"convention {conv.name!r} applies its own systematic model; "
                "systematic_deg must be None"
            )
        sys_r = float(circle.systematic_deg)
        if not (math.isfinite(sys_r) and 0.0 <= sys_r < 180.0):
            raise BadCoordinates(f"systematic radius {sys_r!r} deg must be in [0, 180)")
        radius = validate_radius(math.hypot(radius, sys_r), what="total error radius")
        words.append(f"plus a {sys_r:.6g} deg systematic in quadrature: {radius:.6g} deg")

    if conv.systematic is None:
        try:
            sigma = fisher.sigma_for_radius(radius, containment)
        except ValueError as exc:
            raise BadCoordinates(str(exc)) from exc
        r_cl = fisher.radius_for_level(sigma, credible_level)
        r90 = fisher.radius_for_level(sigma, 0.9)
        _check_region_radius(r_cl, _pct(credible_level))
        words.append(
            f"Fisher (spherical Gaussian) model, sigma {sigma:.6g} deg; "
            f"{_pct(credible_level)} radius {r_cl:.6g} deg"
        )
        return CircleModel(sigma, r_cl, r90, "; ".join(words))

    mix = conv.systematic
    # Published statistical radius to a Gaussian width, then the 68 % systematic radii
    # with Connaughton et al.'s factor 0.66, combined in quadrature per component.
    sigma_stat = radius / fisher.gaussian_k(containment)
    sigmas = [
        math.hypot(sigma_stat, GBM_SIGMA_PER_R68 * mix.core_deg),
        math.hypot(sigma_stat, GBM_SIGMA_PER_R68 * mix.tail_deg),
    ]
    weights = [mix.core_weight, 1.0 - mix.core_weight]
    try:
        r_cl = fisher.mixture_radius(sigmas, weights, credible_level)
        r90 = fisher.mixture_radius(sigmas, weights, 0.9)
    except (OverflowError, ZeroDivisionError, ValueError) as exc:
        raise BadCoordinates(
            f"GBM error model has no solution for radius {radius!r} deg at containment "
            f"{containment!r}: {exc}") from exc
    _check_region_radius(r_cl, _pct(credible_level))
    sigma_eff = fisher.sigma_for_radius(r_cl, credible_level)
    words.append(
        f"systematic model {mix.source}: core {mix.core_deg} deg weight "
        f"{mix.core_weight:.3f}, tail {mix.tail_deg} deg (68 % radii), combined in "
        f"quadrature with sigma_stat {sigma_stat:.6g} deg (sigma = 0.66 R68); mixture of "
        f"Fisher laws with sigma {sigmas[0]:.6g} and {sigmas[1]:.6g} deg; "
        f"{_pct(credible_level)} radius {r_cl:.6g} deg; levels from the single Fisher law "
        f"with the same {_pct(credible_level)} radius, sigma {sigma_eff:.6g} deg"
    )
    return CircleModel(sigma_eff, r_cl, r90, "; ".join(words))
