"""``mm-broker replay``: the whole flow offline, in time order, deterministic.

Notices take effect at their own issue time; alerts are processed in observation-time
order; the coincidence engine retro-matches the alerts seen before a late notice.
Nothing here reads the wall clock, so two runs on the same inputs, versions and
configuration give the same bytes (after the records are sorted).

Outputs in ``DIR``: ``counterparts.jsonl`` (one association record per line, in
emission order), ``summary.json`` (counts per event and per status, what happened to
every notice and how many alerts were read).

Every record carries the provenance of the replay
(:class:`mm_broker.core.provenance.Provenance`): ``mm_broker_version``, ``config_hash``,
``catalogue_versions`` (the catalogues the alerts were annotated with) and
``rule_versions`` (quality cuts, classification, coincidence rules); the summary
repeats them.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mm_broker import __version__
from mm_broker.app.dataset import restore_embedded_skymap
from mm_broker.core.config import Settings
from mm_broker.core.models import Notice, Region

if TYPE_CHECKING:
    from fink_core.catalogues import Catalogue

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


def load_catalogues(catalogue_dir: Path | None) -> list[Catalogue]:
    """The default catalogues of ``catalogue_dir`` (none if it is not a folder)."""
    from fink_core.catalogues import load_default_catalogues

    return load_default_catalogues(catalogue_dir) if catalogue_dir and catalogue_dir.is_dir() \
        else []


def load_alerts(paths: Iterable[str | Path], catalogue_dir: Path | None = None,
                catalogues: Sequence[Catalogue] | None = None,
                ) -> tuple[pd.DataFrame, dict[str, int], dict[str, dict[str, Any]]]:
    """Read alert files into the engine's frame, sorted by observation time.

    Alerts are annotated with ``catalogues`` when given, else with those of
    ``catalogue_dir`` (:func:`load_catalogues`). Returns the frame, counts, and per
    alert id the values a follow-up facility needs with a counterpart (photometry,
    classification, catalogue matches).
    """
    from fink_core.annotate import annotate
    from fink_core.files import read_alert_files

    df = read_alert_files(list(paths))
    cats = list(catalogues) if catalogues is not None else load_catalogues(catalogue_dir)
    df = annotate(df, cats)
    frame, counts = engine_frame(df)
    extras = alert_extras(df, [c.key for c in cats])
    return frame, counts, extras


def engine_frame(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Annotated alerts (fink_core model) → the coincidence engine's input frame.

    Rows with bad coordinates are counted and left out (no position, no match); the
    rest is sorted by alert time, one row per alert id.
    """
    counts = {"alerts_read": int(len(df))}
    bad = df["bad_coordinates"].fillna(True).to_numpy(dtype=bool) \
        if "bad_coordinates" in df else np.zeros(len(df), dtype=bool)
    counts["alerts_bad_coordinates"] = int(bad.sum())
    df = df.loc[~bad]
    from fink_core.context import survey_first_detection_jd

    first = pd.Series(survey_first_detection_jd(df), index=df.index)
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


