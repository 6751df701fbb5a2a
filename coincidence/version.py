"""One event's active region version, prepared for matching, and the records it gives.

:func:`prepare` checks a region version and prepares it once: its time window in
nanoseconds and its probability model. The model is the geometry package's
(:mod:`skymaps.lookup`: the circle's radial law of :mod:`skymaps.radial` - Fisher,
the Fermi GBM core + tail mixture, IceCube's King profile - and the tiles' values for
maps, ellipses and boxes); :mod:`coincidence` has no model of its own.
:func:`associations` turns alerts that matched the version into
:class:`~coincidence.association.Association` records with their figures: separation
(circles), credible level, probability density (not for circles), searched area and
chance probability (:mod:`coincidence.pchance`).

The alert's own position error
------------------------------
Each alert's position error is folded into a circle's law before its level, density
and searched area are taken (:mod:`skymaps.lookup`): this matters for arcsecond
circles (Swift XRT, UVOT, Einstein Probe FXT). Alerts carry no error of their own in
the columns the engine reads, so the error is the documented default of the alert's
survey, :data:`ALERT_POSITION_ERROR_ARCSEC` (1-sigma per axis), or
:data:`DEFAULT_ALERT_POSITION_ERROR_ARCSEC` for a survey not listed.

Outside the model
-----------------
A position that the region's model does not describe (outside every tile of a map,
ellipse or box) has no credible level, density, searched area or chance probability:
``None`` in the record. It is not given the level 1.0 and density 0.0 that
:func:`skymaps.credible_level_at` reports there: a searched area of zero would make a
chance probability of zero, the best candidate there is. Alerts inside a region's
ranges are inside its tiles (tiles cover the region), so this only concerns regions
without tiles (e.g. one read from a bare MOC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from coincidence.alerts import AlertBatch
from coincidence.association import Association, Status
from coincidence.distance_figures import (
    DistanceModel,
    HostSearch,
    distance_figures,
    prepare_distance,
)
from coincidence.index import checked_ranges
from coincidence.pchance import RateEstimate, elapsed_days, p_chance
from coincidence.rules import Window
from coincidence.times import NS_PER_S, from_ns, to_ns
from mm_broker.core.models import Messenger, Notice, Region, Role, Significance
from skymaps.lookup import (
    AreaFn,
    level_density_at,
    searched_area_model,
    separation_deg,
    with_sorted_tiles,
)

__all__ = [
    "ALERT_POSITION_ERROR_ARCSEC",
    "DEFAULT_ALERT_POSITION_ERROR_ARCSEC",
    "ActiveVersion",
    "EventMeta",
    "alert_position_error_deg",
    "associations",
    "prepare",
]

#: Position error of one alert (1-sigma per axis, arcsec) by survey (upper case).
#: ZTF: 0.2" - the difference-image PSF-fit positions of faint transients scatter by
#: 0.1-0.3" (ZTF's absolute astrometry, 45-85 mas rms per axis for bright stars,
#: Masci et al. 2019, PASP 131, 018003, is a lower bound). LSST: 0.1" - DIASource
#: positions near the detection limit (the bright-star requirement is 10-50 mas,
#: LSST Science Requirements Document, LPM-17).
ALERT_POSITION_ERROR_ARCSEC: dict[str, float] = {"ZTF": 0.2, "LSST": 0.1}

#: Position error (1-sigma per axis, arcsec) of an alert from a survey not listed in
#: :data:`ALERT_POSITION_ERROR_ARCSEC`: the upper end of survey alerts' errors.
DEFAULT_ALERT_POSITION_ERROR_ARCSEC = 1.0


def alert_position_error_deg(alerts: AlertBatch) -> npt.NDArray[np.float64]:
    """Position error of each alert (1-sigma per axis, degrees), from its survey.

    Examples
    --------
    >>> batch = AlertBatch.from_arrays(alert_id=["1", "2"], object_id=["a", "b"],
    ...     survey=["ZTF", "Other"], ra=[0.0, 0.0], dec=[0.0, 0.0],
    ...     time_ns=[0, 0], first_ns=[0, 0])
    >>> (alert_position_error_deg(batch) * 3600).round(6).tolist()
    [0.2, 1.0]
    """
    arcsec = [ALERT_POSITION_ERROR_ARCSEC.get(str(s).upper(),
                                              DEFAULT_ALERT_POSITION_ERROR_ARCSEC)
              for s in alerts.survey]
    return np.asarray(arcsec, dtype=np.float64) / 3600.0


@dataclass(frozen=True)
class EventMeta:
    """What the engine needs to know of an event's notice.

    Attributes
    ----------
    event_id : str
    messenger : Messenger
    mission, instrument : str
    trigger_time : datetime
        t0, timezone-aware.
    notice_version : int
        Version of the notice that gave the region.
    role : Role
        ``test`` (and ``utility``) events are flagged in every association.
    significance : Significance
        FAR, p_astro, HasNS, ... of the notice (:class:`mm_broker.core.models.Significance`),
        for the rules that weigh candidates by the event's significance.
    """

    event_id: str
    messenger: Messenger
    mission: str
    instrument: str
    trigger_time: datetime
    notice_version: int
    role: Role = Role.OBSERVATION
    significance: Significance = field(default_factory=Significance)

    @classmethod
    def from_notice(cls, notice: Notice) -> EventMeta:
        """The meta of a parsed notice."""
        return cls(
            event_id=notice.event_id,
            messenger=notice.messenger,
            mission=notice.mission,
            instrument=notice.instrument,
            trigger_time=notice.trigger_time,
            notice_version=notice.version,
            role=notice.role,
            significance=Significance.from_mapping(notice.significance),
        )


@dataclass(eq=False)
class ActiveVersion:
    """The active region version of an event, prepared for matching.

    Attributes
    ----------
    meta : EventMeta
    region_version : int
    region : Region
        The region, its tiles sorted for lookups (:func:`skymaps.with_sorted_tiles`).
    window : Window
    areas : callable
        ``credible level → searched area (deg²)`` of the region
        (:func:`skymaps.searched_area_model`).
    t0_ns, opens_ns, closes_ns : int
        Trigger time and the closed window ``[opens_ns, closes_ns]``, ns.
    candidates : dict of str to Association
        Current candidates of this version, by ``alert_id`` (kept by the engine).
    distance : DistanceModel or None
        The GW distance ansatz and its galaxies (maps with distance layers only).
    """

    meta: EventMeta
    region_version: int
    region: Region
    window: Window
    areas: AreaFn
    t0_ns: int
    opens_ns: int
    closes_ns: int
    candidates: dict[str, Association] = field(default_factory=dict)
    distance: DistanceModel | None = None


def prepare(meta: EventMeta, region_version: int, region: Region, window: Window,
            hosts: HostSearch | None = None) -> ActiveVersion:
    """Check and prepare a region version (raises before anything is kept).

    ``hosts``: the galaxy catalogue for the distance figures of GW maps
    (:mod:`coincidence.distance_figures`).

    Raises
    ------
    ValueError
        If the region's ranges are not sorted, disjoint and on the sphere, or its
        tiles overlap or differ in length from their values.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from mm_broker.core.models import Circle
    >>> from skymaps import region_from_circle
    >>> meta = EventMeta("GRB:1", Messenger.GRB, "Swift", "BAT",
    ...                  datetime(2024, 1, 1, tzinfo=UTC), notice_version=1)
    >>> window = Window(before_s=600.0, after_s=86_400.0, newness_s=600.0)
    >>> region = region_from_circle(Circle(10.0, 0.0, 0.05, 0.9, convention="swift_bat"))
    >>> version = prepare(meta, 1, region, window)
    >>> (version.closes_ns - version.opens_ns) // 10**9
    87000
    >>> round(float(version.areas(0.9)), 5)  # the 90 % cap: pi (0.05 deg)**2
    0.00785
    """
    checked_ranges(region, (meta.event_id, region_version))
    region = with_sorted_tiles(region)
    t0 = to_ns(meta.trigger_time)
    return ActiveVersion(
        meta=meta,
        region_version=region_version,
        region=region,
        window=window,
        areas=searched_area_model(region),
        t0_ns=t0,
        opens_ns=window.opens_ns(t0),
        closes_ns=window.closes_ns(t0),
        distance=prepare_distance(region, hosts),
    )


def associations(
    version: ActiveVersion, alerts: AlertBatch, rate: RateEstimate | None
) -> list[Association]:
    """Candidate records of alerts already known to match the version.

    Parameters
    ----------
    version : ActiveVersion
    alerts : AlertBatch
        Alerts inside the region and its time window (the caller checked both).
    rate : RateEstimate or None
        Rate of new transients; without one there is no ``p_chance``.

    Returns
    -------
    list of Association
        One ``candidate`` per alert, in the alerts' order, ``rank`` 0 (the engine
        ranks them).
    """
    if len(alerts) == 0:
        return []
    region = version.region
    errors = alert_position_error_deg(alerts)
    level, density, described = level_density_at(region, alerts.ra, alerts.dec,
                                                  position_error_deg=errors)
    level = np.where(described, level, np.nan)
    density = np.where(described, density, np.nan)
    searched = version.areas(level, errors)
    elapsed = elapsed_days(alerts.time_ns, version.opens_ns)
    window_days = version.window.duration_days
    p = np.full(len(alerts), np.nan)
    has_area = np.isfinite(searched)
    if rate is not None and np.any(has_area):
        p[has_area] = p_chance(
            rate.rate_per_deg2_day,
            searched[has_area],
            elapsed[has_area],
            region_area_deg2=region.area_deg2,
            window_days=window_days,
        )
    circle = (region.kind == "circle" and region.center_ra is not None
              and region.center_dec is not None)
    sep = separation_deg(region, alerts.ra, alerts.dec) if circle else None
    meta = version.meta
    figures = (distance_figures(version.distance, alerts.ra, alerts.dec)
               if version.distance is not None else [{}] * len(alerts))
    out: list[Association] = []
    for i in range(len(alerts)):
        sep_i = None if sep is None else float(sep[i])
        ratio = sep_i / region.radius90_deg if sep_i is not None and region.radius90_deg else None
        out.append(
            Association(
                event_id=meta.event_id,
                messenger=meta.messenger,
                mission=meta.mission,
                instrument=meta.instrument,
                notice_version=meta.notice_version,
                region_version=version.region_version,
                role=meta.role,
                status=Status.CANDIDATE,
                trigger_time=meta.trigger_time,
                survey=str(alerts.survey[i]),
                object_id=str(alerts.object_id[i]),
                alert_id=str(alerts.alert_id[i]),
                alert_time=from_ns(int(alerts.time_ns[i])),
                ra=float(alerts.ra[i]),
                dec=float(alerts.dec[i]),
                delta_t_s=(int(alerts.time_ns[i]) - version.t0_ns) / NS_PER_S,
                separation_deg=sep_i,
                separation_ratio=ratio,
                credible_level=_opt(level[i]),
                prob_density_deg2=None if circle else _opt(density[i]),
                p_chance=_opt(p[i]),
                rank=0,
                rate_per_deg2_day=None if rate is None else rate.rate_per_deg2_day,
                searched_area_deg2=_opt(searched[i]),
                elapsed_days=float(elapsed[i]),
                region_area_deg2=float(region.area_deg2),
                window_days=window_days,
                quality=bool(alerts.quality[i]),
                **figures[i],
            )
        )
    return out


def _opt(value: float) -> float | None:
    """A float, or ``None`` for NaN (no value)."""
    return None if math.isnan(value) else float(value)
