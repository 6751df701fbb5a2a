"""Every retraction of an event reaches subscribers once: a retraction record on the
retractions topic and a retraction VOEvent, from ``replay --publish`` and from ``run``'s
region sync (restarts included), whether or not the event had candidates."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from coincidence.engine import CoincidenceEngine
from mm_broker.app.alert_frame import windows_from_settings
from mm_broker.app.flow import CounterpartFlow
from mm_broker.app.ingest import Limits, ingest
from mm_broker.app.replay import replay
from mm_broker.app.run import RegionSync
from mm_broker.core import config
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.db.schema import associations, retractions, voevents
from publishers.consume import ConsumeError, read
from publishers.publish import Publisher
from publishers.records import counterpart_key

pytestmark = pytest.mark.services

LVK = "notices/lvk"
ALERTS = ["alerts/ztf/parquet/20240115_fink-mm"]


def _keys(settings: config.Settings, topic: str) -> Counter[str]:
    try:
        return Counter(m.key for m in read(topic, settings.kafka.bootstrap, timeout=5)
                       if m.key is not None)
    except ConsumeError:
        return Counter()


def test_replay_publish_sends_each_retraction_once(fresh_db: config.Settings, data_dir: Path,
                                                   tmp_path: Path) -> None:
    """A real LVK alert with its map and its retraction: one retraction record and one
    retraction VOEvent, and nothing more when the night is replayed again."""
    settings = fresh_db.with_values({"publish.topic_prefix": f"r{uuid.uuid4().hex[:8]}"})
    notices = [str(data_dir / LVK / "MS181101ab-preliminary.json"),
               str(data_dir / LVK / "MS181101ab-retraction.json")]
    alerts = [str(data_dir / p) for p in ALERTS]
    first = replay(settings, notices, alerts, tmp_path / "a", publish=True)
    second = replay(settings, notices, alerts, tmp_path / "b", publish=True)

    recs = [json.loads(x) for x in (tmp_path / "a" / "retractions.jsonl").read_text().split("\n")
            if x]
    assert [r["event_id"] for r in recs] == ["LVK:MS181101ab"]
    assert recs[0]["withdrawn_alert_ids"] == []  # no candidate: announced all the same
    assert recs[0]["region_version"] == 1 and recs[0]["role"] == "test"
    assert first["retractions"] == 1 and first["published"]["new_retractions"] == 1
    assert second["published"].get("new_retractions", 0) == 0
    topic = f"{settings.publish.topic_prefix}.test.retractions"
    key = f"LVK:MS181101ab|{recs[0]['notice_version']}|retraction"
    assert _keys(settings, topic) == Counter({key: 1})
    # one retraction VOEvent written by each replay, one broadcast in all
    for out in ("a", "b"):
        files = [p.name for p in (tmp_path / out / "voevents").iterdir()]
        assert len([f for f in files if "retraction" in f]) == 1, files
    db = engine_for(settings)
    try:
        with db.connect() as conn:
            kinds = Counter(conn.execute(select(voevents.c.kind)).scalars())
            rows = conn.execute(select(retractions.c.published_at)).scalars().all()
    finally:
        db.dispose()
    assert kinds == Counter({"retraction": 1})
    assert len(rows) == 1 and rows[0] is not None


def test_run_sync_retracts_once_across_a_restart(fresh_db: config.Settings,
                                                 data_dir: Path) -> None:
    """The store has the event and its retraction, and a candidate published before a
    restart: the region sync of a fresh service withdraws that candidate and publishes
    the retraction; a second fresh service (another restart) publishes nothing."""
    settings = fresh_db.with_values({"publish.topic_prefix": f"s{uuid.uuid4().hex[:8]}"})
    limits = Limits.from_settings(settings)
    db = engine_for(settings)
    try:
        pre = ingest(db, (data_dir / LVK / "MS181101ab-preliminary.json").read_bytes(), "gcn",
                     "igwn.gwalert", limits=limits)
        assert pre.status == "stored"
        candidate = {"event_id": "LVK:MS181101ab", "messenger": "GW", "mission": "LVK",
                     "instrument": "H1L1", "notice_version": pre.notice.version,
                     "region_version": 1, "role": "test", "status": "candidate",
                     "trigger_time": "2018-11-01T22:22:46Z", "survey": "ZTF",
                     "object_id": "ZTF18abcdefg", "alert_id": "700", "alert_time":
                     "2018-11-02T06:00:00Z", "ra": 10.0, "dec": 20.0, "delta_t_s": 27434.0,
                     "separation_deg": None, "credible_level": 0.5,
                     "prob_density_deg2": 1e-4, "p_chance": 1.0, "rank": 1,
                     "separation_ratio": None, "rate_per_deg2_day": 0.05,
                     "searched_area_deg2": 100.0, "elapsed_days": 0.3}
        with db.begin() as conn:
            conn.execute(associations.insert().values(
                event_id="LVK:MS181101ab", region_version=1, alert_id="700",
                status="candidate", record=candidate, created_at=datetime.now(UTC),
                published_at=datetime.now(UTC)))
        retr = ingest(db, (data_dir / LVK / "MS181101ab-retraction.json").read_bytes(), "gcn",
                      "igwn.gwalert", limits=limits)
        assert retr.status == "retracted"
        counts = []
        for _restart in range(2):
            flow = CounterpartFlow({"mm_broker_version": "t", "config_hash": "h"}, store=db,
                                   network=Publisher.from_settings(settings))
            sync = RegionSync(db, CoincidenceEngine(windows=windows_from_settings(settings)),
                              flow)
            assert sync.sync() == [] and sync.sync() == []
            flow.close()
            counts.append(flow.counts["new_retractions"])
    finally:
        db.dispose()
    assert counts == [1, 0]
    prefix = settings.publish.topic_prefix
    retracted = _keys(settings, f"{prefix}.test.retractions")
    assert retracted == Counter({f"LVK:MS181101ab|{retr.notice.version}|retraction": 1})
    withdrawn = {**candidate, "status": "withdrawn"}
    on_gw = _keys(settings, f"{prefix}.test.counterparts.gw")
    assert on_gw == Counter({counterpart_key(withdrawn): 1})


def _record(eid: str, i: int) -> dict:
    return {"event_id": eid, "messenger": "X", "mission": "EP", "instrument": "WXT",
            "notice_version": 1, "region_version": 1, "role": "test", "status": "candidate",
            "trigger_time": "2018-11-29T05:00:00Z", "survey": "ZTF",
            "object_id": f"ZTF18flow{i:04d}", "alert_id": str(5000 + i),
            "alert_time": "2018-11-29T06:00:00Z", "ra": 16.9, "dec": -19.5,
            "delta_t_s": 3600.0, "separation_deg": 0.5, "separation_ratio": 0.2,
            "credible_level": 0.3, "prob_density_deg2": None, "p_chance": 0.01,
            "rank": i + 1, "rate_per_deg2_day": 0.05, "searched_area_deg2": 1.0,
            "elapsed_days": 0.04}


def test_voevent_numbering_survives_a_restart(fresh_db: config.Settings) -> None:
    """The VOEvents the flow broadcast are kept in the store: after a restart the next
    VOEvent of the same event version is issue 2 (superseding issue 1), not issue 1
    again, and the stored rows name their region version."""
    settings = fresh_db.with_values({"publish.topic_prefix": f"v{uuid.uuid4().hex[:8]}"})
    eid = f"EP:flow{uuid.uuid4().hex[:6]}"
    db = engine_for(settings)
    try:
        ivorns = []
        for batch in ([_record(eid, 0), _record(eid, 1)], [_record(eid, 2)]):
            flow = CounterpartFlow({}, store=db, network=Publisher.from_settings(settings))
            assert flow.emit_records(batch, datetime.now(UTC)) == len(batch)
            flow.close()
            with db.connect() as conn:
                ivorns = conn.execute(select(voevents.c.ivorn, voevents.c.region_version)
                                      .where(voevents.c.event_id == eid)
                                      .order_by(voevents.c.created_at)).all()
    finally:
        db.dispose()
    assert [iv.rsplit("/", 2)[-2:] for iv, _ in ivorns] == [["r1", "1"], ["r1", "2"]]
    assert {rv for _, rv in ivorns} == {1}
