"""The single-core pandas run of the alert path (the Spark figure's ceiling)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import pipeline


def test_bench_runs(data_dir: Path) -> None:
    result = pipeline.run_pandas(300, data_dir=data_dir, batch_size=150)
    assert result["n_alerts"] == 300
    assert result["mix"]["ztf"] + result["mix"]["lsst"] == 300
    assert result["mix"]["failed"] == 0
    assert result["alerts_per_s"] > 50
    assert result["units"]["alerts_per_s"].startswith("alerts/s")
