"""``mm-broker alerts archive`` (:mod:`mm_broker.app.archive`) reaches a secured Kafka
cluster like ``mm-broker run`` does, and stamps the run's provenance — checked without
Spark: the Kafka source and the archive queries are replaced by recorders."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fink_core import fink_science
from mm_broker.app import archive as archive_mod
from mm_broker.app.provenance import rule_versions
from mm_broker.core import config
from mm_broker.core.kafka import spark_source_options
from mm_broker.core.provenance import Provenance


class _Query:
    """What start_archive returns, enough for archive() to wait on and count."""

    def __init__(self, name: str, rows: int) -> None:
        self.name = name
        self.recentProgress = [{"numInputRows": rows}]
        self.stopped = False

    def awaitTermination(self) -> None:  # Spark's name
        pass

    def stop(self) -> None:
        self.stopped = True


def test_the_archive_source_gets_the_security_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MM_TEST_ARCHIVE_USER", "alice")
    monkeypatch.setenv("MM_TEST_ARCHIVE_PASSWORD", "s3cr\"et")
    settings = config.load(environ={
        "MM_KAFKA__BOOTSTRAP": "broker-1.example.org:9093",
        "MM_KAFKA__SECURITY_PROTOCOL": "sasl_ssl",
        "MM_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
        "MM_KAFKA__SASL_USERNAME_ENV": "MM_TEST_ARCHIVE_USER",
        "MM_KAFKA__SASL_PASSWORD_ENV": "MM_TEST_ARCHIVE_PASSWORD"})
    seen: dict[str, Any] = {}
    queries = [_Query("archive_raw", 3), _Query("archive_enriched", 2)]

    def read_kafka(spark: Any, bootstrap: str, topic: str, starting_offsets: str = "earliest",
                   max_offsets: int | None = None, options: Any = None) -> str:
        seen.update(spark=spark, bootstrap=bootstrap, topic=topic, max_offsets=max_offsets,
                    options=dict(options or {}))
        return "kafka-frame"

    def start_archive(spark: Any, kafka_df: Any, catalogues: Any, archive_uri: str,
                      checkpoint_uri: str, trigger: Any, *, provenance: Any = None) -> list:
        seen.update(kafka_df=kafka_df, catalogues=catalogues, checkpoint=checkpoint_uri,
                    trigger=trigger, provenance=provenance)
        return queries

    monkeypatch.setattr(archive_mod, "read_kafka", read_kafka)
    monkeypatch.setattr(archive_mod, "start_archive", start_archive)
    monkeypatch.setattr(archive_mod, "load_default_catalogues", lambda folder: [])
    spark = object()
    counts = archive_mod.archive(settings, topics=["a", "b"], once=True, spark=spark, name="t")

    assert counts == {"archive_raw": 3, "archive_enriched": 2}
    assert all(q.stopped for q in queries)
    assert seen["spark"] is spark and seen["kafka_df"] == "kafka-frame"
    assert seen["bootstrap"] == "broker-1.example.org:9093" and seen["topic"] == "a,b"
    assert seen["trigger"] == {"availableNow": True}
    options = seen["options"]
    # Exactly the options of `mm-broker run`'s source, security included.
    assert options == spark_source_options(settings)
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    jaas = options["kafka.sasl.jaas.config"]
    assert jaas.startswith("org.apache.kafka.common.security.scram.ScramLoginModule required")
    assert 'username="alice"' in jaas and 'password="s3cr\\"et"' in jaas
    # The run's provenance: these settings, all three rule sets.
    provenance = seen["provenance"]
    assert isinstance(provenance, Provenance)
    assert provenance.config_hash == settings.hash()
    assert provenance.rule_versions() == rule_versions()
    assert set(json.loads(provenance.columns()["prov_rules"])) == {
        "quality", "classification", "coincidence", *fink_science.versions()}


def test_the_cli_runs_the_application_archive() -> None:
    from mm_broker.app.cli import alerts

    assert alerts.archive is archive_mod.archive
