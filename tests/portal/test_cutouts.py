"""Cutouts from the raw archive: a real ZTF Avro alert (its three stamps) found from the
enriched row's Kafka coordinates, decoded to PNG."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from mm_broker.app.serve import objects

ALERT = "alerts/ztf/avro/20181129_fink-alert-simulator/697251920015010010.avro"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_stamps_of_a_real_alert_from_the_raw_archive(data_dir: Path, tmp_path: Path) -> None:
    payload = (data_dir / ALERT).read_bytes()
    raw = pa.table({"key": [None], "value": [payload], "topic": ["ztf.alerts"],
                    "partition": pa.array([0], pa.int32()), "offset": pa.array([42], pa.int64()),
                    "night": ["20181129"]})
    ds.write_dataset(raw, str(tmp_path / "raw"), format="parquet", partitioning=["night"],
                     partitioning_flavor="hive")
    alert = {"alert_id": "697251920015010010", "kafka_topic": "ztf.alerts",
             "kafka_partition": 0, "kafka_offset": 42}
    stamps = objects.cutouts(tmp_path.as_uri(), alert)
    assert sorted(stamps) == sorted(objects.STAMPS)
    for png in stamps.values():
        assert _png_size(png) == (63, 63)  # ZTF stamps are 63 x 63 pixels
    (tmp_path / "science.png").write_bytes(stamps["cutoutScience"])
    # another offset: not archived, no stamp (never a wrong alert's)
    assert objects.cutouts(tmp_path.as_uri(), {**alert, "kafka_offset": 43}) == {}
    assert objects.cutouts((tmp_path / "none").as_uri(), alert) == {}


def test_png_encoder_keeps_the_shape() -> None:
    png = objects.png_grey(np.arange(12, dtype=np.uint8).reshape(3, 4))
    assert _png_size(png) == (4, 3)
