r"""Chance-coincidence probability of a candidate counterpart.

Definition
----------
Inputs, with their units:

* ``ρ`` — rate density of **new, unrelated** transients in the alert stream, in
  transients per deg² per day (objects whose first detection falls in the period,
  per surveyed square degree, per calendar day), measured from the stream itself by
  :class:`TransientRate`;
* ``A_R`` — area of the region that is searched for the event version, deg²
  (``Region.area_deg2``, the 90 % region by default);
* ``T`` — length of the event's time window, days (``Window.duration_days``:
  20 d + 600 s by default);
* ``A_s`` — *searched area* of the candidate, deg²: the area of the smallest
  credible region of the event that contains the alert's position. For a map it is
  the area of all tiles whose credible level is at most the alert's (the greedy
  searched area of ligo.skymap); for a Gaussian circle of width σ it is the
  spherical cap whose radius is the alert's separation r, ``2π(1 − cos r)`` sr
  expressed in deg²;
* ``Δt`` — *elapsed time* of the candidate, days: alert time minus the opening of
  the window ``t0 − 600 s``.

Then, with ``v = A_s · Δt`` and ``V = A_R · T`` (both deg²·day)::

    Λ(v) = ρ · v · (1 + ln(V / v))        for 0 < v ≤ V,   Λ(0) = 0
    p_chance = 1 − exp(−Λ(v))

``Λ(v)`` is the expected number of unrelated new transients in the region and
window whose statistic ``A_s · Δt`` is at most the candidate's, and ``p_chance`` the
probability that at least one of them exists: the probability that chance alone
gives, for this event version, a candidate at least as close as this one.

The naive rectangle expectation ``μ = ρ · A_s · Δt`` — new transients inside the
searched area within the elapsed time — is the first term. It undercounts: a
background transient found later but closer, or earlier but farther, can be just as
"close", and counting only the rectangle ignores those trade-offs. The factor
``1 + ln(V / v)`` adds them; it vanishes at the corner ``A_s = A_R, Δt = T``, where
``Λ = ρ · A_R · T`` is the expected number of background transients in the whole
region and window.

Derivation (why this is calibrated)
-----------------------------------
Null hypothesis: unrelated new transients form a Poisson process of intensity ρ
(per deg² per day) over the region and window, uniform in area and time.

1. Map each background transient at position x and time t to
   ``(a, τ) = (A_s(x), Δt(t))``. The credible regions are nested and the set
   ``{x : A_s(x) ≤ a}`` has area ``a`` by construction, so a uniform position in
   the region gives ``a`` uniform on ``[0, A_R]``; ``τ`` is uniform on ``[0, T]``.
   The images therefore form a Poisson process of intensity ρ on the rectangle
   ``[0, A_R] × [0, T]``.
2. The number ``N(v)`` of background transients with ``a · τ ≤ v`` is Poisson with
   mean ρ times the area of ``{(a, τ) : a · τ ≤ v}``::

       ∫_0^{A_R} min(T, v / a) da = v + v · ln(A_R · T / v) = v · (1 + ln(V / v)),

   i.e. ``Λ(v)``.
3. Let ``v₁`` be the smallest statistic among the background candidates of the event
   version (its best candidate). ``P(v₁ ≤ v) = P(N(v) ≥ 1) = 1 − exp(−Λ(v))``,
   so ``p₁ = 1 − exp(−Λ(v₁))`` satisfies ``P(p₁ ≤ q) = q`` for every
   ``q ≤ 1 − exp(−ρ V)``: the best candidate's p_chance is uniform. With probability
   ``exp(−ρ V)`` there is no background candidate at all.

So p_chance is a per-event-version false-alarm probability: "how often would chance
give at least one candidate this good". It is uniform for the **best** candidate of
each event version under the null — that is what the calibration test checks — and
it is monotonic in ``A_s · Δt``, so it ranks candidates. It is *not* a per-candidate
p-value: among all candidates of an event, more than a fraction q have
``p_chance ≤ q`` when there are several.

Why not ``1 − exp(−ρ · A_s · Δt)``: for a single unrelated alert uniform in the
region and window, ``A_s · Δt / (A_R · T)`` is a product of two independent
uniforms, whose distribution function is ``u (1 − ln u)``, not ``u``; the naive
rectangle probability is anti-conservative for the best candidate (it reports too
small values), which is what the mis-scaled and naive variants of the calibration
test show.

Caveats, all conservative (p_chance too large, never too small):

* A region smaller on the sky than its MOC (pixelised border), a map's discrete
  tiles (the searched area includes the whole tile of the alert), and an event only
  partly covered by the survey all make ``P(p ≤ q) ≤ q``.
* Only the first alert of a new object is a draw from the null process; later
  alerts of the same object have a larger Δt and so a larger p_chance.
* ``A_s`` is clipped to ``A_R`` (positions on the MOC border beyond the 90 % level)
  and ``Δt`` to ``T``.

Units are part of the names: ``*_deg2``, ``*_days``, ``rate_per_deg2_day``. The only
conversion of time is :func:`elapsed_days`.

Examples
--------
At the corner of the region and window the log factor vanishes; with
ρ = 0.05 deg⁻² day⁻¹, ``A_s = A_R = 10`` deg², ``Δt = T = 2`` days, Λ = 1:

>>> round(float(p_chance(0.05, 10.0, 2.0, region_area_deg2=10.0, window_days=2.0)), 6)
0.632121

Inside a 100 deg², 20-day region and window, the same rectangle (10 deg², 2 days,
μ = 1) has Λ = 1 + ln(100) ≈ 5.605:

>>> round(float(expected_background(0.05, 10.0, 2.0, region_area_deg2=100.0,
...                                 window_days=20.0)), 4)
5.6052
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import healpy as hp
import numpy as np
import numpy.typing as npt

from coincidence.times import NS_PER_DAY

FloatArray = npt.NDArray[np.float64]

#: Square degrees in one steradian.
DEG2_PER_SR = (180.0 / math.pi) ** 2


def elapsed_days(alert_ns: npt.ArrayLike, window_opens_ns: npt.ArrayLike) -> FloatArray:
    """Elapsed time Δt in **days** from the window's opening to each alert.

    Parameters
    ----------
    alert_ns, window_opens_ns : array_like of int
        Nanoseconds since the Unix epoch.

    Examples
    --------
    >>> float(elapsed_days(2 * 86_400 * 10**9, 0)[()])
    2.0
    """
    delta = np.asarray(alert_ns, dtype=np.int64) - np.asarray(window_opens_ns, dtype=np.int64)
    result: FloatArray = delta / NS_PER_DAY
    return result


def expected_background(
    rate_per_deg2_day: npt.ArrayLike,
    searched_area_deg2: npt.ArrayLike,
    elapsed_days: npt.ArrayLike,
    *,
    region_area_deg2: npt.ArrayLike,
    window_days: npt.ArrayLike,
) -> FloatArray:
    """Expected number Λ of unrelated new transients at least as close as the candidate.

    ``Λ = ρ · v · (1 + ln(V / v))`` with ``v = A_s · Δt``, ``V = A_R · T`` (module
    docstring). All arguments broadcast.

    Parameters
    ----------
    rate_per_deg2_day : array_like
        ρ, new transients per deg² per day (>= 0).
    searched_area_deg2 : array_like
        A_s, deg² (>= 0; clipped to ``region_area_deg2``).
    elapsed_days : array_like
        Δt, days since the window opened (>= 0; clipped to ``window_days``).
    region_area_deg2 : array_like
        A_R, deg² (> 0).
    window_days : array_like
        T, days (> 0).

    Returns
    -------
    ndarray of float64
        Λ (dimensionless).

    Raises
    ------
    ValueError
        On a negative rate, area or elapsed time, or a non-positive region or window.
    """
    rate = np.asarray(rate_per_deg2_day, dtype=np.float64)
    area = np.asarray(searched_area_deg2, dtype=np.float64)
    dt = np.asarray(elapsed_days, dtype=np.float64)
    a_r = np.asarray(region_area_deg2, dtype=np.float64)
    t_w = np.asarray(window_days, dtype=np.float64)
    if np.any(~np.isfinite(rate)) or np.any(rate < 0):
        raise ValueError("rate_per_deg2_day must be finite and >= 0")
    if np.any(~(area >= 0)) or np.any(~(dt >= 0)):
        raise ValueError("searched_area_deg2 and elapsed_days must be >= 0 (and not NaN)")
    if np.any(~(a_r > 0)) or np.any(~(t_w > 0)):
        raise ValueError("region_area_deg2 and window_days must be > 0")
    v_max = a_r * t_w
    v = np.minimum(area, a_r) * np.minimum(dt, t_w)
    with np.errstate(divide="ignore", invalid="ignore"):
        shape = np.where(v > 0, v * (1.0 + np.log(v_max / v)), 0.0)
    result: FloatArray = rate * shape
    return result


def p_chance(
    rate_per_deg2_day: npt.ArrayLike,
    searched_area_deg2: npt.ArrayLike,
    elapsed_days: npt.ArrayLike,
    *,
    region_area_deg2: npt.ArrayLike,
    window_days: npt.ArrayLike,
) -> FloatArray:
    """Chance-coincidence probability ``1 − exp(−Λ)`` (see the module docstring).

    Parameters are those of :func:`expected_background`, with their units:
    per deg² per day, deg², days, deg², days.

    Returns
    -------
    ndarray of float64
        In ``[0, 1]``.

    Examples
    --------
    >>> round(float(p_chance(0.05, 10.0, 2.0, region_area_deg2=10.0, window_days=2.0)), 4)
    0.6321
    """
    lam = expected_background(
        rate_per_deg2_day,
        searched_area_deg2,
        elapsed_days,
        region_area_deg2=region_area_deg2,
        window_days=window_days,
    )
    result: FloatArray = -np.expm1(-lam)
    return result


# --------------------------------------------------------------------------- #
# The rate of new transients, measured from the stream
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class RateEstimate:
    """A rate density of new transients and what it was measured from.

    Attributes
    ----------
    rate_per_deg2_day : float
        ρ, new transients per deg² per day.
    n_new : int or None
        Number of new objects counted (``None`` for a fixed, configured rate).
    area_deg2 : float or None
        Surveyed area (footprint of the coarse cells that received alerts), deg².
    span_days : float or None
        Length of the period the count covers, days.
    end_ns : int or None
        End of that period (ns since the epoch).
    """

    rate_per_deg2_day: float
    n_new: int | None = None
    area_deg2: float | None = None
    span_days: float | None = None
    end_ns: int | None = None


class RateSource(Protocol):
    """What the engine needs of a rate: to be fed alerts and asked for ρ."""

    def observe(
        self,
        time_ns: npt.NDArray[np.int64],
        ra: npt.NDArray[np.float64],
        dec: npt.NDArray[np.float64],
        object_id: Sequence[str] | npt.NDArray[np.object_],
        first_detection_ns: npt.NDArray[np.int64],
    ) -> None:
        """Account for a batch of alerts."""

    def estimate(self, at_ns: int) -> RateEstimate | None:
        """ρ at time ``at_ns``, or ``None`` when it cannot be estimated."""


@dataclass(frozen=True)
class FixedRate:
    """A configured rate density, for tests, simulations and replays of sparse samples.

    Attributes
    ----------
    rate_per_deg2_day : float
        ρ, new transients per deg² per day.
    """

    rate_per_deg2_day: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_per_deg2_day) and self.rate_per_deg2_day >= 0):
            raise ValueError("rate_per_deg2_day must be finite and >= 0")

    def observe(
        self,
        time_ns: npt.NDArray[np.int64],
        ra: npt.NDArray[np.float64],
        dec: npt.NDArray[np.float64],
        object_id: Sequence[str] | npt.NDArray[np.object_],
        first_detection_ns: npt.NDArray[np.int64],
    ) -> None:
        """Nothing to learn: the rate is fixed."""

    def estimate(self, at_ns: int) -> RateEstimate:
        """The fixed rate."""
        return RateEstimate(self.rate_per_deg2_day)


class TransientRate:
    """Rate density of new transients measured from the alert stream (rolling window).

    ``ρ = N_new / (A_footprint · span)`` where, over the rolling window
    ``[at − window_days, at]``:

    * ``N_new`` counts distinct objects whose **first detection** lies in the window
      (the first detection time the alerts carry, e.g. ZTF ``jdstarthist``);
    * ``A_footprint`` is the surveyed area, approximated by the union of the HEALPix
      cells of order ``order`` (6 by default: 0.84 deg² each) that received at least
      one alert in the window (by whole UTC days). A cell with alerts is taken as
      surveyed over the whole window: the rate is per calendar day, like the elapsed
      time Δt it multiplies;
    * ``span`` is the window length in days, shortened to the time since the first
      alert seen when the stream is younger than the window.

    The approximation overestimates the footprint where the survey visited a cell
    only on some nights (a lower ρ, hence a conservative p_chance) and misses
    surveyed cells that produced no alert (negligible for ZTF/LSST cell sizes and
    alert densities). No wall clock is read: times come from the alerts.

    Parameters
    ----------
    window_days : float
        Length of the rolling window, days.
    order : int
        HEALPix order of the footprint cells (0 to 8).
    min_new : int
        Fewest new objects for an estimate; below it :meth:`estimate` gives ``None``.

    Examples
    --------
    >>> day = 86_400 * 10**9
    >>> rate = TransientRate(window_days=10.0, order=0)
    >>> rate.observe(np.array([0, 5 * day]), np.array([45.0, 45.0]), np.array([40.0, 40.0]),
    ...              ["a", "b"], np.array([0, 5 * day]))
    >>> est = rate.estimate(10 * day)
    >>> est.n_new, round(est.area_deg2, 1), est.span_days
    (2, 3437.7, 10.0)
    """

    def __init__(self, window_days: float = 30.0, order: int = 6, min_new: int = 1) -> None:
        if not (math.isfinite(window_days) and window_days > 0):
            raise ValueError("window_days must be > 0")
        if not 0 <= order <= 8:
            raise ValueError("order must be in [0, 8]")
        if min_new < 1:
            raise ValueError("min_new must be >= 1")
        self.window_days = float(window_days)
        self.order = order
        self.min_new = min_new
        self._nside = 2**order
        self._cell_area_deg2 = 4.0 * math.pi * DEG2_PER_SR / (12 * 4**order)
        self._window_ns = round(window_days * NS_PER_DAY)
        self._cells_by_day: dict[int, npt.NDArray[np.bool_]] = {}
        self._first_by_object: dict[str, int] = {}
        self._start_ns: int | None = None

    def observe(
        self,
        time_ns: npt.NDArray[np.int64],
        ra: npt.NDArray[np.float64],
        dec: npt.NDArray[np.float64],
        object_id: Sequence[str] | npt.NDArray[np.object_],
        first_detection_ns: npt.NDArray[np.int64],
    ) -> None:
        """Account for a batch of alerts (any order; repeated alerts are harmless).

        Parameters
        ----------
        time_ns : ndarray of int64
            Observation times (ns since the epoch).
        ra, dec : ndarray of float64
            Positions, degrees.
        object_id : sequence of str
            Object of each alert.
        first_detection_ns : ndarray of int64
            First detection time of each alert's object (ns since the epoch).
        """
        times = np.asarray(time_ns, dtype=np.int64)
        if len(times) == 0:
            return
        first = np.asarray(first_detection_ns, dtype=np.int64)
        batch_start = int(times.min())
        self._start_ns = batch_start if self._start_ns is None else min(self._start_ns, batch_start)
        cells = hp.ang2pix(self._nside, np.asarray(ra), np.asarray(dec), nest=True, lonlat=True)
        days = times // NS_PER_DAY
        for day in np.unique(days):
            mask = self._cells_by_day.get(int(day))
            if mask is None:
                mask = np.zeros(12 * 4**self.order, dtype=bool)
                self._cells_by_day[int(day)] = mask
            mask[cells[days == day]] = True
        for obj, t_first in zip(object_id, first.tolist(), strict=True):
            known = self._first_by_object.get(obj)
            if known is None or t_first < known:
                self._first_by_object[obj] = t_first

    def estimate(self, at_ns: int) -> RateEstimate | None:
        """ρ over ``[at_ns − window_days, at_ns]``.

        Returns
        -------
        RateEstimate or None
            ``None`` when no alert was seen in the window, or fewer than ``min_new``
            new objects: a rate of zero would claim every candidate is significant.
        """
        if self._start_ns is None:
            return None
        lo = at_ns - self._window_ns
        self._forget_before(lo)
        first_day, last_day = lo // NS_PER_DAY, at_ns // NS_PER_DAY
        masks = [m for d, m in self._cells_by_day.items() if first_day <= d <= last_day]
        if not masks:
            return None
        area = float(np.count_nonzero(np.logical_or.reduce(masks))) * self._cell_area_deg2
        span_days = (at_ns - max(lo, self._start_ns)) / NS_PER_DAY
        firsts = np.fromiter(self._first_by_object.values(), dtype=np.int64)
        n_new = int(np.count_nonzero((firsts >= lo) & (firsts <= at_ns)))
        if n_new < self.min_new or span_days <= 0 or area <= 0:
            return None
        return RateEstimate(
            rate_per_deg2_day=n_new / (area * span_days),
            n_new=n_new,
            area_deg2=area,
            span_days=span_days,
            end_ns=at_ns,
        )

    def _forget_before(self, lo_ns: int) -> None:
        """Drop day bins and objects entirely before the window (memory stays bounded)."""
        first_day = lo_ns // NS_PER_DAY
        for day in [d for d in self._cells_by_day if d < first_day]:
            del self._cells_by_day[day]
        stale = [obj for obj, t in self._first_by_object.items() if t < lo_ns]
        for obj in stale:
            del self._first_by_object[obj]
