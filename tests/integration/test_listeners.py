"""The notice daemons on the real services: GCN Kafka, VTP through Comet, a directory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mm_broker.core import config
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.db.schema import notices, raw_journal
from mm_broker.core.kafka import log_config

pytestmark = pytest.mark.services

NOTICES = ["notices/fermi_gbm/fermi_gbm_fin_pos_984.xml",
           "notices/swift/BAT_GRB_Pos_655721-214.xml",
           "notices/lvk/MS181101ab-preliminary.json"]


def _wait_rows(settings: config.Settings, n: int, timeout: float = 60) -> int:
    engine = engine_for(settings)
    try:
        deadline = time.monotonic() + timeout
        count = 0
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                count = conn.execute(select(func.count()).select_from(raw_journal)).scalar_one()
            if count >= n:
                break
            time.sleep(0.5)
        return count
    finally:
        engine.dispose()


def test_gcn_listener_journals_then_commits(fresh_db: config.Settings, data_dir: Path) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    from listeners import gcn
    from listeners.daemon import Stopper
    from mm_broker.app.ingest import Limits
    from mm_broker.app.listen_wiring import ingest_handler

    run = uuid.uuid4().hex[:8]
    topics = {f"test.gcn.classic.{run}": NOTICES[:2], f"test.igwn.gwalert.{run}": NOTICES[2:]}
    bootstrap = str(fresh_db.get("kafka.bootstrap"))
    producer = Producer({**log_config(fresh_db), "bootstrap.servers": bootstrap,
                         "message.max.bytes": 16_000_000})
    sent = 0
    for topic, files in topics.items():
        for f in files:
            producer.produce(topic, (data_dir / f).read_bytes())
            sent += 1
    producer.produce(next(iter(topics)), b"<not-xml")  # bad input in the stream
    sent += 1
    assert producer.flush(30) == 0
    env = {**os.environ, "MM_POSTGRES__DATABASE": str(fresh_db.get("postgres.database")),
           "MM_GCN__BOOTSTRAP": bootstrap, "MM_GCN__GROUP_ID": f"test-{run}"}
    settings = config.load(environ=env)
    engine = engine_for(settings)
    try:
        n = gcn.run(settings, ingest_handler(engine, Limits.from_settings(settings)),
                    Stopper(install=False), topics=list(topics), max_messages=sent)
        with engine.connect() as conn:
            rows = conn.execute(select(raw_journal.c.status, raw_journal.c.topic)).all()
            n_notices = conn.execute(select(func.count()).select_from(notices)).scalar_one()
    finally:
        engine.dispose()
    assert n == sent
    assert len(rows) == sent
    assert sorted(r.status for r in rows).count("rejected") == 1
    assert n_notices == sent - 1
    # Offsets committed for every message (and only after it was journaled).
    c = Consumer({**log_config(fresh_db), "bootstrap.servers": bootstrap,
                  "group.id": f"test-{run}"})
    committed = c.committed([TopicPartition(t, p) for t in topics for p in range(2)], timeout=10)
    c.close()
    assert sum(tp.offset for tp in committed if tp.offset >= 0) == sent


def test_dir_listener_daemon_stops_cleanly(fresh_db: config.Settings, data_dir: Path,
                                           tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    env = {**os.environ, "MM_POSTGRES__DATABASE": str(fresh_db.get("postgres.database")),
           "MM_LISTEN__DIR_POLL_S": "0.5"}
    proc = subprocess.Popen([sys.executable, "-m", "mm_broker.app.cli", "listen", "dir",
                             str(inbox)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        for f in NOTICES:
            shutil.copy(data_dir / f, inbox / Path(f).name)
        assert _wait_rows(fresh_db, len(NOTICES)) == len(NOTICES)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert err.count("dir ") >= len(NOTICES)  # one log line per payload
    assert "stored" in err


def test_vtp_listener_receives_from_comet(running: config.Settings, fresh_db: config.Settings,
                                          data_dir: Path, tmp_path: Path) -> None:
    c = running.tree["comet"]
    env = {**os.environ, "MM_POSTGRES__DATABASE": str(fresh_db.get("postgres.database")),
           "MM_STATE_DIR": str(tmp_path / "vtp-state")}
    proc = subprocess.Popen([sys.executable, "-m", "mm_broker.app.cli", "listen", "vtp",
                             "--remote", f"127.0.0.1:{c['broadcast_port']}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(
        iter(lambda: proc.stdout.readline().decode(errors="replace"), "")), daemon=True)
    reader.start()
    try:
        # Comet relays only to subscribers connected when the event arrives: wait for
        # the listener to say its subscription is live (under load it can take seconds).
        deadline = time.monotonic() + 60
        while not any("vtp: subscribed to" in x for x in lines):
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "no subscription in 60 s:\n" + "".join(lines)
            time.sleep(0.1)
        marker = uuid.uuid4().hex
        payload = ((data_dir / NOTICES[1]).read_bytes().rstrip()
                   + f"\n<!-- {marker} -->\n".encode())
        send = subprocess.run([str(Path(sys.executable).with_name("comet-sendvo")), "-h",
                               "127.0.0.1", "-p", str(c["receive_port"]), "-f", "-"],
                              input=payload, capture_output=True, timeout=60)
        assert send.returncode == 0, send.stderr
        assert _wait_rows(fresh_db, 1, timeout=30) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=10)
    engine = engine_for(fresh_db)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(raw_journal)).one()
    finally:
        engine.dispose()
    assert row.payload == payload
    assert row.source == "vtp" and row.status == "stored", (row.status, row.reason)


PLUGIN = Path(__file__).resolve().parents[2] / "mm_broker/app/vtp_plugin/comet/plugins"

_RUN_PLUGIN = """
import sys
import comet.plugins
from comet.icomet import IHandler
from comet.utility.xml import xml_document
from twisted.plugin import getPlugins

(handler,) = [p for p in getPlugins(IHandler, comet.plugins) if p.name == "mm-broker-ingest"]
handler(xml_document(sys.stdin.buffer.read()))
"""


def test_comet_handler_plugin_ingests(fresh_db: config.Settings, data_dir: Path,
                                      tmp_path: Path) -> None:
    """The plugin of ``twistd comet --mm-broker-ingest``, found by Twisted's plugin
    discovery as Comet finds it (its folder on PYTHONPATH), stores a real VOEvent."""
    # A copy, so that Twisted's dropin.cache is written under tmp_path, not the repo.
    (tmp_path / "comet/plugins").mkdir(parents=True)
    shutil.copy(PLUGIN / "mm_broker_ingest.py", tmp_path / "comet/plugins")
    env = {**os.environ, "MM_POSTGRES__DATABASE": str(fresh_db.get("postgres.database")),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    payload = (data_dir / NOTICES[0]).read_bytes()
    done = subprocess.run([sys.executable, "-c", _RUN_PLUGIN], input=payload, env=env,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    engine = engine_for(fresh_db)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(raw_journal)).one()
            n_notices = conn.execute(select(func.count()).select_from(notices)).scalar_one()
    finally:
        engine.dispose()
    assert row.payload == payload and row.source == "vtp"
    assert row.status == "stored", (row.status, row.reason)
    assert row.topic.startswith("ivo://nasa.gsfc.gcn/Fermi#GBM_Fin_Pos")
    assert n_notices == 1
