"""``mm-broker bench soak`` in miniature (~20 s of alerts, 10 regions) on the real
services: the JSON has its figures, and the ones that could be wrong are checked
against what is computed here independently (the counterparts, from the notices the
benchmark stored and the alerts the service archived). No timing is asserted."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pytest

from benchmarks import soak as bench
from mm_broker.core import config

pytestmark = [pytest.mark.services, pytest.mark.spark]

KEYS = {"benchmark", "cores", "loadavg_1min", "rate_asked_per_min", "rate_achieved_per_min",
        "sent", "processed", "processed_per_s", "regions", "counterparts", "latency_p50_s",
        "latency_p95_s", "lag_samples", "lag_max", "lag_final", "rss_start_mb",
        "rss_end_mb", "rss_growth_pct", "rss_samples", "goal_rss_growth_pct_max",
        "goal_rate_per_min", "met", "cpu_steady", "stopped_early"}


def _jd(iso: str) -> float:
    t = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return t.timestamp() / 86400 + 2440587.5


def _expected_pairs(work: Path) -> tuple[int, int, int]:
    """(alert–notice pairs that are counterparts, alerts archived, alerts within 5 % of
    a circle's edge), from the notice files and the enriched archive."""
    notices = [json.loads(p.read_bytes()) for p in sorted((work / "notices").glob("*.json"))]
    frame = ds.dataset(str(work / "archive" / "enriched"), format="parquet",
                       partitioning="hive").to_table(
        columns=["alert_id", "ra", "dec", "obs_jd", "first_detection_jd", "decode_error"],
    ).to_pandas()
    frame = frame[frame["decode_error"].isna()]
    ra, dec = np.radians(frame["ra"].to_numpy()), np.radians(frame["dec"].to_numpy())
    obs = np.maximum(frame["obs_jd"].to_numpy(), frame["first_detection_jd"].to_numpy())
    first = frame["first_detection_jd"].to_numpy()
    pairs = edge = 0
    for n in notices:
        r0, d0 = np.radians(n["ra"]), np.radians(n["dec"])
        cos = np.sin(d0) * np.sin(dec) + np.cos(d0) * np.cos(dec) * np.cos(ra - r0)
        sep = np.degrees(np.arccos(np.clip(cos, -1, 1)))
        t0 = _jd(n["trigger_time"])
        in_time = (obs >= t0 - 600 / 86400) & (obs <= t0 + 20) & (first >= t0 - 600 / 86400)
        pairs += int(np.sum((sep < n["ra_dec_error"]) & in_time))
        edge += int(np.sum(np.abs(sep / n["ra_dec_error"] - 1) < 0.05))
    return pairs, int(frame["alert_id"].nunique()), edge


def test_small_soak_reports_consistent_figures(running: config.Settings, data_dir: Path,
                                               tmp_path: Path) -> None:
    assert running.data_dir == data_dir
    work = tmp_path / "soak"
    out = bench.bench_soak(running, rate_per_min=900, minutes=0.35, regions=10,
                           match_fraction=0.1, warmup_s=5, sample_s=3, drain_timeout_s=40,
                           workdir=work)
    json.dumps(out)  # one JSON object
    assert KEYS <= set(out), KEYS - set(out)
    assert out["benchmark"] == "soak" and out["stopped_early"] is None
    assert out["regions"] == 10 and len(list((work / "notices").glob("*.json"))) == 10

    pairs, archived, edge = _expected_pairs(work)
    assert edge == 0, "alerts must keep clear of the circles' edges"
    assert archived == out["sent"] == out["processed"] == out["processed_by_service"]
    assert out["sent"] == out["alerts_planned"] == round(900 / 60 * 0.35 * 60)
    c = out["counterparts"]
    assert pairs > 0
    assert c["expected"] == pairs
    assert c["received_on_topic"] == pairs and c["messages_on_topic"] == pairs
    assert c["stored"] == pairs and c["published_by_service"] == pairs
    assert c["fraction"] == round(pairs / out["sent"], 4)
    assert c["voevents_received"] is not None and 1 <= c["voevents_received"] <= pairs

    lags = out["lag_samples"]
    assert lags and all(lag >= 0 for _, lag in lags)
    assert [t for t, _ in lags] == sorted(t for t, _ in lags)
    assert out["lag_final"] == 0 and out["lag_max"] == max(lag for _, lag in lags)
    assert out["met"]["drained"] is True
    assert out["batches_after_warmup"]["count"] > 0  # the service's log was read
    assert all(isinstance(v, bool) for v in out["met"].values())
    assert out["rss_start_mb"] > 0 and out["rss_end_mb"] > 0
    assert out["rss_start_by_process_mb"]["driver"] > 0
    assert out["rss_start_by_process_mb"]["jvm"] > 0
    assert out["rss_growth_pct"] == round(
        (out["rss_end_mb"] - out["rss_start_mb"]) / out["rss_start_mb"] * 100, 1)
    assert all(v >= 0 for k, v in out["cpu_steady"].items() if k.startswith("service_"))
    assert out["latency_all_n"] == pairs
    assert 0 < out["latency_all_p50_s"] <= out["latency_all_p95_s"]
    assert abs(out["rate_achieved_per_min"] - 900) < 90
    assert out["goal_rate_per_min"] == 100_000 and out["goal_rss_growth_pct_max"] == 10
