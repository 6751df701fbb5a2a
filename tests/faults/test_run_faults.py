"""Faults under `mm-broker run`, on real services: the Kafka broker SIGKILLed and
restarted while alerts stream in and counterparts go out, and the streaming job
itself SIGKILLed and restarted from its checkpoint.

Afterwards every input alert is in the archive exactly once and every counterpart
key is exactly once in the associations table and on its topic. Each scenario prints
what it injected and what it counted; a failure names the lost or doubled keys.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from scenario import (
    ALERTS,
    archived_ids,
    once_each,
    plant,
    raw_offsets,
    store,
    stored_keys,
    topic_keys,
    wait_until,
)

from mm_broker import config

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
    from fink_core.decode import read_alert_files

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
    from mm_broker import run
    from mm_broker.services.kafka import Kafka
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
    thirds = [files[:len(files) // 3], files[len(files) // 3: 2 * len(files) // 3],
              files[2 * len(files) // 3:]]
    batches: list[dict[str, Any]] = []
    stop = threading.Event()
    out: dict[str, Any] = {}

    def service() -> None:
        try:
            out["counts"] = run.run(settings, spark=spark, name="k", stop=stop,
                                    on_batch_done=batches.append)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            out["error"] = exc

    t_start = time.monotonic()
    thread = threading.Thread(target=service, daemon=True)
    thread.start()
    killed = False
    try:
        assert simulator.send(thirds[0], alert_topic, bootstrap).delivered == len(thirds[0])
        wait_until(lambda: sum(b["alerts"] for b in batches) >= len(thirds[0]), 120,
                   "the first third to be processed")
        # The second third goes in, and the broker is killed while it is processed.
        assert simulator.send(thirds[1], alert_topic, bootstrap).delivered == len(thirds[1])
        time.sleep(0.5)
        killed = kafka.kill()
        assert killed, "the private Kafka was not running"
        t_kill = time.monotonic()
        time.sleep(3)
        kafka.start()
        killed = False
        down_s = time.monotonic() - t_kill
        assert simulator.send(thirds[2], alert_topic, bootstrap).delivered == len(thirds[2])
        wait_until(lambda: len(archived_ids(tmp_path / "archive")) >= len(ids)
                   and len(topic_keys(settings, topic)) >= len(planted.keys()), 180,
                   "every alert archived and every counterpart on the topic")
        time.sleep(3)  # anything doubled late would show now
    finally:
        if killed:
            kafka.start()  # never leave the broker down
        stop.set()
        thread.join(120)
    assert "error" not in out, out.get("error")
    counts = out["counts"]
    problems = _check(settings, tmp_path / "archive", files, ids, planted.keys(), topic)
    print(f"\n[kafka-sigkill] injected: SIGKILL of Kafka while {len(thirds[1])} alerts were "
          f"in flight, broker down {down_s:.1f} s; sent {len(files)} alerts; counted: "
          f"archive {len(archived_ids(tmp_path / 'archive'))} alerts, "
          f"{len(planted.keys())} counterparts expected, topic "
          f"{sum(topic_keys(settings, topic).values())} messages, query restarts "
          f"{counts['restarts']}, settled {counts['settled']}, "
          f"{time.monotonic() - t_start:.0f} s")
    assert problems == [], "\n".join(problems)
