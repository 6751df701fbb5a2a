"""CounterpartProducer and the consumer on the real local Kafka."""

from __future__ import annotations

import io
import json
import math
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource
from pub_records import real_counterparts, record

from mm_broker.core import config
from publishers import consume as cons
from publishers import records as rec
from publishers import schema as sch
from publishers.config import PublishConfig
from publishers.kafka import CounterpartProducer, Topics, delete_topics

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def pconf(running: config.Settings) -> Iterator[PublishConfig]:
    """Publishing configuration under a topic prefix of this test run only."""
    conf = PublishConfig.from_settings(running).with_prefix(f"t{uuid.uuid4().hex[:8]}.mm")
    yield conf
    delete_topics(conf, Topics(conf.topic_prefix).all())


@pytest.fixture(scope="module")
def producer(pconf: PublishConfig) -> Iterator[CounterpartProducer]:
    p = CounterpartProducer(pconf)
    yield p
    assert p.close(30) == 0


def _bootstrap(conf: PublishConfig) -> str:
    return str(conf.kafka["bootstrap.servers"])


def _read(conf: PublishConfig, topic: str, **kw) -> list[cons.Consumed]:
    return list(cons.read(topic, _bootstrap(conf), timeout=15, client_config=conf.kafka, **kw))


def test_topics_are_created_with_configured_partitions_and_retention(
        pconf: PublishConfig, producer: CounterpartProducer) -> None:
    created = producer.ensure_topics()
    topics = Topics(pconf.topic_prefix)
    assert sorted(created) == sorted(topics.all())
    assert producer.ensure_topics() == []  # idempotent when they exist
    admin = AdminClient(dict(pconf.kafka))
    meta = admin.list_topics(timeout=10)
    for name in topics.all():
        assert len(meta.topics[name].partitions) == pconf.partitions
    res = ConfigResource(ConfigResource.Type.TOPIC, topics.counterparts("GW", "observation"))
    cfg = admin.describe_configs([res])[res].result(10)
    assert cfg["retention.ms"].value == str(pconf.retention_ms) == str(7 * 24 * 3600 * 1000)


def test_records_decode_with_the_schema_file_keys_unique_test_events_apart(
        pconf: PublishConfig, producer: CounterpartProducer, data_dir: Path) -> None:
    science, tests = [], []
    for messenger in ("GW", "GRB", "NU", "X"):
        science += real_counterparts(data_dir, f"{messenger}:obs-{uuid.uuid4().hex[:6]}",
                                     messenger=messenger)
        tests += real_counterparts(data_dir, f"{messenger}:test-{uuid.uuid4().hex[:6]}",
                                   messenger=messenger, role="test")
    report = producer.publish(science + tests)
    assert report.refused == [] and report.failed == []
    assert report.sent == report.delivered == len(science) + len(tests)
    topics = Topics(pconf.topic_prefix)
    written = sch.load("counterpart", pconf.counterpart_schema_version)
    expected = {rec.counterpart_key(r): rec.validate({**pconf.provenance, **r}, written)
                for r in science + tests}
    seen: dict[str, dict] = {}
    for messenger in ("GW", "GRB", "NU", "X"):
        for role in ("observation", "test"):
            topic = topics.counterparts(messenger, role)
            for item in _read(pconf, topic):
                assert item.schema == written.name
                assert item.key not in seen, f"duplicate key {item.key}"
                seen[item.key] = item.record
                # Test events only on .test. topics, science only on science topics.
                assert (item.record["role"] == "test") == (".test." in topic)
                assert item.record["messenger"] == messenger
    assert seen == expected  # every record, once, with the values sent (and provenance)
    assert all(r["mm_broker_version"] and r["config_hash"] for r in seen.values())


@pytest.mark.parametrize("version", [1, 2])
def test_provenance_maps_on_the_topics_by_schema_version(pconf: PublishConfig, data_dir: Path,
                                                          version: int) -> None:
    """Records carrying catalogue and rule versions are published at either schema
    version: v2 carries the maps, v1 (no slot for them) leaves them out."""
    from dataclasses import replace

    conf = replace(pconf, counterpart_schema_version=version)
    cats = {"gcvs": "sha256:d7ac03d87495 r=1.5arcsec"}
    rules = {"quality": "1.0.0", "classification": "1.0.0", "coincidence": "1.0.0"}
    eid = f"GRB:prov{version}-{uuid.uuid4().hex[:6]}"
    recs = [{**r, "catalogue_versions": cats, "rule_versions": rules}
            for r in real_counterparts(data_dir, eid)]
    p = CounterpartProducer(conf)
    try:
        report = p.publish(recs)
    finally:
        assert p.close(30) == 0
    assert report.refused == [] and report.delivered == len(recs)
    got = _read(conf, Topics(conf.topic_prefix).counterparts("GRB", "observation"), event=eid)
    assert len(got) == len(recs)
    for item in got:
        assert item.schema == f"mm_broker.counterpart/{version}"
        if version == 2:
            assert item.record["catalogue_versions"] == cats
            assert item.record["rule_versions"] == rules
        else:
            assert "catalogue_versions" not in item.record
            assert "rule_versions" not in item.record


