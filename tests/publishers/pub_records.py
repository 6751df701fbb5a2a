"""Counterpart records for the publisher tests, from real recorded data where it matters.

The alerts are the three real ZTF alerts of ``alerts/ztf/avro/20180626_skyportal``; the
trigger is the real Swift/BAT notice ``notices/swift/BAT_GRB_Pos_655721-214.xml``
(its IVORN is what our VOEvents must cite). Association figures (credible level,
p_chance, rank) are made up but consistent: these tests are about publishing them.
"""

from __future__ import annotations

import collections
import collections.abc
import io
import math
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro

if not hasattr(collections, "Iterable"):
    collections.Iterable = collections.abc.Iterable  # type: ignore[attr-defined]
import voeventparse as vp  # noqa: E402

ALERTS = "alerts/ztf/avro/20180626_skyportal"
SWIFT_NOTICE = "notices/swift/BAT_GRB_Pos_655721-214.xml"
BANDS = {1: "g", 2: "r", 3: "i"}


def jd_to_iso(jd: float) -> str:
    t = datetime(2000, 1, 1, 12, tzinfo=UTC) + timedelta(days=jd - 2451545.0)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ztf_alerts(data_dir: Path) -> list[dict[str, Any]]:
    """objectId, candid, ra, dec, time, magnitude and band of the real alerts."""
    out = []
    for path in sorted((data_dir / ALERTS).glob("*.avro")):
        for alert in fastavro.reader(io.BytesIO(path.read_bytes())):
            c = alert["candidate"]
            out.append({"object_id": alert["objectId"], "alert_id": str(alert["candid"]),
                        "ra": c["ra"], "dec": c["dec"], "alert_time": jd_to_iso(c["jd"]),
                        "mag": c["magpsf"], "mag_err": c["sigmapsf"], "band": BANDS[c["fid"]]})
    assert out, data_dir / ALERTS
    return out


def swift_trigger(data_dir: Path) -> dict[str, Any]:
    """IVORN, trigger time and position of the real Swift/BAT notice."""
    v = vp.load(open(data_dir / SWIFT_NOTICE, "rb"))
    pos = vp.get_event_position(v)
    t = vp.get_event_time_as_utc(v)
    return {"ivorn": v.attrib["ivorn"], "trigger_time": t.isoformat().replace("+00:00", "Z"),
            "ra": pos.ra, "dec": pos.dec, "err_deg": pos.err}


def _sep_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    a1, d1, a2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    c = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(a1 - a2)
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def record(**over: Any) -> dict[str, Any]:
    """A valid counterpart record (GRB circle), fields overridden by ``over``."""
    base: dict[str, Any] = {
        "event_id": f"Swift:test-{uuid.uuid4().hex[:10]}", "messenger": "GRB",
        "mission": "Swift", "instrument": "BAT", "notice_version": 1, "region_version": 1,
        "role": "observation", "status": "candidate", "trigger_time": "2018-06-26T03:10:00Z",
        "survey": "ZTF", "object_id": "ZTF18abaaaaa", "alert_id": "541234765015015012",
        "alert_time": "2018-06-26T06:21:36.000Z", "ra": 263.5, "dec": -12.25,
        "delta_t_s": 11496.0, "separation_deg": 0.021, "separation_ratio": 0.4,
        "credible_level": 0.35, "prob_density_deg2": None, "p_chance": 0.0012, "rank": 1,
        "rate_per_deg2_day": 0.05, "searched_area_deg2": 0.0097, "elapsed_days": 0.14,
    }
    base.update(over)
    return base


def real_counterparts(data_dir: Path, event_id: str, *, role: str = "observation",
                      region_version: int = 1, notice_version: int = 1,
                      messenger: str = "GRB") -> list[dict[str, Any]]:
    """Counterpart records of the real ZTF alerts for the real Swift trigger.

    Separations are computed from the real positions (they are degrees apart: the
    radius used for the ratio is set so that they fall inside, as a test region).
    """
    trig = swift_trigger(data_dir)
    alerts = ztf_alerts(data_dir)
    t0 = datetime.fromisoformat(trig["trigger_time"])
    seps = [_sep_deg(trig["ra"], trig["dec"], a["ra"], a["dec"]) for a in alerts]
    radius = max(seps) * 1.1
    out = []
    for rank, (a, sep) in enumerate(sorted(zip(alerts, seps, strict=True),
                                           key=lambda t: t[1]), start=1):
        dt = (datetime.fromisoformat(a["alert_time"]) - t0).total_seconds()
        out.append(record(
            event_id=event_id, messenger=messenger, role=role, region_version=region_version,
            notice_version=notice_version, trigger_time=trig["trigger_time"],
            trigger_ivorn=trig["ivorn"], notice_ivorn=trig["ivorn"], delta_t_s=dt,
            elapsed_days=(dt + 600) / 86400 if dt > -600 else 0.0,
            separation_deg=sep, separation_ratio=sep / radius,
            credible_level=min(1.0, (sep / radius) ** 2), p_chance=min(1.0, 1e-3 * rank),
            rank=rank, significance={"rate_signif": 12.5, "image_signif": 7.1},
            classification="unknown", classification_rule="no catalogue match", **a))
    return out
