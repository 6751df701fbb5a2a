"""``mm-broker replay``: the whole flow offline, in time order, deterministic.

Notices take effect at their own issue time; alerts are processed in observation-time
order; the coincidence engine retro-matches the alerts seen before a late notice.
Nothing here reads the wall clock, so two runs on the same inputs, versions and
configuration give the same bytes (after the records are sorted).

Outputs in ``DIR``: ``counterparts.jsonl`` (one association record per line, in
emission order), ``summary.json`` (counts per event and per status, what happened to
every notice and how many alerts were read).
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mm_broker import __version__
from mm_broker.config import Settings
from mm_broker.dataset import restore_embedded_skymap
from mm_broker.models import Notice, Region

log = logging.getLogger(__name__)


@dataclass
class NoticeOutcome:
    """What the replay did with one notice file."""

    path: str
    status: str
    reason: str | None = None
    event_id: str | None = None
    notice_type: str | None = None
    version: int | None = None
    issue_time: str | None = None
    region_version: int | None = None


@dataclass(order=True)
class _Step:
    time: datetime
    seq: int
    notice: Notice = field(compare=False)
    region: Region | None = field(compare=False)
    outcome: NoticeOutcome = field(compare=False)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def load_notices(paths: Iterable[str | Path], settings: Settings,
                 ) -> tuple[list[_Step], list[NoticeOutcome]]:
    """Parse every notice file and build its region; rejections are kept as outcomes."""
    import skymaps
    from listeners.directory import notice_files
    from listeners.parsers import NoticeError, parse

    steps: list[_Step] = []
    rejected: list[NoticeOutcome] = []
    seen: set[bytes] = set()
    max_bytes = int(settings.get("skymaps.max_bytes"))
    max_tiles = int(settings.get("skymaps.max_tiles"))
    for i, path in enumerate(notice_files(paths)):
        payload = restore_embedded_skymap(path.read_bytes(), settings.data_dir)
        if payload in seen:
            rejected.append(NoticeOutcome(str(path), "duplicate", "identical bytes"))
            continue
        seen.add(payload)
        try:
            notice = parse(payload)
            region = None if notice.retraction or notice.localisation is None else \
                skymaps.region_for(notice.localisation, max_bytes=max_bytes,
                                   max_tiles=max_tiles)
        except NoticeError as exc:
            rejected.append(NoticeOutcome(str(path), "rejected", str(exc)))
            continue
        outcome = NoticeOutcome(str(path), "pending", None, notice.event_id,
                                notice.notice_type, notice.version, _iso(notice.issue_time))
        steps.append(_Step(notice.issue_time, i, notice, region, outcome))
    steps.sort()
    return steps, rejected


def load_alerts(paths: Iterable[str | Path]) -> tuple[pd.DataFrame, dict[str, int]]:
    """Read alert files into the engine's frame, sorted by observation time."""
    from fink_core.decode import read_alert_files

    df = read_alert_files(list(paths))
    counts = {"alerts_read": int(len(df))}
    bad = df["bad_coordinates"].to_numpy(dtype=bool) if "bad_coordinates" in df else \
        np.zeros(len(df), dtype=bool)
    counts["alerts_bad_coordinates"] = int(bad.sum())
    df = df.loc[~bad]
    if "quality_ok" not in df.columns:
        from fink_core.quality import quality_flags

        df = pd.concat([df, quality_flags(df)], axis=1)
    first = first_detection_jd(df)
    # An alert is itself a detection, so its object's first detection cannot be later
    # than the alert. When the record says otherwise (the peer's doctored rows of
    # 2024-01-15 moved jdstarthist but not jd), the record's own detection time is
    # not trusted: the alert time used for the window is the first detection.
    late_first = (first > df["obs_jd"]).to_numpy()
    obs = df["obs_jd"].where(~late_first, first)
    counts["alerts_time_inconsistent"] = int(late_first.sum())
    frame = pd.DataFrame({
        "alert_id": df["alert_id"].astype(str).to_numpy(),
        "object_id": df["object_id"].astype(str).to_numpy(),
        "survey": df["survey"].astype(str).to_numpy(),
        "ra": df["ra"].to_numpy(dtype=float), "dec": df["dec"].to_numpy(dtype=float),
        "alert_time": _jd_to_datetime(obs.to_numpy(dtype=float)),
        "first_detection_time": _jd_to_datetime(first.to_numpy(dtype=float)),
        "quality": df["quality_ok"].fillna(False).to_numpy(dtype=bool),
    })
    frame = frame.drop_duplicates("alert_id").sort_values(["alert_time", "alert_id"],
                                                         kind="stable")
    counts["alerts_unique"] = int(len(frame))
    return frame.reset_index(drop=True), counts


