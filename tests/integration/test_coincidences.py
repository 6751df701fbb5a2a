"""Notice × notice coincidences through ``replay``: a real LVK alert (its real embedded
map) moved to 1.74 s before the real GBM notice of GRB 170817A gives one GW × GRB
coincidence in DIR/coincidences.jsonl; moved 1,000 s earlier, none; replayed twice with
publishing, the pair is published once on mm.coincidences (outbox), and every
counterpart's GCN-style twin is keyed like its Avro record."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from mm_broker.app.replay import replay
from mm_broker.core import config
from publishers import schema as sch
from publishers.consume import read
from publishers.records import validate

LVK = "notices/lvk/MS181101ab-ext-update.json"
GBM = "notices/fermi_gbm/externaltrigger_original_data.xml"


def _notices(data_dir: Path, folder: Path, seconds_before: float) -> list[str]:
    """The real LVK notice as an observation-role superevent at GBM's time minus
    ``seconds_before`` (GBM trigger 2017-08-17T12:41:06.47Z), and the real GBM notice."""
    folder.mkdir(parents=True, exist_ok=True)
    d = json.loads((data_dir / LVK).read_text())
    d["superevent_id"] = "S170817zz"
    d["event"]["search"] = "AllSky"  # an MDC search would make it a test event
    t = 6.47 - seconds_before
    minutes, sec = divmod(41 * 60 + t, 60)
    d["event"]["time"] = f"2017-08-17T12:{int(minutes):02d}:{sec:06.3f}Z"
    d["time_created"] = "2017-08-17T13:00:00Z"
    gw = folder / "gw.json"
    gw.write_text(json.dumps(d))
    return [str(gw), str(data_dir / GBM)]


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x]


def test_replay_writes_the_gw_grb_coincidence(data_dir: Path, tmp_path: Path) -> None:
    summary = replay(config.load(), _notices(data_dir, tmp_path / "n", 1.74), [],
                     tmp_path / "out")
    recs = _lines(tmp_path / "out" / "coincidences.jsonl")
    assert len(recs) == 1 and summary["coincidences"] == {"candidate": 1}
    r = recs[0]
    assert (r["event_id"], r["external_event_id"], r["pair"]) == (
        "LVK:S170817zz", "Fermi-GBM:524666471", "GW-GRB")
    assert r["time_difference_s"] == pytest.approx(1.74, abs=1e-3)
    assert r["time_coincidence_far_hz"] > 0 and r["overlap_integral"] > 1
    assert r["time_sky_position_coincidence_far_hz"] < r["time_coincidence_far_hz"]
    assert r["lvk_time_coincidence_far_hz"] == pytest.approx(2.14387838137e-14)
    validate(r, sch.load("coincidence", 1))


def test_outside_the_window_nothing(data_dir: Path, tmp_path: Path) -> None:
    replay(config.load(), _notices(data_dir, tmp_path / "n", 1000.0), [], tmp_path / "out")
    assert _lines(tmp_path / "out" / "coincidences.jsonl") == []


@pytest.mark.services
def test_published_once_across_two_replays(fresh_db: config.Settings, data_dir: Path,
                                           tmp_path: Path) -> None:
    settings = fresh_db.with_values({"publish.topic_prefix": f"c{uuid.uuid4().hex[:8]}"})
    notices = _notices(data_dir, tmp_path / "n", 1.74)
    first = replay(settings, notices, [], tmp_path / "a", publish=True)
    second = replay(settings, notices, [], tmp_path / "b", publish=True)
    assert first["published"]["new_coincidences"] == 1
    assert second["published"].get("new_coincidences", 0) == 0
    assert len(_lines(tmp_path / "b" / "coincidences.jsonl")) == 1  # the file, each run
    topic = f"{settings.publish.topic_prefix}.coincidences"
    msgs = list(read(topic, settings.kafka.bootstrap, timeout=10))
    assert [m.key for m in msgs] == ["LVK:S170817zz|1|Fermi-GBM:524666471|1"]