def alert_extras(df: pd.DataFrame, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Per alert id: photometry, classification and catalogue matches (for records)."""
    out: dict[str, dict[str, Any]] = {}
    for row in df.itertuples(index=False):
        matches = {k: str(getattr(row, f"xm_{k}_name")) for k in keys
                   if isinstance(getattr(row, f"xm_{k}_name", None), str)}
        mag, err = float(row.mag), float(row.mag_err)
        out[str(row.alert_id)] = {
            "mag": mag if np.isfinite(mag) else None,
            "mag_err": err if np.isfinite(err) else None,
            "band": row.band if isinstance(row.band, str) else None,
            "classification": str(row.classification),
            "classification_rule": str(row.classification_rule),
            "catalogue_matches": matches or None,
        }
    return out


def _jd_to_datetime(jd: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime((jd - 2440587.5) * 86400.0, unit="s", utc=True))


def windows_from_settings(settings: Settings) -> dict[Any, Any]:
    """Per-messenger :class:`coincidence.rules.Window` from ``[coincidence]``."""
    from coincidence.rules import DAY_S, Window
    from mm_broker.core.models import Messenger

    by = settings.get("coincidence.window_after_days_by_messenger")
    default_after = float(settings.get("coincidence.window_after_days"))
    return {m: Window(before_s=float(settings.get("coincidence.window_before_s")),
                      after_s=float(by.get(m.value, default_after)) * DAY_S,
                      newness_s=float(settings.get("coincidence.newness_before_s")))
            for m in Messenger}


def replay(settings: Settings, notice_paths: list[str], alert_paths: list[str],
           out_dir: Path, publish: bool = False, plot: bool = False) -> dict[str, Any]:
    """Run the replay and write its outputs; return the summary.

    Parameters
    ----------
    settings : Settings
    notice_paths, alert_paths : list of str
        Files or folders.
    out_dir : Path
        Output folder (``counterparts.jsonl``, ``summary.json``, ``voevents/``).
    publish : bool
        Also publish to the Kafka topics and broadcast the VOEvents through Comet
        (the local services must be up). The VOEvent files are always written.
    plot : bool
        Draw each event's last region with its candidates to ``DIR/plots/``.
    """
    from coincidence.engine import CoincidenceEngine, EventMeta
    from mm_broker.core.provenance import Provenance
    from publishers.publish import Publisher

    steps, outcomes = load_notices(notice_paths, settings)
    catalogues = load_catalogues(settings.catalogue_dir())
    run_provenance = Provenance.from_settings(settings, catalogues)
    alerts, alert_counts, extras = load_alerts(alert_paths, catalogues=catalogues)
    engine = CoincidenceEngine(windows=windows_from_settings(settings))
    out_dir.mkdir(parents=True, exist_ok=True)
    # VOEvent files: every VOEvent of this replay (deterministic). The network (Kafka,
    # Comet) only gets what the store has not published before: records are keyed in
    # the associations table, so replaying a night twice doubles nothing on the topics.
    publisher = Publisher.from_settings(settings, kafka=False, broadcast=False,
                                        voevent_dir=out_dir / "voevents")
    network = Publisher.from_settings(settings) if publish else None
    db = None
    if publish:
        from mm_broker.core.db.migrate import engine_for

        db = engine_for(settings)
    published = Counter[str]()
    notices_of: dict[str, dict[int, Notice]] = defaultdict(dict)
    first_notice: dict[str, Notice] = {}
    provenance = run_provenance.record_fields()
    # A retraction names no alert: its record (retraction-v1) has no catalogue or rule
    # versions.
    retraction_provenance = {"mm_broker_version": run_provenance.mm_broker_version,
                             "config_hash": run_provenance.config_hash}

    def enrich(a: Any) -> dict[str, Any]:
        n = notices_of[a.event_id].get(a.region_version)
        t = first_notice.get(a.event_id)
        return counterpart_record(a, extras, t.ivorn if t else None, n.ivorn if n else None,
                                  n.significance if n else {}, provenance)

    def emit(batch: list[Any], at: datetime) -> None:
        if not batch:
            return
        recs = [enrich(a) for a in batch]
        records.extend(recs)
        report = publisher.counterparts(recs, authored=at)
        published["voevents"] += len(report.voevents)
        published["records_refused"] += len(report.refused_records)
        if network is not None and db is not None:
            from mm_broker.app.run import persist_and_publish

            def send(fresh: list[dict[str, Any]]) -> None:
                net = network.counterparts(fresh, authored=at)
                published["kafka_sent"] += net.kafka.sent if net.kafka else 0
                published["voevents_broadcast"] += len(net.voevents)

            published["new_records"] += persist_and_publish(db, recs, send)

    records: list[dict[str, Any]] = []
    last_region: dict[str, tuple[int, Region, Notice]] = {}
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
            chunk = alerts.iloc[cursor:stop]
            last = chunk["alert_time"].iloc[-1].floor("us")  # datetimes hold microseconds
            emit(engine.process_alerts(chunk), last.to_pydatetime())
            cursor = stop

    for step in steps:
        feed_until(step.time)
        n, out = step.notice, step.outcome
        eid = n.event_id
        first_notice.setdefault(eid, n)
        if n.retraction:
            withdrawn = engine.retract(eid)
            emit(withdrawn, n.issue_time)
            retracted.add(eid)
            out.status = "retracted"
            if eid in active:
                report = publisher.retraction(_retraction_record(
                    n, versions[eid], withdrawn, retraction_provenance,
                    first_notice[eid].ivorn), authored=n.issue_time)
                published["voevents"] += len(report.voevents)
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
            notices_of[eid][versions[eid]] = n
            last_region[eid] = (versions[eid], step.region, n)
            emit(engine.add_region(EventMeta.from_notice(n), versions[eid], step.region),
                 n.issue_time)
        outcomes.append(out)
    feed_until(None)
    publisher.close()
    if network is not None:
        network.close()
    if db is not None:
        db.dispose()

    with open(out_dir / "counterparts.jsonl", "w") as fh:
        for rec in records:
            fh.write(json.dumps(rec, sort_keys=True, default=str) + "\n")
    summary = _summary(records, outcomes, alert_counts, settings)
    summary["catalogue_versions"] = run_provenance.catalogue_versions()
    summary["rule_versions"] = run_provenance.rule_versions()
    summary["published"] = dict(published)
    if plot:
        summary["plots"] = _plots(out_dir / "plots", records, last_region, retracted)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _plots(folder: Path, records: list[dict[str, Any]],
           last_region: dict[str, tuple[int, Region, Notice]], retracted: set[str]) -> int:
    """One PNG per event that has candidates in its last region version."""
    from mm_broker.core.models import SkyMap
    from publishers.plot import plot_event, region_info

    folder.mkdir(parents=True, exist_ok=True)
    done = 0
    for eid, (version, region, notice) in sorted(last_region.items()):
        cands = [r for r in records if r["event_id"] == eid and r["region_version"] == version
                 and r["status"] == "candidate"]
        if not cands or eid in retracted:
            continue
        fits = notice.localisation.data if isinstance(notice.localisation, SkyMap) else None
        name = eid.replace(":", "_").replace("/", "_")
        plot_event(region_info(region, fits), cands, folder / f"{name}_r{version}.png")
        done += 1
    return done


def counterpart_record(assoc: Any, extras: dict[str, dict[str, Any]],
                       trigger_ivorn: str | None, notice_ivorn: str | None,
                       significance: dict[str, Any], provenance: dict[str, Any],
                       ) -> dict[str, Any]:
    """An association's published record: the contract fields, the alert's values
    (``extras``), the trigger's IVORNs and significance, and provenance.

    ``provenance`` is :meth:`mm_broker.core.provenance.Provenance.record_fields` of the run
    (``mm_broker_version``, ``config_hash``, ``catalogue_versions``,
    ``rule_versions``); its maps are copied into each record.
    """
    rec: dict[str, Any] = assoc.to_record()
    rec.update(extras.get(rec["alert_id"], {}))
    rec["trigger_ivorn"], rec["notice_ivorn"] = trigger_ivorn, notice_ivorn
    rec["significance"] = _significance(significance)
    rec.update({k: dict(v) if isinstance(v, dict) else v for k, v in provenance.items()})
    return rec


def _significance(significance: dict[str, Any]) -> dict[str, Any] | None:
    """Significance figures as an Avro map of scalars (nested maps flattened)."""
    out: dict[str, Any] = {}
    for k, v in significance.items():
        if isinstance(v, bool | int | float | str):
            out[str(k)] = v
        elif isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()
                        if isinstance(vv, bool | int | float | str)})
    return out or None


def _retraction_record(n: Notice, region_version: int, withdrawn: list[Any],
                       provenance: dict[str, Any], trigger_ivorn: str | None) -> dict[str, Any]:
    return {"event_id": n.event_id, "messenger": str(n.messenger), "mission": n.mission,
            "instrument": n.instrument, "role": str(n.role), "notice_version": n.version,
            "region_version": region_version, "trigger_time": _iso(n.trigger_time),
            "retracted_at": _iso(n.issue_time),
            "withdrawn_alert_ids": sorted({a.alert_id for a in withdrawn}),
            "reason": "retraction notice", "trigger_ivorn": trigger_ivorn,
            "notice_ivorn": n.ivorn, **provenance}


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