def first_detection_jd(df: pd.DataFrame) -> pd.Series:
    """First detection of each alert's object, Julian date (UTC).

    The survey's own statement over the object's whole history is preferred (ZTF
    ``jdstarthist``; LSST ``firstDiaSourceMjdTai``), as Fink does: the alert's
    history lists cover only the last 30 days (ZTF) or 12 months (LSST). Without it,
    the earliest detection in the alert's history, else the alert itself.
    """
    first = pd.Series(np.nan, index=df.index)
    for col in ("ztf_jdstarthist", "lsst_first_dia_source_jd", "first_detection_jd", "obs_jd"):
        if col in df.columns:
            first = first.where(first.notna(), pd.to_numeric(df[col], errors="coerce"))
    return first


def _jd_to_datetime(jd: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime((jd - 2440587.5) * 86400.0, unit="s", utc=True))


def windows_from_settings(settings: Settings) -> dict[Any, Any]:
    """Per-messenger :class:`coincidence.rules.Window` from ``[coincidence]``."""
    from coincidence.rules import DAY_S, Window
    from mm_broker.models import Messenger

    by = settings.get("coincidence.window_after_days_by_messenger")
    default_after = float(settings.get("coincidence.window_after_days"))
    return {m: Window(before_s=float(settings.get("coincidence.window_before_s")),
                      after_s=float(by.get(m.value, default_after)) * DAY_S,
                      newness_s=float(settings.get("coincidence.newness_before_s")))
            for m in Messenger}


def replay(settings: Settings, notice_paths: list[str], alert_paths: list[str],
           out_dir: Path) -> dict[str, Any]:
    """Run the replay and write its outputs; return the summary."""
    from coincidence.engine import CoincidenceEngine, EventMeta

    steps, outcomes = load_notices(notice_paths, settings)
    alerts, alert_counts = load_alerts(alert_paths)
    engine = CoincidenceEngine(windows=windows_from_settings(settings))
    records: list[dict[str, Any]] = []
    active: dict[str, tuple[int, datetime]] = {}
    versions: dict[str, int] = defaultdict(int)
    retracted: set[str] = set()
    times = alerts["alert_time"]
    cursor = 0

    def feed_until(t: datetime | None) -> None:
        nonlocal cursor
        stop = len(alerts) if t is None else int(times.searchsorted(pd.Timestamp(t),
                                                                    side="left"))
        if stop > cursor:
            records.extend(a.to_record() for a in engine.process_alerts(alerts.iloc[cursor:stop]))
            cursor = stop

    for step in steps:
        feed_until(step.time)
        n, out = step.notice, step.outcome
        eid = n.event_id
        if n.retraction:
            records.extend(a.to_record() for a in engine.retract(eid))
            retracted.add(eid)
            out.status = "retracted"
        elif eid in retracted:
            out.status, out.reason = "superseded", "event already retracted"
        elif eid in active and (n.version, n.issue_time) <= active[eid]:
            out.status = "superseded"
            out.reason = f"older than the active version {active[eid][0]}"
        else:
            assert step.region is not None
            versions[eid] += 1
            active[eid] = (n.version, n.issue_time)
            out.status, out.region_version = "stored", versions[eid]
            emitted = engine.add_region(EventMeta.from_notice(n), versions[eid], step.region)
            records.extend(a.to_record() for a in emitted)
        outcomes.append(out)
    feed_until(None)

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "counterparts.jsonl", "w") as fh:
        for rec in records:
            fh.write(json.dumps(rec, sort_keys=True, default=str) + "\n")
    summary = _summary(records, outcomes, alert_counts, settings)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _summary(records: list[dict[str, Any]], outcomes: list[NoticeOutcome],
             alert_counts: dict[str, int], settings: Settings) -> dict[str, Any]:
    per_event: dict[str, Counter[str]] = defaultdict(Counter)
    for rec in records:
        per_event[rec["event_id"]][rec["status"]] += 1
    return {
        "mm_broker_version": __version__,
        "config_hash": settings.hash(),
        "alerts": alert_counts,
        "notices": dict(Counter(o.status for o in outcomes)),
        "notice_outcomes": [o.__dict__ for o in sorted(outcomes, key=lambda o: o.path)],
        "counterparts": dict(Counter(rec["status"] for rec in records)),
        "per_event": {k: dict(v) for k, v in sorted(per_event.items())},
    }

