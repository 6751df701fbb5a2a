"""The table behind ``mm-broker bench`` and the pure helpers of the benchmarks
(no service, no Spark)."""

from __future__ import annotations

import inspect
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import fastavro
import numpy as np
import pytest

from benchmarks import common, procstat, registry, soak_figures, soak_sky
from benchmarks.alert_stream import LATENCY_ALERT, AlertTemplate, zigzag_varint
from benchmarks.scratch_service import batch_log, checkpoint_offsets
from mm_broker.app import run  # the streaming service, for its logger

#: The names the public contract lists (ARCHITECTURE.md), ``soak`` and ``portal``.
NAMES = ["notices", "pipeline", "join", "latency", "retro", "publish", "soak", "portal"]


def test_table_has_every_benchmark() -> None:
    assert list(registry.BENCHMARKS) == NAMES
    for name, bench in registry.BENCHMARKS.items():
        assert bench.name == name and bench.summary


@pytest.mark.parametrize("name", NAMES)
def test_table_defaults_are_the_functions_defaults(name: str) -> None:
    bench = registry.BENCHMARKS[name]
    signature = inspect.signature(bench.run).parameters
    assert next(iter(signature)) == "settings"
    for key, param in bench.params.items():
        assert key in signature, key
        assert signature[key].default == param.default, key
        assert isinstance(param.default, int | float) and param.help
    # every other argument of the function is one the command line cannot give
    assert set(signature) - set(bench.params) <= {"settings", "workdir"}


