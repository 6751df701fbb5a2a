"""The records that travel between the packages of mm_broker.

Every package speaks these types and nothing else:

* ``listeners/`` parsers turn bytes into a :class:`Notice`;
* ``skymaps/`` turns a notice's localisation into a :class:`Region`;
* ``coincidence/`` turns an alert and an active region into an :class:`Association`.

They are frozen dataclasses: a value, once made, is never changed in place.
Angles are degrees, times are :class:`datetime.datetime` in UTC (timezone-aware).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

#: HEALPix order at which regions are stored and joined (nested scheme).
MAX_ORDER = 29

#: The one dtype of order-29 nested HEALPix indices and range bounds, everywhere
#: (regions, tiles, alerts' ``ipix29``, the join's boundaries). Signed 64-bit: every
#: index and bound is at most ``12 * 4**29`` (about 3.5e18) < 2**63, PostgreSQL's
#: ``int8`` and Parquet's ``int64`` are signed, and healpy returns int64. One dtype on
#: both sides matters: numpy compares or searches an int64 array against a uint64
#: one by converting both to float64, which cannot tell indices ~3e18 apart that
#: differ by less than 512.
IPIX_DTYPE = np.int64


class Messenger(enum.StrEnum):
    """Kind of trigger: gravitational wave, gamma-ray burst, neutrino, X-ray, fast
    radio burst (radio transients announced through GCN: CHIME/FRB, ...)."""

    GW = "GW"
    GRB = "GRB"
    NU = "NU"
    X = "X"
    FRB = "FRB"


class Role(enum.StrEnum):
    """VOEvent-style role. Only ``observation`` notices give science regions."""

    OBSERVATION = "observation"
    TEST = "test"
    UTILITY = "utility"


# --------------------------------------------------------------------------- #
# Localisations, as a mission gives them (before any conversion to 90 %).
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Circle:
    """A circular error region, as published by the mission.

    Attributes
    ----------
    ra, dec : float
        Centre, ICRS degrees.
    radius_deg : float
        Radius as published (statistical part only when ``systematic_deg`` is set).
    containment : float
        Probability content of ``radius_deg`` as the mission defines it
        (e.g. 0.6827 for a 1-sigma GBM radius, 0.9 for Swift BAT).
    systematic_deg : float or None
        Systematic radius to combine with the statistical one, if the mission
        publishes one separately (``None`` when already included).
    convention : str
        Mission convention identifier (e.g. ``"fermi_gbm_1sigma_stat"``), used by
        :mod:`skymaps` to choose the conversion to a 90 % region.
    radius50_deg : float or None
        The 50 % radius, when the notice publishes it besides ``radius_deg``
        (IceCube ``src_error_50``, AMON): :mod:`skymaps` then fits its radial
        profile to both radii.
    """

    ra: float
    dec: float
    radius_deg: float
    containment: float
    systematic_deg: float | None = None
    convention: str = "generic"
    radius50_deg: float | None = None


@dataclass(frozen=True)
class Ellipse:
    """An elliptical error region (semi-axes and position angle east of north)."""

    ra: float
    dec: float
    a_deg: float
    b_deg: float
    pa_deg: float
    containment: float
    convention: str = "generic"


@dataclass(frozen=True)
class Box:
    """Asymmetric errors in RA and Dec (IceCube style), each a containment bound.

    ``ra_minus``/``ra_plus``/``dec_minus``/``dec_plus`` are positive offsets in
    degrees (RA offsets are in RA degrees, not on-sky).
    """

    ra: float
    dec: float
    ra_minus: float
    ra_plus: float
    dec_minus: float
    dec_plus: float
    containment: float
    convention: str = "generic"


@dataclass(frozen=True)
class SkyMap:
    """A HEALPix probability sky map, kept as the bytes the mission sent.

    Attributes
    ----------
    data : bytes or None
        FITS bytes (multi-order or flat, possibly gzip-compressed).
    url : str or None
        Where the map may be fetched from, if it was not embedded.
    """

    data: bytes | None
    url: str | None = None
    convention: str = "generic"


Localisation = Circle | Ellipse | Box | SkyMap


@dataclass(frozen=True)
class Notice:
    """One parsed notice: what a mission said about one event at one time.

    Attributes
    ----------
    event_id : str
        One identifier per astrophysical event across all its notices,
        e.g. ``"Fermi-GBM:727029942"`` or ``"LVK:S230518h"``.
    messenger : Messenger
    mission, instrument : str
    notice_type : str
        Mission's notice type (``"FERMI_GBM_FIN_POS"``, ``"PRELIMINARY"``, ...).
    role : Role
    trigger_time : datetime
        t0 of the event (UTC).
    issue_time : datetime
        When the notice was issued (UTC); ordering of notice versions uses it.
    version : int
        Sequence / version number within the event (higher is newer).
    retraction : bool
        The notice withdraws the event.
    localisation : Localisation or None
        ``None`` only for retractions.
    ivorn : str or None
        IVORN of a VOEvent notice (for citations).
    skymap_url : str or None
        The mission's official sky map, when the notice links one instead of (or
        besides) embedding it (LVK VOEvent ``skymap_fits``, GCN JSON ``healpix_url``,
        Fermi GBM ``HealPix_URL``). Parsers never fetch it: the application floor's
        ingest does (:mod:`mm_broker.app.skymap_fetch`), and the fetched map then
        replaces ``localisation`` (the team's map wins over a circle). ``None`` when
        no map is linked or the map is embedded.
    significance : dict
        Mission significance figures where given (``far_hz``, ``signalness``,
        ``significant``, ``classification``, ...).
    extra : dict
        Other facts kept as given (JSON-serialisable).
    """

    event_id: str
    messenger: Messenger
    mission: str
    instrument: str
    notice_type: str
    role: Role
    trigger_time: datetime
    issue_time: datetime
    version: int
    retraction: bool
    localisation: Localisation | None
    ivorn: str | None = None
    significance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    skymap_url: str | None = None


# --------------------------------------------------------------------------- #
# Regions (output of skymaps/)
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, eq=False)
class DistanceLayers:
    """The distance ansatz of a 3D GW sky map, per cell (Singer et al. 2016).

    Along the line of sight of a cell the luminosity distance ``r`` has the posterior
    ``p(r) = norm * r**2 * exp(-(r - mu)**2 / (2 sigma**2)) / (sqrt(2 pi) sigma)``
    (``ligo.skymap.distance.conditional_pdf``). Cells without distance information
    carry ``mu = inf``, ``sigma = 1``, ``norm = 0`` (ligo.skymap's convention).

    Attributes
    ----------
    ranges : ndarray of int64 (IPIX_DTYPE), shape (m, 2)
        The cells, as sorted, disjoint order-29 ranges (those of the region's tiles).
    mu, sigma : ndarray of float64, shape (m,)
        ``DISTMU`` and ``DISTSIGMA``, Mpc.
    norm : ndarray of float64, shape (m,)
        ``DISTNORM``, Mpc**-2.
    """

    ranges: npt.NDArray[np.int64]
    mu: npt.NDArray[np.float64]
    sigma: npt.NDArray[np.float64]
    norm: npt.NDArray[np.float64]


@dataclass(frozen=True)
class Significance:
    """The significance figures of a notice, typed for the rules.

    Built from ``Notice.significance`` (or its stored JSON) by :meth:`from_mapping`;
    a figure the notice does not give is ``None``.

    Attributes
    ----------
    far_hz : float or None
        False-alarm rate, Hz (``far_hz``).
    p_astro : float or None
        Probability that the event is astrophysical: the notice's ``p_astro`` if
        given, else ``1 - classification["Terrestrial"]`` (LVK).
    has_ns : float or None
        Probability that one component is a neutron star (LVK ``properties.HasNS``).
    has_remnant : float or None
        Probability of matter left outside the final compact object
        (``properties.HasRemnant``).
    signalness : float or None
        Neutrino signalness (IceCube, KM3NeT).
    significant : bool or None
        The mission's own significance flag (LVK ``significant``).
    classification : dict of str to float
        Source classes and their probabilities (LVK: BNS, NSBH, BBH, Terrestrial).
    """

    far_hz: float | None = None
    p_astro: float | None = None
    has_ns: float | None = None
    has_remnant: float | None = None
    signalness: float | None = None
    significant: bool | None = None
    classification: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, significance: dict[str, Any] | None) -> Significance:
        """The typed figures of a notice's ``significance`` mapping.

        Examples
        --------
        >>> s = Significance.from_mapping({"far_hz": 1e-9, "significant": True,
        ...     "classification": {"BNS": 0.9, "Terrestrial": 0.1},
        ...     "properties": {"HasNS": 1.0, "HasRemnant": 0.8}})
        >>> s.far_hz, round(s.p_astro, 3), s.has_ns, s.significant
        (1e-09, 0.9, 1.0, True)
        >>> Significance.from_mapping(None).far_hz is None
        True
        """
        sig = significance or {}
        classification = {str(k): float(v) for k, v in _table(sig.get("classification")).items()
                          if _number(v) is not None}
        properties = _table(sig.get("properties"))
        p_astro = _number(sig.get("p_astro"))
        if p_astro is None and "Terrestrial" in classification:
            p_astro = 1.0 - classification["Terrestrial"]
        significant = sig.get("significant")
        return cls(
            far_hz=_number(sig.get("far_hz")),
            p_astro=p_astro,
            has_ns=_number(properties.get("HasNS")),
            has_remnant=_number(properties.get("HasRemnant")),
            signalness=_number(sig.get("signalness")),
            significant=significant if isinstance(significant, bool) else None,
            classification=classification,
        )


def _table(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    """A finite float, or ``None`` (booleans and text are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


@dataclass(frozen=True, eq=False)
class Region:
    """A 90 % (by default) credible region as order-29 nested HEALPix ranges.

    Attributes
    ----------
    kind : str
        ``"circle"``, ``"ellipse"``, ``"box"`` or ``"skymap"``.
    ranges : ndarray of int64 (IPIX_DTYPE), shape (n, 2)
        Sorted, disjoint half-open ``[lo, hi)`` order-29 nested index ranges
        covering the region at ``credible_level``.
    area_deg2 : float
        Area of the region in square degrees.
    credible_level : float
        Probability content of the region (0.9 by default).
    tile_ranges : ndarray of int64 (IPIX_DTYPE), shape (m, 2)
        Tiles covering (at least) the region, as order-29 ranges; each tile carries
        one credible level and one probability density below.
    tile_credible_level : ndarray of float64, shape (m,)
        Smallest credible level whose region contains the tile.
    tile_density_deg2 : ndarray of float64, shape (m,)
        Probability per square degree in the tile (maps); for circles, the
        density of the model used for the conversion.
    center_ra, center_dec, radius90_deg : float or None
        For circles: centre and the 90 % radius.
    sigma_deg : float or None
        For circles: the width of the Fisher (spherical Gaussian) law with the same
        radius at ``credible_level`` (``None`` otherwise); the law itself when
        ``radial_model`` is empty.
    radial_model : dict
        For circles: the radial law giving levels and densities, as stored
        (:func:`skymaps.radial.law_from_dict`: Fisher, Fermi GBM core + tail
        mixture, King profile); empty for other kinds and for circles stored before
        it existed (their law is the Fisher law of ``sigma_deg``).
    convention : str
        What was done to reach the 90 % region, in words a user can read.
    distance : dict
        GW distance moments (``distmean``, ``diststd``, Mpc) where known.
    distance_layers : DistanceLayers or None
        Per-cell distance ansatz of a GW map (``DISTMU``, ``DISTSIGMA``,
        ``DISTNORM``), where the map has them.
    """

    kind: str
    ranges: npt.NDArray[np.int64]
    area_deg2: float
    credible_level: float
    tile_ranges: npt.NDArray[np.int64]
    tile_credible_level: npt.NDArray[np.float64]
    tile_density_deg2: npt.NDArray[np.float64]
    center_ra: float | None = None
    center_dec: float | None = None
    radius90_deg: float | None = None
    sigma_deg: float | None = None
    convention: str = ""
    distance: dict[str, float] = field(default_factory=dict)
    radial_model: dict[str, Any] = field(default_factory=dict)
    distance_layers: DistanceLayers | None = None
