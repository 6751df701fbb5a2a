"""Shared data facts and helpers of the fink_core tests (imported by conftest and tests)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro

#: Alerts per folder of shared/data (one alert per Avro file).
ZTF_AVRO_COUNTS = {
    "20180626_skyportal": 3,
    "20181129_fink-alert-simulator": 499,
    "20200101_fink-broker": 50,
    "20231018_fink-broker": 172,
    "fink-alert-simulator_templates": 2,
    "ztf-avro-alert_samples": 2,
}
LSST_AVRO_COUNTS = {"20250906_lsstcam_v9_0_fink-broker": 100}
PARQUET_COUNTS = {
    "20190903_fink-broker_science": 2,
    "20200101_fink-broker_raw": 12,
    "20200101_fink-broker_science": 1,
    "20240115_fink-mm": 849,
}
FINK_NIGHT = "alerts/ztf/parquet/20240115_fink-mm"


@dataclass(frozen=True)
class RawAlert:
    """One Avro file as fastavro reads it (the reference for our decoder)."""

    path: Path
    payload: bytes
    records: list[dict[str, Any]]
    writer_schema: dict[str, Any]


def read_raw(path: Path) -> RawAlert:
    """Read one Avro file with fastavro directly."""
    payload = path.read_bytes()
    reader = fastavro.reader(io.BytesIO(payload))
    records = [dict(r) for r in reader if isinstance(r, dict)]
    schema = reader.writer_schema
    return RawAlert(path, payload, records, dict(schema) if isinstance(schema, dict) else {})
