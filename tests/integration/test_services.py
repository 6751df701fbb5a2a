"""The local services are real and answer: PostgreSQL, Kafka, Spark with its connectors,
and Comet accepting a real VOEvent from the shared data."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import fastavro
import pytest
from sqlalchemy import text

from mm_broker.core import config
from mm_broker.core.db import migrate
from mm_broker.core.kafka import log_config

pytestmark = pytest.mark.services


def test_postgres_schema_at_head_and_range_query(running: config.Settings) -> None:
    engine = migrate.engine_for(running)
    try:
        assert migrate.current(engine) == migrate.head()
        with engine.begin() as conn:
            # A throwaway region: two order-29 ranges; ask which contains a pixel.
            conn.execute(text("CREATE TEMP TABLE t (region_id int, rng int8range)"))
            conn.execute(text("INSERT INTO t VALUES (1, int8range(:a, :b)), "
                              "(2, int8range(:c, :d))"),
                         {"a": 10, "b": 20, "c": 2**60, "d": 2**60 + 5})
            hits = conn.execute(text("SELECT region_id FROM t WHERE rng @> CAST(:p AS int8)"),
                                {"p": 2**60 + 4}).scalars().all()
            misses = conn.execute(text("SELECT region_id FROM t WHERE rng @> CAST(:p AS int8)"),
                                  {"p": 20}).scalars().all()
            version = conn.execute(text("SHOW server_version_num")).scalar_one()
    finally:
        engine.dispose()
    assert hits == [2]
    assert misses == []  # ranges are half-open: 20 is outside [10, 20)
    assert int(version) >= 150000


def test_db_command_migrates_an_empty_database(running: config.Settings) -> None:
    """`mm-broker db upgrade` brings an empty database (a managed PostgreSQL's, say) to
    the newest revision; `db current` reports it."""
    from sqlalchemy import create_engine

    name = f"mm_dbcmd_{uuid.uuid4().hex[:10]}"
    admin = create_engine(running.database_url().rsplit("/", 1)[0] + "/postgres",
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    env = {**os.environ, "MM_POSTGRES__DATABASE": name,
           "MM_POSTGRES__PORT": str(running.get("postgres.port"))}
    try:
        cmd = [sys.executable, "-m", "mm_broker.app.cli", "db"]
        before = subprocess.run(cmd + ["current"], env=env, capture_output=True, text=True,
                                timeout=60, check=True)
        up = subprocess.run(cmd + ["upgrade"], env=env, capture_output=True, text=True,
                            timeout=60, check=True)
        after = subprocess.run(cmd + ["current"], env=env, capture_output=True, text=True,
                               timeout=60, check=True)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    head = migrate.head()
    assert json.loads(before.stdout) == {"revision": "none", "head": head}
    assert json.loads(up.stdout) == {"revision": head, "head": head}
    assert json.loads(after.stdout) == {"revision": head, "head": head}


def test_kafka_round_trip(running: config.Settings) -> None:
    from confluent_kafka import Consumer, Producer

    bootstrap = str(running.get("kafka.bootstrap"))
    topic = f"test.roundtrip.{uuid.uuid4().hex[:8]}"
    payloads = {f"k{i}".encode(): f"value-{i}-{uuid.uuid4()}".encode() for i in range(5)}
    producer = Producer({**log_config(running), "bootstrap.servers": bootstrap,
                         "enable.idempotence": True})
    for key, value in payloads.items():
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0
    consumer = Consumer({**log_config(running), "bootstrap.servers": bootstrap, "group.id": topic,
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    consumer.subscribe([topic])
    got: dict[bytes, bytes] = {}
    deadline = time.monotonic() + 60
    while len(got) < len(payloads) and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is not None and not msg.error():
            got[msg.key()] = msg.value()
    consumer.close()
    assert got == payloads


@pytest.mark.spark
def test_spark_streams_real_alerts_kafka_to_kafka(running: config.Settings, spark: object,
                                                  data_dir: Path) -> None:
    from mm_broker.app import demo

    folder = data_dir / "alerts/ztf/avro/ztf-avro-alert_samples"
    paths = sorted(folder.glob("*.avro"))[:3]
    assert paths, folder
    records, _ = demo.stream_through_spark(running, paths, uuid.uuid4().hex[:8])
    expected = {}
    for p in paths:
        for rec in fastavro.reader(io.BytesIO(p.read_bytes())):
            expected[str(rec["candid"])] = rec
    assert sorted(r["alert_id"] for r in records) == sorted(expected)
    for r in records:
        cand = expected[r["alert_id"]]["candidate"]
        assert r["object_id"] == expected[r["alert_id"]]["objectId"]
        assert r["ra"] == pytest.approx(cand["ra"])
        assert r["dec"] == pytest.approx(cand["dec"])
        assert r["obs_jd"] == pytest.approx(cand["jd"])


def _comet_subscriber(running: config.Settings, outdir: Path) -> subprocess.Popen[bytes]:
    c = running.tree["comet"]
    cmd = [sys.executable, "-m", "mm_broker.app.services.comet_launcher", "--bind", "127.0.0.1",
           "--", "-n", "--pidfile=", "comet", f"--remote=127.0.0.1:{c['broadcast_port']}",
           "--local-ivo=ivo://mm-broker.test/subscriber", f"--eventdb={outdir / 'db'}",
           "--save-event", f"--save-event-directory={outdir}"]
    (outdir / "db").mkdir(parents=True)
    return subprocess.Popen(cmd, cwd=outdir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def test_comet_relays_a_real_voevent(running: config.Settings, data_dir: Path,
                                     tmp_path: Path) -> None:
    """comet-sendvo submits a real GCN VOEvent; a real Comet subscriber receives it."""
    source = data_dir / "notices/swift/SWIFT_bat_position_v2.0_example.xml"
    if not source.exists():  # fall back on any VOEvent 2.0 of the set
        source = next(p for p in sorted((data_dir / "notices/fermi_gbm").glob("*.xml"))
                      if b'version="2.0"' in p.read_bytes())
    # Comet remembers the bytes it has seen: a unique comment makes this run's copy new.
    marker = uuid.uuid4().hex
    payload = source.read_bytes().rstrip() + f"\n<!-- mm-broker test {marker} -->\n".encode()
    sub = _comet_subscriber(running, tmp_path)
    try:
        time.sleep(2.0)  # let the subscriber connect before the event is broadcast
        c = running.tree["comet"]
        send = subprocess.run([str(Path(sys.executable).with_name("comet-sendvo")),
                               "-h", "127.0.0.1", "-p", str(c["receive_port"]), "-f", "-"],
                              input=payload, capture_output=True, timeout=60)
        assert send.returncode == 0, send.stderr.decode()
        deadline = time.monotonic() + 30
        received: list[Path] = []
        while time.monotonic() < deadline and not received:
            received = [p for p in tmp_path.iterdir()
                        if p.is_file() and marker.encode() in p.read_bytes()]
            time.sleep(0.3)
    finally:
        sub.terminate()
        sub.wait(20)
    assert received, "the subscriber did not receive the VOEvent"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_private_postgres_under_a_0700_parent(tmp_path: Path) -> None:
    """A clone under a private folder (root's home is mode 0700) gets a running cluster:
    as root the server's account cannot reach the state directory, so the cluster lives
    under the server home, and `status`, `down`, a restart and `clean` find it through
    the state directory; the private folder is never chmod-ed."""
    from sqlalchemy import create_engine

    from mm_broker.app.services import pg_layout
    from mm_broker.app.services.postgres import Postgres

    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    state = private / "mm" / ".mm"
    port = _free_port()
    settings = config.load(environ={"MM_STATE_DIR": str(state),
                                    "MM_POSTGRES__PORT": str(port),
                                    "MM_POSTGRES__DATABASE": "mm_private"})
    pg = Postgres(settings)
    root = os.geteuid() == 0

    def query(sql: str) -> list[object]:
        engine = create_engine(settings.database_url())
        try:
            with engine.begin() as conn:
                result = conn.execute(text(sql))
                return list(result.scalars().all()) if result.returns_rows else []
        finally:
            engine.dispose()

    try:
        address = pg.start()
        assert address == f"postgresql://mm_broker@127.0.0.1:{port}/mm_private"
        layout = pg.layout
        assert layout.relocated == root
        if root:
            assert layout.home == pg_layout.SERVER_HOME / pg_layout.home_name(state)
            assert os.readlink(state / "postgres" / "cluster") == str(layout.home)
            assert (layout.home / "state_dir").read_text().strip() == str(state)
            assert (state / "logs" / "postgres.log").resolve() == layout.logfile
        assert query("SHOW data_directory") == [str(layout.datadir)]
        query("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
        # A new process (as `mm-broker services status|down` is) finds the cluster.
        assert Postgres(settings).status() == f"running on 127.0.0.1:{port}"
        assert Postgres(settings).stop() is True
        assert Postgres(settings).status() == "stopped"
        assert Postgres(settings).stop() is False
        pg.start()  # the recorded cluster, with its data
        assert query("SELECT x FROM kept") == [42]
        if root:
            # The state directory deleted without `clean`: a new one at the same path
            # starts with a new, empty cluster (as inside the state directory).
            pg.stop()
            import shutil

            shutil.rmtree(state)
            pg.start()
            assert query("SELECT count(*) FROM pg_tables WHERE tablename = 'kept'") == [0]
    finally:
        cleaned = Postgres(settings).clean()
    assert cleaned == root
    assert Postgres(settings).status() == "stopped"
    assert not (state / "postgres" / "cluster").is_symlink()
    if root:
        assert not layout.home.exists()
    assert private.stat().st_mode & 0o777 == 0o700
