"""Mission error conventions: what a published error radius means, and how it
becomes a 90 % region.

A parser fills :class:`mm_broker.core.models.Circle` with the radius *as published*, its
``containment`` *as the mission defines it* and a ``convention`` name from
:data:`CONVENTIONS`. :func:`skymaps.circle_model.circle_model` turns that into the
circle's radial law (:mod:`skymaps.radial`) and the radius holding the requested
credible level, and says in words what was done (``Region.convention``).

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

The mixture is the circle's law (:class:`skymaps.radial.FisherMixture`): its radius
at the credible level (the region's boundary), and every level and density reported
inside, are the mixture's own cumulative distribution and density, exact on the
sphere. ``Region.sigma_deg`` is only a summary (the single Fisher width with the same
radius); ``Region.radial_model`` carries the mixture.

How this differs from gwcelery's reading of the same model
(``create_external_skymap`` / ``_fisher`` in ``gwcelery/tasks/external_skymaps.py``):
gwcelery takes the notice's radius as the 68 % statistical radius, ``kappa = 1 /
(0.4356 (R_stat**2 + R_sys**2))``; we convert the 1-sigma (68.27 %) radius with the
Gaussian factor, ``sigma_stat = r / 1.515 = 0.660 r``, the same width to 0.1 %. The
differences are (i) final positions (RoboBA parameters above, not Table 3 row 2);
(ii) gwcelery raises every error to at least 0.08 deg and samples the mixture on an
adaptive HEALPix grid (``bayestar_adaptive_grid``, 8 rounds), where we evaluate the
mixture analytically at the alert's position.

IceCube
-------
IceCube track notices publish a 90 % and a 50 % radius, statistical only
(``src_error_90``, ``src_error_50``). Their ratio on real notices is 0.36-0.39, far
from a Gaussian's 0.549 (:data:`skymaps.radial.GAUSSIAN_R50_PER_R90`): a Fisher law
through the 90 % radius puts the published 50 % radius at a level of about 0.26. The
law is instead the two-parameter King profile fitted exactly to both radii
(:func:`skymaps.radial.king_from_radii`); a pair at the Gaussian ratio (cascades,
whose radii are Gaussian) gives the Fisher law. Where a notice gives only the 90 %
radius (GCN JSON), the profile takes :data:`ICECUBE_TYPICAL_R50_PER_R90`.

Statistical-only IceCube errors (``icecube_track``, ``icecube_90``) get a systematic
radius of :data:`ICECUBE_SYSTEMATIC_R90_DEG` at 90 % (our choice, not IceCube's
statement: an upper bound on the absolute pointing offset IceCube measured with the
Moon's cosmic-ray shadow, Aartsen et al. 2014, PRD 89, 102004), added in quadrature to
each published radius at its containment, scaled as a Gaussian:
``r_c -> hypot(r_c, 0.2 deg * k(c) / k(0.9))``. A ``systematic_deg`` given by the
notice replaces it. Asymmetric ``+a -b`` errors are boxes covered as the rectangles
follow-up programmes observe (Stein et al. 2023, MNRAS 521, 5046), each offset with
the same systematic in quadrature (``box_shape = "rectangle"``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mm_broker.core.errors import ConventionError

__all__ = [
    "CONVENTIONS",
    "GBM_SIGMA_PER_R68",
    "ICECUBE_SYSTEMATIC_R90_DEG",
    "ICECUBE_TYPICAL_R50_PER_R90",
    "MAX_RADIUS_DEG",
    "RECTANGLE_SUFFIX",
    "Convention",
    "ConventionError",
    "SystematicMixture",
    "get_convention",
]

#: Fisher width per 68 % radius used by Connaughton et al. (2015): sqrt(0.4356).
GBM_SIGMA_PER_R68 = 0.66

#: Systematic radius (90 %, degrees) added to IceCube's statistical-only errors.
ICECUBE_SYSTEMATIC_R90_DEG = 0.2

#: ``r50 / r90`` of IceCube track notices that give only the 90 % radius: the middle
#: of the real notices' 0.36-0.39 (``src_error_50 / src_error_90`` of the Gold and
#: Bronze VOEvents under ``../shared/data/notices``).
ICECUBE_TYPICAL_R50_PER_R90 = 0.375

#: Largest credible-region radius we build (degrees). Beyond it a "localisation"
#: covers most of the sky; mocpy's cone coverage is also unreliable above ~160 deg.
MAX_RADIUS_DEG = 150.0


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
        ``"contour"`` (the offsets are the extents of the credible contour) or
        ``"rectangle"`` (the RA/Dec rectangle itself is the region: IceCube's, as
        follow-up programmes cover them, and ``<name>_rectangle_bbox``).
    systematic_r90_deg : float or None
        Systematic radius at 90 % added to statistical-only errors (IceCube).
    typical_r50_per_r90 : float or None
        Ratio of the 50 % to the 90 % radius to use when a notice gives only one
        radius, for missions whose radial profile is not Gaussian (IceCube).
    """

    name: str
    label: str
    documented_containment: float | None
    meaning: str
    source: str
    systematic: SystematicMixture | None = None
    box_shape: str = "contour"
    systematic_r90_deg: float | None = None
    typical_r50_per_r90: float | None = None


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
        box_shape="rectangle", systematic_r90_deg=ICECUBE_SYSTEMATIC_R90_DEG,
        typical_r50_per_r90=ICECUBE_TYPICAL_R50_PER_R90,
    ),
    Convention(
        "icecube_cascade", "IceCube cascade alert", 0.9,
        "90 % radius, statistical and systematic combined",
        "AMON/IceCube cascade VOEvent parameter src_error_90 ('combined statistical "
        "and the systematic (90% containment)')",
        box_shape="rectangle",
    ),
    Convention(
        "icecube_90", "IceCube alert (GCN JSON)", 0.9,
        "90 % errors (notice's containment_probability), statistical only",
        _UNIFIED_SOURCE + "; https://gcn.nasa.gov/missions/icecube",
        box_shape="rectangle", systematic_r90_deg=ICECUBE_SYSTEMATIC_R90_DEG,
        typical_r50_per_r90=ICECUBE_TYPICAL_R50_PER_R90,
    ),
    Convention(
        "amon_nu_em", "AMON neutrino-electromagnetic coincidence (NU_EM_COINC)", None,
        "radius at the containment the notice states (src_error_90, src_error_50)",
        "AMON NU_EM_COINC VOEvents, https://gcn.gsfc.nasa.gov/amon_nu_em_coinc.html",
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
