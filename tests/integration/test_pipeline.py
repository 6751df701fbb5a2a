"""fink_core on the real services: Kafka → Spark Structured Streaming → Parquet archive,
with every real Avro alert, a corrupt payload, and a restart from the checkpoint."""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path

import fastavro
import pytest

from mm_broker.core import config
from mm_broker.core.kafka import log_config

pytestmark = [pytest.mark.services, pytest.mark.spark]


def _expected_ids(files: list[Path]) -> list[str]:
    ids = []
    for f in files:
        for rec in fastavro.reader(io.BytesIO(f.read_bytes())):
            ids.append(str(rec["candid"]) if "candid" in rec
                       else str(rec["diaSource"]["diaSourceId"]))
    return ids


def _settings(running: config.Settings, tmp_path: Path) -> config.Settings:
    env = {**os.environ, "MM_ALERTS__ARCHIVE_URI": (tmp_path / "archive").as_uri(),
           "MM_ALERTS__CHECKPOINT_URI": (tmp_path / "ckpt").as_uri()}
    return config.load(environ=env)


def test_all_real_alerts_archived_once_across_a_restart(running: config.Settings, spark,
                                                        data_dir: Path, tmp_path: Path) -> None:
    from confluent_kafka import Producer

    from fink_core import simulator
    from mm_broker.app.archive import archive

    settings = _settings(running, tmp_path)
    topic = f"test.alerts.{uuid.uuid4().hex[:8]}"
    bootstrap = str(settings.get("kafka.bootstrap"))
    files = simulator.alert_files([data_dir / "alerts/ztf/avro", data_dir / "alerts/lsst/avro"])
    half = len(files) // 2
    first = simulator.send(files[:half], topic, bootstrap)
    assert first.delivered == half
    producer = Producer({**log_config(settings), "bootstrap.servers": bootstrap})
    producer.produce(topic, key=b"corrupt", value=files[0].read_bytes()[:300])  # truncated
    assert producer.flush(30) == 0

    counts1 = archive(settings, topics=[topic], once=True, spark=spark, name="t")
    second = simulator.send(files[half:], topic, bootstrap)
    assert second.delivered == len(files) - half
    counts2 = archive(settings, topics=[topic], once=True, spark=spark, name="t")
    assert counts1["archive_raw"] + counts2["archive_raw"] == len(files) + 1

    # Spark reads the Hive partitions back (null partition values included).
    enriched = spark.read.parquet(str(tmp_path / "archive" / "enriched")).toPandas()
    raw = spark.read.parquet(str(tmp_path / "archive" / "raw")).drop("value").toPandas()
    assert len(raw) == len(files) + 1  # every payload, bad one included, exactly once
    assert raw.groupby(["partition", "offset"]).size().max() == 1
    good = enriched[enriched["decode_error"].isna()]
    bad = enriched[enriched["decode_error"].notna()]
    expected = _expected_ids(files)
    # One row per alert record (the same alert in two files is two records).
    assert sorted(good["alert_id"].astype(str)) == sorted(expected)
    assert len(bad) == 1 and "CorruptAlert" in bad["decode_error"].iloc[0]
    assert set(good["survey"]) == {"ztf", "lsst"}
    # Values: a sample compared with fastavro reads of the file.
    sample = files[3]
    rec = next(fastavro.reader(io.BytesIO(sample.read_bytes())))
    row = good[good["alert_id"].astype(str) == str(rec["candid"])].iloc[0]
    assert row["ra"] == pytest.approx(rec["candidate"]["ra"])
    assert row["object_id"] == rec["objectId"]
    assert row["classification"] in {"solar_system", "variable_star", "agn_blazar", "galactic",
                                     "fast_transient", "sn_like", "unknown"}
    # Partitions: night from the observation time, coarse HEALPix cell from ipix29.
    assert (good["hpx1"].astype(int) == (good["ipix29"].astype("int64") // 4**28)).all()
    # Provenance on every row, the corrupt payload's included: this run's version,
    # configuration hash, catalogue and rule versions.
    from fink_core.catalogues import load_default_catalogues
    from mm_broker import __version__
    from mm_broker.app.provenance import rule_versions
    from mm_broker.core.provenance import Provenance

    expected = Provenance.from_settings(
        settings, load_default_catalogues(settings.catalogue_dir()), rule_versions()).columns()
    assert expected["prov_mm_broker_version"] == __version__
    assert expected["prov_config_hash"] == settings.hash() != config.load(environ={}).hash()
    for column, value in expected.items():
        assert enriched[column].tolist() == [value] * len(enriched), column
