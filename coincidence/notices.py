"""Notice × notice coincidences: pairs of events of two streams close in time, with a
joint false-alarm rate in the forms of LVK's RAVEN.

A GW alert and a GRB 1.7 s later (GW170817 and GRB 170817A) are one story. When a
notice version becomes active, :class:`NoticeIndex` searches the active events of the
other streams in the window of each configured pair and returns one
:class:`NoticeCoincidence` per pair found (and the withdrawal of a pair that an update
or a retraction undid). Pure numpy: no store, no Spark, no network.

Streams (:func:`stream_of`): ``GW`` (CBC), ``GW_BURST`` (LVK Burst group), ``GRB``,
``SUBGRB_FERMI`` (GBM sub-threshold notices), ``SUBGRB_SWIFT`` (BAT-GUANO), ``NU``
(high-energy neutrinos), ``SN_NU`` (supernova neutrinos: SNEWS, Super-K), ``X``,
``FRB``. A pair ``"REF-OTHER"`` has a window ``[lo, hi]`` on ``t_other - t_ref`` (s).

Joint FAR (ligo-raven's ``coinc_far``):

* untargeted: ``FAR_t = (hi - lo) * R_other * FAR_ref`` — ``R_other`` the background
  rate of the other stream, ``FAR_ref`` the reference notice's FAR (its stream's rate
  when the notice gives none);
* targeted (sub-threshold GRB searches): ``z = (hi - lo) * FAR_other * FAR_ref``,
  ``z_max = (hi - lo) * thr_other * thr_ref``, ``FAR_t = z * (1 - ln(z / z_max))``
  (the CDF of a product of two uniform variables); without the other notice's FAR the
  untargeted form is used and the record says so;
* with the sky: ``FAR_ts = FAR_t / I``, ``I`` the overlap integral of the two regions
  (:func:`coincidence.notices_sky.overlap`).

Orientation of a record: in a pair with a GW the GW is ``event_id`` and
``time_difference_s`` is the other notice's time minus the GW's; in a pair without a
GW the earlier event is ``event_id`` and ``time_difference_s`` (the later minus the
earlier) is not negative. ``window_lo_s``/``window_hi_s`` are given in that orientation.

Examples
--------
RAVEN's untargeted form for a GW of FAR 1e-7 Hz and a GRB (305/yr) in [-1, +5] s:

>>> round(time_far_untargeted(1e-7, 6.0, 305 / YEAR_S) / 1e-10, 4)
5.8029
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from coincidence.notices_sky import DEFAULT_SAMPLES, SkyOverlap, overlap
from mm_broker.core.models import Notice, Region
from mm_broker.core.sections import NoticeCoincidenceSettings

__all__ = ["YEAR_S", "NoticeCoincidence", "NoticeIndex", "NoticeSide", "PairRule",
           "pair_rules", "stream_of", "time_far_targeted", "time_far_untargeted"]

#: Seconds per year in RAVEN's rates (365 days).
YEAR_S = 365.0 * 24.0 * 3600.0

#: Version of these rules (in the records' provenance).
NOTICE_RULES_VERSION = "1.0.0"


def time_far_untargeted(far_ref_hz: float, window_s: float, rate_other_hz: float) -> float:
    """RAVEN's untargeted temporal coincidence FAR, Hz."""
    return float(window_s * rate_other_hz * far_ref_hz)


def time_far_targeted(far_ref_hz: float, far_other_hz: float, window_s: float,
                      thr_ref_hz: float, thr_other_hz: float) -> float:
    """RAVEN's targeted temporal coincidence FAR, Hz: ``z (1 - ln(z / z_max))``.

    Examples
    --------
    At the thresholds the FAR is ``z_max`` itself:

    >>> time_far_targeted(1e-5, 1e-4, 12.0, 1e-5, 1e-4) == 12.0 * 1e-9
    True
    """
    z = window_s * far_other_hz * far_ref_hz
    z_max = window_s * thr_other_hz * thr_ref_hz
    if z <= 0:
        return 0.0
    return float(z * (1.0 - math.log(z / z_max)))


def stream_of(messenger: str, mission: str, instrument: str, notice_type: str,
              significance: Mapping[str, Any]) -> str:
    """The coincidence stream of a notice (see the module documentation).

    Examples
    --------
    >>> stream_of("GW", "LVK", "H1,L1", "INITIAL", {"group": "Burst"})
    'GW_BURST'
    >>> stream_of("GRB", "Fermi", "GBM", "FERMI_GBM_SUBTHRESH", {})
    'SUBGRB_FERMI'
    >>> stream_of("NU", "SNEWS", "SNEWS", "SNEWS_ALERT", {})
    'SN_NU'
    """
    m, nt = str(messenger), notice_type.upper()
    if m == "GW":
        return "GW_BURST" if str(significance.get("group", "")).lower() == "burst" else "GW"
    if m == "GRB":
        if "SUBTHRESH" in nt:
            return "SUBGRB_FERMI"
        if "GUANO" in nt or "GUANO" in instrument.upper():
            return "SUBGRB_SWIFT"
        return "GRB"
    if m == "NU":
        sn = mission.upper() in ("SNEWS", "SUPER-KAMIOKANDE") or "_SN_" in nt \
            or nt.startswith("SNEWS")
        return "SN_NU" if sn else "NU"
    return m


