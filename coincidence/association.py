"""The counterpart record: one alert associated with one event version.

An :class:`Association` is a small named, frozen record (in the manner of
ligo.skymap's ``CrossmatchResult``). Its identity is
``(event_id, region_version, alert_id)`` (:attr:`Association.key`); ``status`` says
whether that association currently holds (``candidate``) or has been withdrawn by an
update or a retraction (``withdrawn``). :meth:`Association.to_record` gives the
public counterpart record of the contract (``counterparts.jsonl`` and the Avro
topics), times in ISO 8601 UTC and angles in degrees.

Fields that do not apply are ``None``, never a number standing for "nothing":
``separation_deg`` and ``separation_ratio`` exist for circles only,
``prob_density_deg2`` for maps only, ``p_chance`` and its inputs only when a rate of
new transients was available.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coincidence.times import iso_utc
from mm_broker.core.models import Messenger, Role

#: The GW distance fields of the record (:mod:`coincidence.distance_figures`).
DISTANCE_RECORD_FIELDS = (
    "dist_mean_mpc", "dist_std_mpc", "dist_median_mpc", "dist_lo_mpc", "dist_hi_mpc",
    "prob_density_vol_mpc3", "host_name", "host_catalogue", "host_distance_mpc",
    "host_distance_err_mpc", "host_offset_arcsec", "host_offset_kpc",
    "host_distance_p_value", "galaxy_prob",
)


class Status(enum.StrEnum):
    """State of an association."""

    CANDIDATE = "candidate"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class Association:
    """One alert associated with one event version.

    Attributes
    ----------
    event_id : str
        Event identifier across notices (e.g. ``"LVK:S240115ak"``).
    messenger : Messenger
    mission, instrument : str
    notice_version : int
        Version of the notice whose region gave this association.
    region_version : int
        Version of the region (part of the identity).
    role : Role
        ``observation``, or ``test``: test associations go to ``mm.test.*`` only
        (:attr:`is_test`).
    status : Status
    trigger_time : datetime
        Event t0, UTC.
    survey : str
        ``"ZTF"``, ``"LSST"``, ...
    object_id, alert_id : str
    alert_time : datetime
        Observation time of the alert, UTC.
    ra, dec : float
        Alert position, degrees.
    delta_t_s : float
        ``alert_time − trigger_time``, seconds (negative before t0).
    separation_deg : float or None
        Angular distance to the circle's centre, degrees (circles only).
    separation_ratio : float or None
        ``separation_deg / radius90_deg`` (circles only).
    credible_level : float or None
        Smallest credible level whose region contains the alert (``None`` if the
        region's model gives none at the position).
    prob_density_deg2 : float or None
        Probability per deg² at the alert (maps only).
    p_chance : float or None
        Chance-coincidence probability (:mod:`coincidence.pchance`).
    rank : int
        1 for the most promising candidate of the event version at emission time
        (:mod:`coincidence.rank`).
    rate_per_deg2_day : float or None
        ρ used for ``p_chance``, new transients per deg² per day.
    searched_area_deg2 : float or None
        A_s used for ``p_chance``, deg².
    elapsed_days : float
        Δt from the window's opening (``t0 − before_s``) to the alert, days.
    region_area_deg2 : float
        A_R, area of the searched region, deg².
    window_days : float
        T, length of the time window, days.
    quality : bool
        The alert's quality flag from ``fink_core`` (True: passes the quality cuts).
    dist_mean_mpc, dist_std_mpc : float or None
        GW maps with a distance ansatz: mean and standard deviation of the luminosity
        distance posterior along the alert's line of sight, Mpc
        (:mod:`coincidence.distance_figures`, as every field below).
    dist_median_mpc, dist_lo_mpc, dist_hi_mpc : float or None
        Its median and 5 % / 95 % quantiles (the 90 % interval), Mpc.
    prob_density_vol_mpc3 : float or None
        3D posterior density ``dP/dV`` at the host galaxy (position and distance),
        Mpc**-3 (Singer et al. 2016).
    host_name, host_catalogue : str or None
        The most probable catalogued host near the alert, and its catalogue file.
    host_distance_mpc, host_distance_err_mpc : float or None
        Its luminosity distance and 1-sigma error, Mpc.
    host_offset_arcsec, host_offset_kpc : float or None
        Offset of the alert from the host, angular and projected.
    host_distance_p_value : float or None
        Two-sided consistency of the host's distance with the posterior.
    galaxy_prob : float or None
        Share of the region's galaxy-weighted probability held by the galaxies near
        the alert (0: none near; None: no catalogue or no distance ansatz).
    """

    event_id: str
    messenger: Messenger
    mission: str
    instrument: str
    notice_version: int
    region_version: int
    role: Role
    status: Status
    trigger_time: datetime
    survey: str
    object_id: str
    alert_id: str
    alert_time: datetime
    ra: float
    dec: float
    delta_t_s: float
    separation_deg: float | None
    separation_ratio: float | None
    credible_level: float | None
    prob_density_deg2: float | None
    p_chance: float | None
    rank: int
    rate_per_deg2_day: float | None
    searched_area_deg2: float | None
    elapsed_days: float
    region_area_deg2: float
    window_days: float
    quality: bool = True
    dist_mean_mpc: float | None = None
    dist_std_mpc: float | None = None
    dist_median_mpc: float | None = None
    dist_lo_mpc: float | None = None
    dist_hi_mpc: float | None = None
    prob_density_vol_mpc3: float | None = None
    host_name: str | None = None
    host_catalogue: str | None = None
    host_distance_mpc: float | None = None
    host_distance_err_mpc: float | None = None
    host_offset_arcsec: float | None = None
    host_offset_kpc: float | None = None
    host_distance_p_value: float | None = None
    galaxy_prob: float | None = None

    @property
    def key(self) -> tuple[str, int, str]:
        """Identity of the association: ``(event_id, region_version, alert_id)``."""
        return (self.event_id, self.region_version, self.alert_id)

    @property
    def is_test(self) -> bool:
        """True for test events: publish on ``mm.test.*`` only, never as science."""
        return self.role is not Role.OBSERVATION

    def to_record(self) -> dict[str, Any]:
        """The public counterpart record (JSON-ready).

        Returns
        -------
        dict
            The contract fields in contract order, then the inputs of ``p_chance``
            and the extra fields; enums as their values, times as ISO 8601 UTC
            strings with a ``Z`` suffix.
        """
        return {
            "event_id": self.event_id,
            "messenger": self.messenger.value,
            "mission": self.mission,
            "instrument": self.instrument,
            "notice_version": self.notice_version,
            "region_version": self.region_version,
            "role": self.role.value,
            "status": self.status.value,
            "trigger_time": iso_utc(self.trigger_time),
            "survey": self.survey,
            "object_id": self.object_id,
            "alert_id": self.alert_id,
            "alert_time": iso_utc(self.alert_time),
            "ra": self.ra,
            "dec": self.dec,
            "delta_t_s": self.delta_t_s,
            "separation_deg": self.separation_deg,
            "credible_level": self.credible_level,
            "prob_density_deg2": self.prob_density_deg2,
            "p_chance": self.p_chance,
            "rank": self.rank,
            "separation_ratio": self.separation_ratio,
            "rate_per_deg2_day": self.rate_per_deg2_day,
            "searched_area_deg2": self.searched_area_deg2,
            "elapsed_days": self.elapsed_days,
            "region_area_deg2": self.region_area_deg2,
            "window_days": self.window_days,
            "quality": self.quality,
            **{name: getattr(self, name) for name in DISTANCE_RECORD_FIELDS},
        }
