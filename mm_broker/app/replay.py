"""``mm-broker replay``: the whole flow offline, in time order, deterministic.

Notices take effect at their own issue time; alerts are processed in observation-time
order; the coincidence engine retro-matches the alerts seen before a late notice.
Which notice version is active is decided by the repository's one rule
(:class:`mm_broker.core.repository.MemoryRepository`, the in-memory twin of what
ingest stores), and what happens to a counterpart by the one counterpart flow that
``run`` drives too (:class:`mm_broker.app.flow.CounterpartFlow`). Nothing here reads
the wall clock, so two runs on the same inputs, versions and configuration give the
same bytes (after the records are sorted).

Outputs in ``DIR``: ``counterparts.jsonl`` (one association record per line, in
emission order), ``retractions.jsonl`` (one record per retracted event),
``summary.json`` (counts per event and per status, what happened to every notice and
how many alerts were read), ``voevents/`` (every VOEvent of the replay),
``coincidences.jsonl`` (one notice × notice coincidence record per line, in emission
order: :mod:`mm_broker.app.coincidences`).

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

import skymaps
from coincidence.engine import CoincidenceEngine, EventMeta
from listeners.directory import notice_files
from listeners.parsers import NoticeError, parse
from mm_broker import __version__
from mm_broker.app import skymap_fetch
from mm_broker.app.alert_frame import load_alerts, load_catalogues, windows_from_settings
from mm_broker.app.coincidences import NoticeCoincidences
from mm_broker.app.dataset import restore_embedded_skymap
from mm_broker.app.flow import CounterpartFlow, VersionContext
from mm_broker.app.plots import plot_events
from mm_broker.app.provenance import rule_versions
from mm_broker.app.records import retraction_record
from mm_broker.core.config import Settings
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.models import Notice, Region
from mm_broker.core.provenance import Provenance
from mm_broker.core.repository import MemoryRepository
from publishers.publish import Publisher

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
class Step:
    """One notice, at its issue time, with its region (None for a retraction)."""

    time: datetime
    seq: int
    notice: Notice = field(compare=False)
    region: Region | None = field(compare=False)
    outcome: NoticeOutcome = field(compare=False)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def load_notices(paths: Iterable[str | Path], settings: Settings,
                 ) -> tuple[list[Step], list[NoticeOutcome]]:
    """Parse every notice file and build its region; rejections are kept as outcomes."""
    steps: list[Step] = []
    rejected: list[NoticeOutcome] = []
    seen: dict[bytes, str] = {}
    get_map = skymap_fetch.local_getter(
        settings.data_dir, skymap_fetch.MapCache(settings.state_dir / "skymap_cache"))

    def region_of(notice: Notice) -> Region | None:
        if notice.retraction or notice.localisation is None:
            return None
        return skymaps.region_for(notice.localisation, max_bytes=settings.skymaps.max_bytes,
                                  max_tiles=settings.skymaps.max_tiles)

    for i, path in enumerate(notice_files(paths)):
        payload = restore_embedded_skymap(path.read_bytes(), settings.data_dir)
        if payload in seen:
            rejected.append(NoticeOutcome(str(path), "duplicate",
                                          f"identical bytes to {seen[payload]}"))
            continue
        seen[payload] = str(path)
        try:
            notice = parse(payload)
            # The official map a notice links: a file of the data directory with the
            # URL's name, or the map cache (mm_broker.app.skymap_fetch; no network).
            notice, region, _ = skymap_fetch.with_official_map(notice, get_map, region_of)
        except NoticeError as exc:
            rejected.append(NoticeOutcome(str(path), "rejected", str(exc)))
            continue
        outcome = NoticeOutcome(str(path), "pending", None, notice.event_id,
                                notice.notice_type, notice.version, _iso(notice.issue_time))
        steps.append(Step(notice.issue_time, i, notice, region, outcome))
    steps.sort()
    return steps, rejected


def replay(settings: Settings, notice_paths: list[str], alert_paths: list[str],
           out_dir: Path, publish: bool = False, plot: bool = False) -> dict[str, Any]:
    """Run the replay and write its outputs; return the summary.

    Parameters
    ----------
    settings : Settings
    notice_paths, alert_paths : list of str
        Files or folders.
    out_dir : Path
        Output folder (``counterparts.jsonl``, ``retractions.jsonl``, ``summary.json``,
        ``voevents/``).
    publish : bool
        Also publish to the Kafka topics and broadcast the VOEvents through Comet
        (the local services must be up): through the store's outbox, so only what it
        has not published before. The VOEvent files are always written.
    plot : bool
        Draw each event's last region with its candidates to ``DIR/plots/``.
    """
    steps, outcomes = load_notices(notice_paths, settings)
    catalogues = load_catalogues(settings.catalogue_dir())
    run_provenance = Provenance.from_settings(settings, catalogues, rule_versions())
    alerts, alert_counts, extras = load_alerts(alert_paths, catalogues=catalogues)
    engine = CoincidenceEngine(windows=windows_from_settings(settings))
    out_dir.mkdir(parents=True, exist_ok=True)
    db = engine_for(settings) if publish else None
    flow = CounterpartFlow(
        run_provenance.record_fields(), keep=True,
        files=Publisher.from_settings(settings, kafka=False, broadcast=False,
                                      voevent_dir=out_dir / "voevents"),
        network=Publisher.from_settings(settings) if publish else None, store=db)
    repo = MemoryRepository()
    coinc = NoticeCoincidences(settings, flow)  # notice × notice pairs
    first_notice: dict[str, Notice] = {}
    last_region: dict[str, tuple[int, Region, Notice]] = {}
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
            flow.emit(engine.process_alerts(chunk), extras, last.to_pydatetime())
            cursor = stop

    try:
        if db is not None:
            flow.settle()
        for step in steps:
            feed_until(step.time)
            n, out = step.notice, step.outcome
            eid = n.event_id
            first_notice.setdefault(eid, n)
            decision, region_version = repo.store(n, has_region=step.region is not None)
            out.status, out.reason, out.region_version = (decision.status, decision.reason,
                                                          region_version)
            if decision.status == "retracted":
                withdrawn = engine.retract(eid)
                flow.emit(withdrawn, extras, n.issue_time)
                if eid not in retracted:
                    flow.retract(retraction_record(
                        event_id=eid, messenger=str(n.messenger), mission=n.mission,
                        instrument=n.instrument, role=str(n.role), notice_version=n.version,
                        region_version=repo.region_versions(eid),
                        trigger_time=first_notice[eid].trigger_time,
                        retracted_at=n.issue_time,
                        withdrawn_alert_ids=[a.alert_id for a in withdrawn],
                        trigger_ivorn=first_notice[eid].ivorn, notice_ivorn=n.ivorn,
                        provenance=flow.provenance), n.issue_time)
                retracted.add(eid)
                coinc.on_retraction(eid, n.issue_time)
            elif decision.status == "stored":
                assert step.region is not None and region_version is not None
                flow.note_version(eid, region_version, VersionContext(
                    first_notice[eid].ivorn, n.ivorn, n.significance))
                last_region[eid] = (region_version, step.region, n)
                flow.emit(engine.add_region(EventMeta.from_notice(n), region_version,
                                            step.region), extras, n.issue_time)
                coinc.on_notice(n, region_version, step.region)
            outcomes.append(out)
        feed_until(None)
    finally:
        flow.close()
        if db is not None:
            db.dispose()

    _write_jsonl(out_dir / "counterparts.jsonl", flow.records)
    _write_jsonl(out_dir / "retractions.jsonl", flow.retractions)
    _write_jsonl(out_dir / "coincidences.jsonl", flow.coincidences)
    summary = _summary(flow.records, outcomes, alert_counts, settings)
    summary["catalogue_versions"] = run_provenance.catalogue_versions()
    summary["rule_versions"] = run_provenance.rule_versions()
    summary["retractions"] = len(flow.retractions)
    summary["coincidences"] = dict(Counter(r["status"] for r in flow.coincidences))
    summary["published"] = {k: v for k, v in flow.counts.items() if v}
    if plot:
        summary["plots"] = plot_events(out_dir / "plots", flow.records, last_region, retracted)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with open(path, "w") as fh:
        for rec in records:
            fh.write(json.dumps(rec, sort_keys=True, default=str) + "\n")


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