def test_bad_records_are_refused_and_the_rest_of_the_batch_goes(
        pconf: PublishConfig, producer: CounterpartProducer) -> None:
    eid = f"GRB:batch-{uuid.uuid4().hex[:8]}"
    good = [record(event_id=eid, alert_id=str(i), rank=i + 1) for i in range(6)]
    missing = record(event_id=eid, alert_id="m")
    del missing["ra"]
    bad = [missing, record(event_id=eid, alert_id="n", p_chance=math.nan),
           record(event_id=eid, alert_id="i", dec=math.inf),
           record(event_id=eid, alert_id="o", credible_level=1.7),
           record(event_id=eid, alert_id="s", object_id="ZTF\ud800")]  # lone surrogate
    batch = good[:2] + [bad[0]] + good[2:4] + bad[1:] + good[4:]
    report = producer.publish(batch)
    assert report.delivered == report.sent == len(good)
    assert [key for key, _ in report.refused] == [f"{eid}|1|m", f"{eid}|1|n", f"{eid}|1|i",
                                                  f"{eid}|1|o", f"{eid}|1|s"]
    reasons = [reason for _, reason in report.refused]
    assert "ra: missing required field" in reasons[0]
    assert "p_chance: nan is not a finite number" in reasons[1]
    assert "dec: inf is not a finite number" in reasons[2]
    assert "credible_level: 1.7 is outside [0.0, 1.0]" in reasons[3]
    assert f"cannot be encoded with mm_broker.counterpart/{pconf.counterpart_schema_version}" \
        in reasons[4]
    got = _read(pconf, Topics(pconf.topic_prefix).counterparts("GRB", "observation"), event=eid)
    assert sorted(i.record["alert_id"] for i in got) == sorted(r["alert_id"] for r in good)


def test_retractions_go_to_their_topic(pconf: PublishConfig,
                                       producer: CounterpartProducer) -> None:
    eid = f"LVK:S{uuid.uuid4().hex[:6]}"
    r = {"event_id": eid, "messenger": "GW", "mission": "LVK", "instrument": "gstlal",
         "role": "observation", "notice_version": 3, "region_version": 2,
         "trigger_time": "2024-01-15T20:08:27Z", "retracted_at": "2024-01-15T21:00:00Z",
         "withdrawn_alert_ids": ["11", "12"]}
    report = producer.publish_retractions([r, {**r, "event_id": eid + "t", "role": "test"},
                                           {**r, "retracted_at": "not a time"}])
    assert report.delivered == 2 and len(report.refused) == 1
    assert "retracted_at" in report.refused[0].reason
    topics = Topics(pconf.topic_prefix)
    [item] = _read(pconf, topics.retractions("observation"), event=eid)
    assert item.key == f"{eid}|3|retraction"
    assert item.schema == f"mm_broker.retraction/{pconf.retraction_schema_version}"
    assert item.record["withdrawn_alert_ids"] == ["11", "12"]
    [test_item] = _read(pconf, topics.retractions("test"), event=eid + "t")
    assert test_item.record["role"] == "test"


def test_consume_formats_filters_and_cli(pconf: PublishConfig, producer: CounterpartProducer,
                                         running: config.Settings) -> None:
    eid = f"NU:IceCube-{uuid.uuid4().hex[:6]}"
    topic = Topics(pconf.topic_prefix).counterparts("NU", "observation")
    first = [record(event_id=eid, messenger="NU", alert_id=f"a{i}", rank=i + 1)
             for i in range(3)]
    producer.publish(first)
    time.sleep(0.05)
    since = datetime.now(UTC)
    time.sleep(0.05)
    later = [record(event_id=eid, messenger="NU", alert_id=f"b{i}", rank=i + 4)
             for i in range(2)]
    other = [record(messenger="NU", alert_id="x")]
    producer.publish(later + other)

    out = io.StringIO()
    n = cons.consume(topic, _bootstrap(pconf), event=eid, fmt="json", timeout=15, out=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert n == 5 and sorted(r["alert_id"] for r in lines) == ["a0", "a1", "a2", "b0", "b1"]

    out = io.StringIO()
    cons.consume(topic, _bootstrap(pconf), event=eid, since=since, fmt="table", timeout=15,
                 out=out)
    table = out.getvalue().splitlines()
    assert table[0].split()[:4] == ["event_id", "rv", "rank", "status"]
    assert [row.split()[5] for row in table[1:]] == ["b0", "b1"]

    out = io.StringIO()
    assert cons.consume(topic, _bootstrap(pconf), max_messages=2, out=out, timeout=15) == 2

    # The CLI handler, as `mm-broker consume` calls it.
    args = cons.parser().parse_args(["--topic", topic, "--event", eid, "--table",
                                     "--since", since.isoformat()])
    assert args.fmt == "table"
    assert cons.run_cli(args, running) == 0
    missing = cons.parser().parse_args(["--topic", f"{pconf.topic_prefix}.nope"])
    assert cons.run_cli(missing, running) == 1


def test_consume_names_an_undecodable_message(pconf: PublishConfig) -> None:
    topic = f"{pconf.topic_prefix}.garbage"
    p = Producer(dict(pconf.kafka))
    p.produce(topic, key=b"k", value=b"\x00\x01", headers=[("schema", b"mm_broker.counterpart/9")])
    p.produce(topic, key=b"k2", value=b"\x00\x01")
    assert p.flush(30) == 0
    try:
        with pytest.raises(cons.ConsumeError, match=r"no schema file counterpart-v9|no 'schema'"):
            _read(pconf, topic)
    finally:
        delete_topics(pconf, [topic])
