"""A restart of the real local Kafka in the middle of a stream loses nothing and doubles
nothing (idempotent producer, acks=all). The broker is always restored."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest
from pub_records import record

from mm_broker.app.services.kafka import Kafka
from mm_broker.core import config
from publishers import consume as cons
from publishers import records as rec
from publishers.config import PublishConfig
from publishers.kafka import CounterpartProducer, Topics, delete_topics

pytestmark = pytest.mark.services


def _batch(eid: str, start: int, n: int) -> list[dict]:
    return [record(event_id=eid, messenger="GW", separation_deg=None, separation_ratio=None,
                   prob_density_deg2=1e-3, alert_id=str(start + i), rank=start + i + 1)
            for i in range(n)]


def test_broker_restart_mid_stream_loses_and_doubles_nothing(running: config.Settings) -> None:
    conf = PublishConfig.from_settings(running).with_prefix(f"t{uuid.uuid4().hex[:8]}.mm")
    topic = Topics(conf.topic_prefix).counterparts("GW", "observation")
    eid = f"LVK:Srestart{uuid.uuid4().hex[:6]}"
    kafka = Kafka(running)
    producer = CounterpartProducer(conf)
    t_start = time.monotonic()
    stopped = False
    try:
        producer.ensure_topics()
        before = producer.publish(_batch(eid, 0, 300), wait=True)
        assert before.delivered == 300
        # In flight when the broker goes down: queued, not waited for.
        in_flight = producer.publish(_batch(eid, 300, 300), wait=False)
        stopped = kafka.stop()
        assert stopped, "the local Kafka was not running under our state directory"
        # Keep producing while the broker is down.
        during = [producer.publish(_batch(eid, 600 + 100 * k, 100), wait=False)
                  for k in range(3)]
        assert all(r.refused == [] and r.failed == [] for r in during)
        kafka.start()
        stopped = False
        after = producer.publish(_batch(eid, 900, 100), wait=False)
        assert producer.flush(120) == 0
        assert producer.failed == []
        total = sum(r.sent for r in [before, in_flight, *during, after])
        assert total == 1000
    finally:
        if stopped:
            kafka.start()  # never leave the shared broker down
        producer.close(30)
    try:
        items = list(cons.read(topic, str(conf.kafka["bootstrap.servers"]), event=eid,
                               timeout=30, client_config=conf.kafka))
        keys = Counter(i.key for i in items)
        assert len(items) == 1000, f"{len(items)} messages for 1000 records"
        assert max(keys.values()) == 1, "a record was written twice"
        assert set(keys) == {rec.counterpart_key(r) for r in _batch(eid, 0, 1000)}
        assert sorted(int(i.record["alert_id"]) for i in items) == list(range(1000))
    finally:
        delete_topics(conf, Topics(conf.topic_prefix).all())
    assert time.monotonic() - t_start < 90