def test_parse_types_and_errors() -> None:
    soak = registry.get("soak")
    values = soak.parse(["minutes=1", "rate-per-min=30000", "cutouts=1", "seed=2e0"])
    assert values["minutes"] == 1.0 and isinstance(values["minutes"], float)
    assert values["rate_per_min"] == 30000.0 and isinstance(values["rate_per_min"], float)
    assert values["cutouts"] == 1 and isinstance(values["cutouts"], int)
    assert values["seed"] == 2 and isinstance(values["seed"], int)
    assert values["regions"] == 100  # default kept
    assert set(values) == set(soak.params)
    with pytest.raises(ValueError, match="no parameter 'rate'"):
        soak.parse(["rate=5"])
    with pytest.raises(ValueError, match="must be an integer"):
        soak.parse(["regions=1.5"])
    with pytest.raises(ValueError, match="not a number"):
        soak.parse(["minutes=ten"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        soak.parse(["minutes"])
    with pytest.raises(KeyError, match="known: notices"):
        registry.get("nope")


def test_run_passes_the_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake(settings: object, repeat: int = 30) -> dict[str, object]:
        seen.update(settings=settings, repeat=repeat)
        return {"benchmark": "notices"}

    monkeypatch.setitem(registry.BENCHMARKS, "notices", registry.Benchmark(
        "notices", fake, "x", registry.BENCHMARKS["notices"].params))
    assert registry.run("notices", "S", ["repeat=3"]) == {"benchmark": "notices"}  # type: ignore[arg-type]
    assert seen == {"settings": "S", "repeat": 3}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mm_broker.app.cli", "bench", *args],
                          capture_output=True, text=True, timeout=300, check=False)


def test_cli_rejects_unknown_names_and_parameters() -> None:
    done = _cli("nope", "--json")
    assert done.returncode == 2 and "unknown benchmark 'nope'" in done.stderr
    done = _cli("join", "--json", "--param", "bogus=1")
    assert done.returncode == 2 and "no parameter 'bogus'" in done.stderr
    done = _cli("--help")
    assert done.returncode == 0 and "rate_per_min=100000.0" in done.stdout


def test_cli_join_prints_one_json_object() -> None:
    done = _cli("join", "--json", "--param", "n_alerts=2000", "--param", "n_regions=3",
                "--param", "n_gw=1", "--param", "repeats=1", "--param", "gw_depth=9")
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    figures = json.loads(line)
    assert figures["benchmark"] == "join" and figures["cores"] == os.cpu_count()
    assert figures["n_alerts"] == 2000 and figures["alerts_per_s_per_core"] > 0
    assert "units" in figures


def test_percentiles_and_latency_figures() -> None:
    stats = common.percentiles([0.003, 0.001, 0.002, 0.010])
    assert stats == {"median_ms": 2.5, "p95_ms": 10.0, "n": 4}
    out = common.latency_figures("latency", [1.0, 2.0, 3.0])
    assert out == {"latency_p50_s": 2.0, "latency_p95_s": 3.0, "latency_max_s": 3.0,
                   "latency_n": 3}
    assert common.latency_figures("x", []) == {"x_p50_s": None, "x_p95_s": None, "x_n": 0}
    assert set(common.machine()) == {"cores", "loadavg_1min", "measured_at"}
    cpu, wall = common.best_time(lambda: sum(range(1000)), 2)
    assert 0 <= cpu and 0 < wall
    assert json.loads(common.dumps({"a_ms": 1.5})) == {"a_ms": 1.5}
    assert "\n" not in common.dumps({"a": [1, 2]}) and "\n" in common.dumps({"a": 1}, False)


def test_soak_sky_keeps_alerts_clear_of_the_edges() -> None:
    sky = soak_sky.soak_sky(20, 5000, 0.1, seed=3)
    centres = soak_sky.unit(sky["centre_ra"], sky["centre_dec"])
    cos = np.clip(soak_sky.unit(sky["ra"], sky["dec"]) @ centres.T, -1, 1)
    ratio = np.degrees(np.arccos(cos)) / sky["radius"][None, :]
    inside = sky["region"] >= 0
    assert 0.07 < inside.mean() < 0.13
    assert np.all(ratio[np.flatnonzero(inside), sky["region"][inside]] < 0.9 + 1e-9)
    assert np.all(ratio[~inside] > 1.1)
    assert np.array_equal(soak_sky.near_any(sky["ra"], sky["dec"], centres, sky["radius"]),
                          inside)
    with pytest.raises(ValueError, match="disjoint"):
        soak_sky.soak_sky(3000, 10, 0.1, seed=1)


def test_in_ranges() -> None:
    ranges = np.array([[10, 20], [30, 31]], dtype=np.uint64)
    ipix = np.array([0, 10, 19, 20, 29, 30, 31, 99], dtype=np.uint64)
    assert soak_sky.in_ranges(ipix, ranges).tolist() == [False, True, True, False, False,
                                                         True, False, False]


def test_procstat_on_this_process() -> None:
    rss, ticks = procstat.service_usage(os.getpid())
    assert rss["driver"] > 0 and rss["total"] >= rss["driver"] and rss["processes"] >= 1
    assert ticks[os.getpid()][0] == "driver"
    assert procstat.cpu_by_role([ticks, ticks])["total"] == 0
    busy, total = procstat.machine_ticks()
    assert 0 < busy <= total


def test_batch_log_reads_the_service_log_format(tmp_path: Path) -> None:
    path = tmp_path / "service.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    run.log.addHandler(handler)
    level = run.log.level
    run.log.setLevel(logging.INFO)
    try:
        run.log.info("batch %d: %d alerts, %d associations, %d published", 7, 123, 4, 4)
    finally:
        run.log.removeHandler(handler)
        run.log.setLevel(level)
        handler.close()
    [(t, n)] = batch_log(path, 0.0)
    assert n == 123 and t > 1e9


def test_checkpoint_offsets(tmp_path: Path) -> None:
    assert checkpoint_offsets(tmp_path, "t") == {}
    (tmp_path / "commits").mkdir()
    (tmp_path / "offsets").mkdir()
    assert checkpoint_offsets(tmp_path, "t") == {}
    for k, off in ((0, 5), (1, 9), (2, 12)):
        (tmp_path / "offsets" / str(k)).write_text(
            'v1\n{"batchWatermarkMs":0}\n{"t":{"0":' + str(off) + ',"1":3}}\n')
    (tmp_path / "commits" / "0").write_text("v1\n")
    (tmp_path / "commits" / "1").write_text("v1\n")
    assert checkpoint_offsets(tmp_path, "t") == {0: 9, 1: 3}  # batch 2 not committed


def test_alert_template_copies_decode(data_dir: Path) -> None:
    template = AlertTemplate(data_dir / LATENCY_ALERT, cutouts=False)
    oid = template.object_id_for(12345)
    assert len(oid) == len(template.object_id) and oid.startswith("ZTF26")
    rec = next(fastavro.reader(io.BytesIO(template.copy(2**56 + 7, oid, 10.5, -3.25))))
    assert (rec["candid"], rec["objectId"]) == (2**56 + 7, oid)
    assert (rec["candidate"]["ra"], rec["candidate"]["dec"]) == (10.5, -3.25)
    assert not rec["cutoutScience"]["stampData"]
    with pytest.raises(ValueError, match="candid"):
        template.copy(5)
    assert zigzag_varint(0) == b"\x00" and zigzag_varint(-1) == b"\x01"
    assert zigzag_varint(64) == b"\x80\x01"


def _sample(t: float, processed: int, end: int, rss: float, ticks: int) -> dict[str, object]:
    return {"t": t, "end": end, "processed": processed, "lag": end - processed, "raw": end,
            "rss": {"total": rss, "driver": rss / 2, "jvm": rss / 2, "python_workers": 0.0},
            "ticks": {1: ("driver", ticks), 2: ("jvm", 2 * ticks)},
            "machine": (4 * ticks, 8 * ticks), "kafka_ticks": ticks, "bench_s": t / 10,
            "load": 1.0 + t / 100, "free_gb": 50.0}


def test_soak_window_figures() -> None:
    # 100 alerts/s sent for 40 s, processed with a 10 s delay, drained at t = 50
    samples = [_sample(t, max(0, 100 * (t - 10)), 100 * min(t, 40), 1000.0 + t, 100 * t)
               for t in range(0, 60, 10)]
    samples[-1]["processed"] = samples[-1]["end"]
    samples[-1]["lag"] = 0
    out = soak_figures.window_figures(samples, samples[-1], samples[4], warm=10,
                                      duration=40, clk=100)
    # from t = 10 (0 processed) to t = 50 (4,000): 100/s
    assert out["processed_per_s"] == 100.0 and out["processed_per_min"] == 6000.0
    assert out["processed_window_s"] == [10, 50]
    assert out["lag_samples"][:2] == [[0, 0], [10, 1000]] and out["lag_final"] == 0
    assert out["lag_max"] == 1000 and out["lag_at_end_of_sending"] == 1000
    # windows of min(60, 40 / 5) = 8 s: one sample each (t = 10, t = 50)
    assert out["rss_start_window_s"] == [10, 10] and out["rss_end_window_s"] == [50, 50]
    assert out["rss_start_mb"] == 1010.0 and out["rss_end_mb"] == 1050.0
    assert out["rss_growth_pct"] == round(40 / 1010 * 100, 1)
    cpu = out["cpu_steady"]  # steady window t = 10..40: driver 100 ticks/s = 1 core at clk 100
    assert out["cpu_steady_window_s"] == [10, 40]
    assert cpu["service_driver_cores"] == 1.0 and cpu["service_jvm_cores"] == 2.0
    assert cpu["service_total_cores"] == 3.0 and cpu["kafka_cores"] == 1.0
    assert cpu["machine_busy_cores"] == round((os.cpu_count() or 1) * 0.5, 2)
    assert cpu["bench_producer_cores"] == 0.1 and cpu["loadavg_1min_max"] == 1.5


def test_soak_batch_figures() -> None:
    assert soak_figures.batch_figures([]) == {
        "count": 0, "alerts_max": 0, "alerts_mean": 0.0, "interval_s_mean": None,
        "interval_s_max": None, "alerts_per_s": None}
    out = soak_figures.batch_figures([(10.0, 100), (12.0, 300), (16.0, 200)])
    assert out["count"] == 3 and out["alerts_max"] == 300 and out["alerts_mean"] == 200.0
    assert out["interval_s_mean"] == 3.0 and out["interval_s_max"] == 4.0
    assert out["alerts_per_s"] == round(500 / 6, 1)
