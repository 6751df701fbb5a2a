"""The published record of a notice × notice coincidence (``coincidence-v1.avsc``).

One flat mapping per :class:`~coincidence.notices.NoticeCoincidence`: the two events
and the versions paired, the time difference, the window, rates and FARs used, the two
FARs (temporal and spatio-temporal), the overlap integral, the combined localisation's
peak (and 90 % area for two tiled regions), and, where the GW notice carried LVK's own
``external_coinc`` block for the same external event, LVK's figures for comparison.
Times are ISO 8601 UTC strings.

Kafka key: ``event_id|region_version|external_event_id|external_region_version``
(:func:`publishers.kafka.coincidence_key`); a withdrawal repeats the key of the record
it withdraws.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from coincidence.notices import NOTICE_RULES_VERSION, NoticeCoincidence, NoticeSide

__all__ = ["coincidence_record", "reported_figures"]


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def reported_figures(gw: NoticeSide, external: NoticeSide) -> dict[str, float | None]:
    """LVK's own figures for this external event from the GW notice's ``external_coinc``
    block (matched by the GCN notice id in the external event id, or by IVORN)."""
    block = gw.reported
    none: dict[str, float | None] = {"lvk_time_coincidence_far_hz": None,
                                     "lvk_time_sky_position_coincidence_far_hz": None}
    if not block:
        return none
    notice_id = str(block.get("gcn_notice_id") or "")
    ext_id = external.event_id.rsplit(":", 1)[-1]
    same = (notice_id and notice_id == ext_id) or (
        block.get("ivorn") and block.get("ivorn") == external.ivorn)
    if not same:
        return none

    def num(key: str) -> float | None:
        v = block.get(key)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    return {"lvk_time_coincidence_far_hz": num("time_coincidence_far"),
            "lvk_time_sky_position_coincidence_far_hz":
                num("time_sky_position_coincidence_far")}


def coincidence_record(c: NoticeCoincidence, provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The record of a coincidence (candidate or withdrawn).

    Parameters
    ----------
    c : NoticeCoincidence
    provenance : mapping
        ``mm_broker_version``, ``config_hash`` and ``rule_versions`` of the run (the
        notice rules' version is added as ``rule_versions["coincidence_notices"]``).
    """
    e, x, rule = c.event, c.external, c.rule
    ref = e if e.stream == rule.reference else x
    other = x if ref is e else e
    gw, ext = (e, x) if e.messenger == "GW" else (x, e) if x.messenger == "GW" else (e, x)
    rules = dict(provenance.get("rule_versions") or {})
    rules["coincidence_notices"] = NOTICE_RULES_VERSION
    return {
        "event_id": e.event_id,
        "external_event_id": x.event_id,
        "messenger": e.messenger,
        "external_messenger": x.messenger,
        "mission": e.mission,
        "external_mission": x.mission,
        "instrument": e.instrument,
        "external_instrument": x.instrument,
        "stream": e.stream,
        "external_stream": x.stream,
        "role": e.role,
        "status": c.status,
        "pair": rule.name,
        "search_method": c.method,
        "notice_version": int(e.notice_version),
        "external_notice_version": int(x.notice_version),
        "region_version": int(e.region_version),
        "external_region_version": int(x.region_version),
        "trigger_time": _iso(e.trigger_time),
        "external_trigger_time": _iso(x.trigger_time),
        "time_difference_s": float(c.time_difference_s),
        "window_lo_s": float(c.window_lo_s),
        "window_hi_s": float(c.window_hi_s),
        "reference_event_id": ref.event_id,
        "reference_far_hz": float(ref.far_hz) if ref.far_hz else float(rule.rate_ref_hz),
        "reference_far_source": "notice" if ref.far_hz else "stream_rate",
        "other_rate_hz": float(rule.rate_other_hz),
        "other_far_hz": float(other.far_hz) if other.far_hz else None,
        "far_threshold_reference_hz": rule.thr_ref_hz,
        "far_threshold_other_hz": rule.thr_other_hz,
        "time_coincidence_far_hz": float(c.time_coincidence_far_hz),
        "time_sky_position_coincidence_far_hz": (
            None if c.time_sky_position_coincidence_far_hz is None
            else float(c.time_sky_position_coincidence_far_hz)),
        "overlap_integral": float(c.sky.integral),
        "overlap_method": c.sky.method,
        "combined_ra": c.sky.peak_ra,
        "combined_dec": c.sky.peak_dec,
        "combined_area90_deg2": c.sky.area90_deg2,
        "event_ivorn": e.ivorn,
        "external_ivorn": x.ivorn,
        **reported_figures(gw, ext),
        "mm_broker_version": provenance.get("mm_broker_version"),
        "config_hash": provenance.get("config_hash"),
        "rule_versions": rules,
    }
