"""Faults under `mm-broker run`, on real services: the Kafka broker SIGKILLed and
restarted while alerts stream in and counterparts go out, and the streaming job
itself SIGKILLed and restarted from its checkpoint.

Afterwards every input alert is in the archive exactly once and every counterpart
key is exactly once in the associations table and on its topic. Each scenario prints
what it injected and what it counted; a failure names the lost or doubled keys.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from scenario import (
    ALERTS,
    InProcessService,
    archived_ids,
    once_each,
    plant,
    raw_offsets,
    store,
    stored_keys,
    thirds,
    topic_keys,
    wait_until,
)

from mm_broker.core import config

pytestmark = [pytest.mark.services, pytest.mark.spark]


def _settings(db: config.Settings, tmp_path: Path, tag: str) -> config.Settings:
    return db.with_values({
        "alerts.topics": [f"fault.alerts.{tag}"],
        "alerts.archive_uri": (tmp_path / "archive").as_uri(),
        "alerts.checkpoint_uri": (tmp_path / "ckpt").as_uri(),
        "alerts.trigger": "1 second", "alerts.region_poll_s": 1.0,
        "alerts.restart_initial_s": 1.0, "alerts.restart_max_s": 4.0,
        "publish.topic_prefix": f"f{tag}"})


def _alerts(data_dir: Path) -> tuple[list[Path], Any]:
    from fink_core import simulator
    from fink_core.files import read_alert_files

    files = simulator.alert_files([data_dir / ALERTS])
    return files, read_alert_files(files)


def _check(settings: config.Settings, archive: Path, files: list[Path], ids: set[str],
           keys: set[str], topic: str) -> list[str]:
    problems = once_each("archive", archived_ids(archive), ids)
    raw = raw_offsets(archive)
    if len(raw) != len(files) or max(raw.values(), default=0) != 1:
        problems.append(f"raw archive: {len(raw)} offsets for {len(files)} payloads, "
                        f"doubled {[k for k, n in raw.items() if n > 1][:20]}")
    problems += once_each("associations", stored_keys(settings), keys)
    problems += once_each(f"topic {topic}", topic_keys(settings, topic), keys)
    return problems


def test_kafka_sigkill_during_run(fault_db: config.Settings, spark, data_dir: Path,
                                  tmp_path: Path) -> None:
    from fink_core import simulator
    from mm_broker.app.services.kafka import Kafka
    from publishers.kafka import Topics

    tag = uuid.uuid4().hex[:8]
    settings = _settings(fault_db, tmp_path, tag)
    files, df = _alerts(data_dir)
    ids = set(df["alert_id"].astype(str))
    planted = store(settings, plant(df, tag, 16.88, -19.47, 3.0))
    topic = Topics(f"f{tag}").counterparts("X", "observation")
    bootstrap = str(settings.get("kafka.bootstrap"))
    alert_topic = settings.get("alerts.topics")[0]
    kafka = Kafka(settings)
    parts = thirds(files)
    t_start = time.monotonic()
    service = InProcessService(settings, spark, "k")
    killed = False
    try:
        assert simulator.send(parts[0], alert_topic, bootstrap).delivered == len(parts[0])
        wait_until(lambda: service.processed() >= len(parts[0]), 120,
                   "the first third to be processed")
        # The second third goes in, and the broker is killed while it is processed.
        assert simulator.send(parts[1], alert_topic, bootstrap).delivered == len(parts[1])
        time.sleep(0.5)
        killed = kafka.kill()
        assert killed, "the private Kafka was not running"
        t_kill = time.monotonic()
        time.sleep(3)
        kafka.start()
        killed = False
        down_s = time.monotonic() - t_kill
        assert simulator.send(parts[2], alert_topic, bootstrap).delivered == len(parts[2])
        wait_until(lambda: len(archived_ids(tmp_path / "archive")) >= len(ids)
                   and len(topic_keys(settings, topic)) >= len(planted.keys()), 180,
                   "every alert archived and every counterpart on the topic")
        time.sleep(3)  # anything doubled late would show now
    finally:
        if killed:
            kafka.start()  # never leave the broker down
        counts = service.stop()
    problems = _check(settings, tmp_path / "archive", files, ids, planted.keys(), topic)
    print(f"\n[kafka-sigkill] injected: SIGKILL of Kafka while {len(parts[1])} alerts were "
          f"in flight, broker down {down_s:.1f} s; sent {len(files)} alerts; counted: "
          f"archive {len(archived_ids(tmp_path / 'archive'))} alerts, "
          f"{len(planted.keys())} counterparts expected, topic "
          f"{sum(topic_keys(settings, topic).values())} messages, query restarts "
          f"{counts['restarts']}, settled {counts['settled']}, "
          f"{time.monotonic() - t_start:.0f} s")
    assert problems == [], "\n".join(problems)


def test_postgres_stopped_during_run(fault_db: config.Settings, spark, data_dir: Path,
                                    tmp_path: Path) -> None:
    """The store crashes (pg_ctl stop -m immediate) under `run` while alerts arrive: the
    failed micro-batches are retried from the checkpoint once it is back, a notice
    stored after the restart retro-matches, nothing is lost or doubled."""
    from fink_core import simulator
    from mm_broker.app.services.postgres import Postgres
    from publishers.kafka import Topics

    tag = uuid.uuid4().hex[:8]
    settings = _settings(fault_db, tmp_path, tag)
    files, df = _alerts(data_dir)
    ids = set(df["alert_id"].astype(str))
    early = store(settings, plant(df, tag, 16.88, -19.47, 3.0))
    late = plant(df, f"{tag}b", 11.25, -14.48, 3.0)
    topic = Topics(f"f{tag}").counterparts("X", "observation")
    bootstrap = str(settings.get("kafka.bootstrap"))
    alert_topic = settings.get("alerts.topics")[0]
    pg = Postgres(settings)
    parts = thirds(files)
    t_start = time.monotonic()
    service = InProcessService(settings, spark, "p")
    down = False
    try:
        assert simulator.send(parts[0], alert_topic, bootstrap).delivered == len(parts[0])
        wait_until(lambda: service.processed() >= len(parts[0]), 180,
                   "the first third to be processed")
        down = pg.stop(mode="immediate")
        assert down
        t_down = time.monotonic()
        assert simulator.send(parts[1], alert_topic, bootstrap).delivered == len(parts[1])
        time.sleep(8)  # batches fail and are retried while the store is away
        pg.start()
        down = False
        down_s = time.monotonic() - t_down
        store(settings, late)
        assert simulator.send(parts[2], alert_topic, bootstrap).delivered == len(parts[2])
        expected = early.keys() | late.keys()
        wait_until(lambda: len(archived_ids(tmp_path / "archive")) >= len(ids)
                   and len(topic_keys(settings, topic)) >= len(expected), 240,
                   "every alert archived and every counterpart on the topic")
        time.sleep(3)
    finally:
        if down:
            pg.start()
        counts = service.stop()
    problems = _check(settings, tmp_path / "archive", files, ids, expected, topic)
    print(f"\n[pg-under-run] injected: PostgreSQL crashed for {down_s:.1f} s while "
          f"{len(parts[1])} alerts arrived, then a late notice; counted: archive "
          f"{len(archived_ids(tmp_path / 'archive'))} alerts, topic "
          f"{sum(topic_keys(settings, topic).values())} messages for {len(expected)} keys, "
          f"query restarts {counts['restarts']}, settled {counts['settled']}, "
          f"{time.monotonic() - t_start:.0f} s")
    assert problems == [], "\n".join(problems)
    assert counts["restarts"] >= 1, "no micro-batch failed while the store was away"


def _service_env(settings: config.Settings, tmp_path: Path, tag: str, data_dir: Path,
                 fault_env: dict[str, str]) -> dict:
    return {**os.environ, **fault_env, "MM_DATA_DIR": str(data_dir),
            "MM_POSTGRES__DATABASE": str(settings.get("postgres.database")),
            "MM_ALERTS__TOPICS": json.dumps(settings.get("alerts.topics")),
            "MM_ALERTS__ARCHIVE_URI": (tmp_path / "archive").as_uri(),
            "MM_ALERTS__CHECKPOINT_URI": (tmp_path / "ckpt").as_uri(),
            "MM_ALERTS__TRIGGER": "1 second", "MM_ALERTS__REGION_POLL_S": "1.0",
            "MM_PUBLISH__TOPIC_PREFIX": f"f{tag}"}


def _start_service(env: dict, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mm_broker.app.cli", "run"]
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=out,  # noqa: S603
                                start_new_session=True)


def test_streaming_job_sigkill_and_restart_from_checkpoint(fault_db: config.Settings,
                                                           fault_env: dict[str, str],
                                                           data_dir: Path,
                                                           tmp_path: Path) -> None:
    """`mm-broker run` SIGKILLed (with its JVM) mid-stream; a late notice stored and
    more alerts sent while it is down; restarted from the same checkpoints."""
    from fink_core import simulator
    from publishers.kafka import Topics

    tag = uuid.uuid4().hex[:8]
    settings = _settings(fault_db, tmp_path, tag)
    files, df = _alerts(data_dir)
    ids = set(df["alert_id"].astype(str))
    early = store(settings, plant(df, tag, 16.88, -19.47, 3.0))
    late = plant(df, f"{tag}b", 11.25, -14.48, 3.0)
    topic = Topics(f"f{tag}").counterparts("X", "observation")
    bootstrap = str(settings.get("kafka.bootstrap"))
    alert_topic = settings.get("alerts.topics")[0]
    env = _service_env(settings, tmp_path, tag, data_dir, fault_env)
    log = tmp_path / "service.log"
    parts = thirds(files)
    t_start = time.monotonic()
    first = _start_service(env, log)
    second = None
    try:
        assert simulator.send(parts[0], alert_topic, bootstrap).delivered == len(parts[0])
        wait_until(lambda: len(archived_ids(tmp_path / "archive")) >= len(parts[0])
                   or first.poll() is not None, 180, "the first third to be archived")
        assert first.poll() is None, log.read_text()[-3000:]
        assert simulator.send(parts[1], alert_topic, bootstrap).delivered == len(parts[1])
        time.sleep(1.5)  # the second third is being processed
        archived_at_kill = len(archived_ids(tmp_path / "archive"))
        os.killpg(first.pid, signal.SIGKILL)
        assert first.wait(30) == -signal.SIGKILL
        # While the job is down: a late notice whose counterparts are among the alerts
        # already archived (and still to come), and the last third of the alerts.
        store(settings, late)
        assert simulator.send(parts[2], alert_topic, bootstrap).delivered == len(parts[2])
        second = _start_service(env, log)
        wait_until(lambda: (len(archived_ids(tmp_path / "archive")) >= len(ids)
                            and len(topic_keys(settings, topic))
                            >= len(early.keys() | late.keys()))
                   or second.poll() is not None, 240,
                   "every alert archived and every counterpart on the topic")
        assert second.poll() is None, log.read_text()[-3000:]
        time.sleep(3)  # anything doubled late would show now
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=120)
        code = second.returncode
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert code == 0, log.read_text()[-3000:]
    counts = json.loads(out.decode().strip().splitlines()[-1])
    expected = early.keys() | late.keys()
    problems = _check(settings, tmp_path / "archive", files, ids, expected, topic)
    print(f"\n[job-sigkill] injected: SIGKILL of `mm-broker run` with {archived_at_kill} of "
          f"{len(files)} alerts archived and {len(parts[1])} in flight; while down, a late "
          f"notice ({len(late.expected)} counterparts among earlier alerts) and "
          f"{len(parts[2])} more alerts; counted after the restart: archive "
          f"{len(archived_ids(tmp_path / 'archive'))} alerts, topic "
          f"{sum(topic_keys(settings, topic).values())} messages for {len(expected)} "
          f"expected keys, second run {counts}, {time.monotonic() - t_start:.0f} s")
    assert problems == [], "\n".join(problems)
    assert late.expected - _ids_of(parts[2]), \
        "the late region must have counterparts among alerts archived before it"


def _ids_of(files: list[Path]) -> set[str]:
    """alert ids of the given files."""
    from fink_core.files import read_alert_files

    return set(read_alert_files(files)["alert_id"].astype(str))


def test_unconfirmed_counterparts_settled_once(fault_db: config.Settings) -> None:
    """Rows a crash left between insert and confirmed delivery: those already on the
    topic are only marked, the others are published; none twice. The same for an
    event's retraction record."""
    from mm_broker.app.flow import CounterpartFlow
    from mm_broker.core.db.migrate import engine_for
    from mm_broker.core.db.schema import associations, retractions
    from publishers import records as rec
    from publishers.publish import Publisher

    tag = uuid.uuid4().hex[:8]
    settings = fault_db.with_values({"publish.topic_prefix": f"s{tag}"})
    eid = f"EP:settle{tag}"
    records = [{"event_id": eid, "messenger": "X", "mission": "EP", "instrument": "WXT",
                "notice_version": 1, "region_version": 1, "role": "observation",
                "status": "candidate", "trigger_time": "2018-11-29T05:00:00Z",
                "survey": "ZTF", "object_id": f"ZTF18settle{i:03d}", "alert_id": str(1000 + i),
                "alert_time": "2018-11-29T06:00:00Z", "ra": 16.9, "dec": -19.5,
                "delta_t_s": 3600.0, "separation_deg": 0.5, "separation_ratio": 0.2,
                "credible_level": 0.3, "prob_density_deg2": None, "p_chance": 0.01,
                "rank": i + 1, "rate_per_deg2_day": 0.05, "searched_area_deg2": 1.0,
                "elapsed_days": 0.04} for i in range(40)]
    retraction = {"event_id": f"{eid}r", "messenger": "X", "mission": "EP", "instrument": "WXT",
                  "role": "observation", "notice_version": 2, "region_version": 1,
                  "trigger_time": "2018-11-29T05:00:00Z",
                  "retracted_at": "2018-11-29T07:00:00Z", "withdrawn_alert_ids": [],
                  "reason": "retraction notice", "trigger_ivorn": None, "notice_ivorn": None,
                  "mm_broker_version": None, "config_hash": None}
    publisher = Publisher.from_settings(settings, broadcast=False)
    engine = engine_for(settings)
    try:
        # The crash: 40 rows inserted; the first 25 were delivered, the rest were not.
        assert publisher.counterparts(records[:25], datetime.now(UTC)).kafka.delivered == 25
        with engine.begin() as conn:
            conn.execute(associations.insert(), [
                {"event_id": r["event_id"], "region_version": 1, "alert_id": r["alert_id"],
                 "status": "candidate", "record": r, "created_at": datetime.now(UTC)}
                for r in records])
            # ... and a retraction inserted, never delivered.
            conn.execute(retractions.insert(), [
                {"event_id": retraction["event_id"], "notice_version": 2,
                 "role": "observation", "record": retraction, "created_at": datetime.now(UTC)}])

        flow = CounterpartFlow({}, network=publisher, store=engine)
        done = flow.settle()
        again = flow.settle(lambda topics, since: set())
        with engine.connect() as conn:
            unconfirmed = conn.execute(associations.select().where(
                associations.c.published_at.is_(None))).all()
            unconfirmed += conn.execute(retractions.select().where(
                retractions.c.published_at.is_(None))).all()
    finally:
        publisher.close()
        engine.dispose()
    topic = publisher.producer.topics.counterparts("X", "observation")
    on_topic = topic_keys(settings, topic)
    print(f"\n[settle] injected: 40 unconfirmed rows, 25 of them already delivered; "
          f"counted: {done}, then {again}; topic {sum(on_topic.values())} messages")
    assert done == {"pending": 41, "found": 25, "republished": 16}
    assert again == {"pending": 0, "found": 0, "republished": 0}
    assert unconfirmed == []
    problems = once_each(f"topic {topic}", on_topic, {rec.counterpart_key(r) for r in records})
    assert problems == [], "\n".join(problems)
    topic = publisher.producer.topics.retractions("observation")
    on_topic = topic_keys(settings, topic)
    problems = once_each(f"topic {topic}", on_topic, {rec.retraction_key(retraction)})
    assert problems == [], "\n".join(problems)