@dataclass(frozen=True)
class PairRule:
    """One searched pair of streams: window on ``t_other - t_ref``, rates, FAR form."""

    name: str
    reference: str
    other: str
    window_lo_s: float
    window_hi_s: float
    method: str
    rate_ref_hz: float
    rate_other_hz: float
    thr_ref_hz: float | None = None
    thr_other_hz: float | None = None

    @property
    def window_s(self) -> float:
        """Length of the window, seconds."""
        return self.window_hi_s - self.window_lo_s


def pair_rules(settings: NoticeCoincidenceSettings) -> dict[tuple[str, str], PairRule]:
    """The configured pairs, keyed ``(reference stream, other stream)``."""
    s = settings
    rules = {}
    for name in s.pairs:
        ref, _, other = name.partition("-")
        rules[(ref, other)] = PairRule(
            name, ref, other, float(s.window_lo_s[name]), float(s.window_hi_s[name]),
            str(s.method[name]), float(s.rate_per_yr[ref]) / YEAR_S,
            float(s.rate_per_yr[other]) / YEAR_S,
            s.far_threshold_hz.get(ref), s.far_threshold_hz.get(other))
    return rules


@dataclass(frozen=True, eq=False)
class NoticeSide:
    """What a coincidence needs of one event: its active notice version and region.

    ``far_hz`` is the notice's own false-alarm rate (``significance["far_hz"]``) where
    it gives one; ``reported`` holds the figures a GW notice's own ``external_coinc``
    block gives, keyed by the external event's notice id or IVORN (compared, never used).
    """

    event_id: str
    messenger: str
    mission: str
    instrument: str
    notice_type: str
    role: str
    trigger_time: datetime
    notice_version: int
    region_version: int
    region: Region
    far_hz: float | None = None
    stream: str = ""
    ivorn: str | None = None
    reported: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_notice(cls, notice: Notice, region_version: int, region: Region) -> NoticeSide:
        """The side of a parsed notice and its region version."""
        sig = dict(notice.significance or {})
        far = sig.get("far_hz")
        block = (notice.extra or {}).get("external_coinc")
        return cls(notice.event_id, str(notice.messenger), notice.mission, notice.instrument,
                   notice.notice_type, str(notice.role), notice.trigger_time,
                   int(notice.version), int(region_version), region,
                   far_hz=_far(far),
                   stream=stream_of(str(notice.messenger), notice.mission,
                                    notice.instrument, notice.notice_type, sig),
                   ivorn=notice.ivorn, reported=block if isinstance(block, dict) else {})

    def __post_init__(self) -> None:
        if not self.stream:
            object.__setattr__(self, "stream", stream_of(
                self.messenger, self.mission, self.instrument, self.notice_type, {}))


@dataclass(frozen=True)
class NoticeCoincidence:
    """One pair of notices coincident in time, with its FARs (a small frozen record)."""

    event: NoticeSide
    external: NoticeSide
    rule: PairRule
    time_difference_s: float
    window_lo_s: float
    window_hi_s: float
    method: str
    time_coincidence_far_hz: float
    time_sky_position_coincidence_far_hz: float | None
    sky: SkyOverlap
    status: str = "candidate"

    @property
    def key(self) -> tuple[str, int, str, int, str]:
        """``(event_id, event region version, external event id, its region version,
        status)``: the outbox key."""
        return (self.event.event_id, self.event.region_version, self.external.event_id,
                self.external.region_version, self.status)


def _far(value: Any) -> float | None:
    """A usable FAR (positive, finite number) or ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def _seconds(a: datetime, b: datetime) -> float:
    return (a - b).total_seconds()


def evaluate(a: NoticeSide, b: NoticeSide, rules: Mapping[tuple[str, str], PairRule],
             samples: int = DEFAULT_SAMPLES) -> NoticeCoincidence | None:
    """The coincidence of two events, or ``None`` (no pair of their streams, other
    roles, or outside the window)."""
    if a.event_id == b.event_id or a.role != b.role:
        return None
    for ref, other in ((a, b), (b, a)):
        rule = rules.get((ref.stream, other.stream))
        if rule is None:
            continue
        dt = _seconds(other.trigger_time, ref.trigger_time)
        if not rule.window_lo_s <= dt <= rule.window_hi_s:
            return None
        return _figures(ref, other, rule, dt, samples)
    return None


def _figures(ref: NoticeSide, other: NoticeSide, rule: PairRule, dt: float,
             samples: int) -> NoticeCoincidence:
    far_ref = ref.far_hz if ref.far_hz else rule.rate_ref_hz
    method = rule.method
    if method == "targeted" and other.far_hz and rule.thr_ref_hz and rule.thr_other_hz:
        far_t = time_far_targeted(far_ref, other.far_hz, rule.window_s, rule.thr_ref_hz,
                                  rule.thr_other_hz)
    else:
        method = "untargeted" if method == "untargeted" else "untargeted_fallback"
        far_t = time_far_untargeted(far_ref, rule.window_s, rule.rate_other_hz)
    sky = overlap(ref.region, other.region, samples)
    far_ts = far_t / sky.integral if sky.integral > 0 else None
    lo, hi = rule.window_lo_s, rule.window_hi_s
    event, external = ref, other
    if "GW" not in (ref.messenger, other.messenger) and dt < 0:
        event, external, dt, lo, hi = other, ref, -dt, -hi, -lo
    return NoticeCoincidence(event, external, rule, dt, lo, hi, method, far_t, far_ts, sky)


class NoticeIndex:
    """The active events of every stream, searched when a notice version becomes active.

    :meth:`update` with an event's new active version returns what changed: the new
    records of its pairs (``candidate``) and the withdrawal of pairs it no longer
    forms; :meth:`retract` withdraws every live pair of an event. Events are kept
    sorted by trigger time, so a search reads only the events within the widest
    window (a binary search, then the events in the span).

    Parameters
    ----------
    settings : NoticeCoincidenceSettings
        ``settings.coincidence_notices``.
    """

    def __init__(self, settings: NoticeCoincidenceSettings) -> None:
        self.enabled = settings.enabled
        self.rules = pair_rules(settings)
        self.samples = settings.sky_samples
        self.span_s = max((max(abs(r.window_lo_s), abs(r.window_hi_s))
                           for r in self.rules.values()), default=0.0)
        self.sides: dict[str, NoticeSide] = {}
        self._times: list[tuple[datetime, str]] = []
        #: Live pairs: frozenset of the two event ids → the last candidate record.
        self.live: dict[frozenset[str], NoticeCoincidence] = {}

    def _remove(self, event_id: str) -> None:
        side = self.sides.pop(event_id, None)
        if side is not None:
            i = bisect.bisect_left(self._times, (side.trigger_time, event_id))
            if i < len(self._times) and self._times[i] == (side.trigger_time, event_id):
                del self._times[i]

    def neighbours(self, side: NoticeSide) -> Iterable[NoticeSide]:
        """Active events of other ids within the widest window of ``side``'s time."""
        from_t = side.trigger_time.timestamp() - self.span_s
        to_t = side.trigger_time.timestamp() + self.span_s
        lo = bisect.bisect_left(self._times, from_t, key=lambda p: p[0].timestamp())
        for t, eid in self._times[lo:]:
            if t.timestamp() > to_t:
                break
            if eid != side.event_id:
                yield self.sides[eid]

    def update(self, side: NoticeSide) -> list[NoticeCoincidence]:
        """Make ``side`` the event's active version; return new and withdrawn pairs."""
        if not self.enabled:
            return []
        self._remove(side.event_id)
        self.sides[side.event_id] = side
        bisect.insort(self._times, (side.trigger_time, side.event_id))
        out: list[NoticeCoincidence] = []
        found: set[frozenset[str]] = set()
        for other in self.neighbours(side):
            c = evaluate(side, other, self.rules, self.samples)
            if c is None:
                continue
            pair = frozenset((side.event_id, other.event_id))
            found.add(pair)
            self.live[pair] = c
            out.append(c)
        for pair in [p for p in self.live if side.event_id in p and p not in found]:
            out.append(_withdrawn(self.live.pop(pair)))
        return out

    def retract(self, event_id: str) -> list[NoticeCoincidence]:
        """Withdraw every live pair of a retracted event and forget it."""
        self._remove(event_id)
        return [_withdrawn(self.live.pop(p)) for p in [p for p in self.live if event_id in p]]


def _withdrawn(c: NoticeCoincidence) -> NoticeCoincidence:
    return NoticeCoincidence(c.event, c.external, c.rule, c.time_difference_s, c.window_lo_s,
                             c.window_hi_s, c.method, c.time_coincidence_far_hz,
                             c.time_sky_position_coincidence_far_hz, c.sky, "withdrawn")
