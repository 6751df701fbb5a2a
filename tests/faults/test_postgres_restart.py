"""Fault: PostgreSQL stops (as a crash) and restarts while the GCN and directory
listeners ingest notices.

Requirement: the listeners retry with backoff and survive; every payload ends in the
raw journal exactly once; no Kafka offset is committed for a payload that was not
stored.

Scenario, on the private fault-test services (``tests/faults/conftest.py``) and a fresh
database:

1. start ``mm-broker listen gcn`` (on two topics of the private Kafka, its own consumer
   group) and ``mm-broker listen dir INBOX`` as subprocesses;
2. *before*: produce 4 real notices to Kafka and drop 3 real notice files into the
   inbox; wait until all 7 are journaled and processed and the group's committed
   offsets cover the 4 messages;
3. stop PostgreSQL with ``pg_ctl stop -m immediate`` (no checkpoint: the next start
   runs crash recovery) while both listeners are idle;
4. *during*: produce 4 more messages and drop 3 more files; keep PostgreSQL down
   until each listener has logged its backoff warning ("database unavailable") at
   least 4 times and for at least 3 s, sampling the committed offsets throughout:
   none may move past what was stored before the stop; the warnings' spacing shows
   the backoff (growing from ``backoff_initial_s``, capped near ``backoff_max_s``);
5. start PostgreSQL again; *after*: produce 4 more messages and drop 3 more files;
   wait until all 21 payloads are journaled and processed and the committed offset of
   every partition equals the number of messages produced to it, still sampling the
   offsets (every committed offset must cover only journaled, processed payloads);
6. check both listeners are the same live processes, stop them with SIGTERM (exit 0
   within a bound), then audit the journal: one row per payload (by sha256) with
   ``receipts`` 1, no payload missing, none unexpected, none left unprocessed, and no
   journal row processed into two notices. A failure names the payloads (file names,
   Kafka topic[partition]@offset, sha256 prefixes).

Files are dropped atomically (written under a name whose suffix the directory
listener ignores, then renamed), as a producer of notice files must: a file read while
half-written would be a different payload.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from mm_broker.app.services.postgres import Postgres
from mm_broker.app.services.process import port_open
from mm_broker.core import config
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.db.schema import notices, raw_journal

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

#: Kafka payloads by phase (real notices; XML to one topic, JSON to the other).
KAFKA = {
    "before": ["notices/fermi_gbm/fermi_gbm_fin_pos_984.xml",
               "notices/swift/BAT_GRB_Pos_655721-214.xml",
               "notices/lvk/MS181101ab-preliminary.json",
               "notices/einstein_probe/alert_247.json"],
    "during": ["notices/svom/eclairs_296.xml",
               "notices/icecube/voevent_number=3028.xml",
               "notices/lvk/MS181101ab-earlywarning.json",
               "notices/einstein_probe/alert_248.json"],
    "after": ["notices/svom/mxt_40.xml",
              "notices/swift/XRT_Pos_655721-326.xml",
              "notices/lvk/MS181101ab-initial.json",
              "notices/maxi/gsc.unknown.circle.example.json"],
}
#: Files dropped into the watched folder, by phase.
FILES = {
    "before": ["notices/fermi_gbm/fermi_gbm_fin_pos_1035.xml",
               "notices/svom/eclairs_297.xml",
               "notices/einstein_probe/alert_249.json"],
    "during": ["notices/fermi_gbm/fermi_gbm_fin_pos_1039.xml",
               "notices/swift/voevent_number=392.xml",
               "notices/lvk/MS181101ab-update.json"],
    "after": ["notices/icecube/voevent_number=45412.xml",
              "notices/svom/eclairs_298.xml",
              "notices/einstein_probe/alert_250.json"],
}

#: Listener backoff (``[listen]``): short, so the retries show within seconds.
BACKOFF_INITIAL_S = 0.2
BACKOFF_MAX_S = 1.0
DIR_POLL_S = 0.3
#: Bounds (seconds) of each wait.
START_S = 30.0        # listeners started until the first batch is journaled/committed
RETRY_S = 20.0        # PostgreSQL down until both listeners have retried enough
#: The outage lasts at least this long and until each listener warned this often.
# Longer than the GCN consumer's max.poll.interval.ms below: without its keep-alive
# polls during the back-off, the listener would lose its group membership, its commit
# would fail and the message would come again (receipts 2).
MIN_OUTAGE_S = 8.0
MAX_POLL_INTERVAL_MS = 6000
MIN_WARNINGS = 4
DRAIN_S = 45.0        # PostgreSQL back until every payload is journaled and committed
STOP_S = 20.0         # SIGTERM until a listener has exited
UNAVAILABLE = "database unavailable"


def _tail(path: Path, n: int = 2500) -> str:
    try:
        return f"--- {path} (tail) ---\n" + path.read_text(errors="replace")[-n:]
    except OSError:
        return f"--- {path}: unreadable ---"


def _wait(check: Callable[[], object], bound: float, what: str, diag: Callable[[], str],
          interval: float = 0.2) -> float:
    """Poll ``check`` until truthy; fail naming ``what`` after ``bound`` s; return the
    seconds waited."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > bound:
            pytest.fail(f"{what}: not within {bound:.0f} s\n{diag()}")
        time.sleep(interval)
    return time.monotonic() - t0


def _journal(engine: Engine) -> dict[str, str]:
    """sha256 -> status of every journal row."""
    with engine.connect() as conn:
        return {r.sha256: r.status for r in conn.execute(
            select(raw_journal.c.sha256, raw_journal.c.status))}


def _spacing(lines: list[str]) -> list[float]:
    """Seconds between consecutive log lines (by their ``%(asctime)s`` stamps)."""
    stamps = [datetime.strptime(ln[:23], "%Y-%m-%d %H:%M:%S,%f") for ln in lines]
    return [round((b - a).total_seconds(), 2) for a, b in zip(stamps, stamps[1:])]


def _drop(inbox: Path, name: str, payload: bytes) -> None:
    """Write a notice file atomically (the listener ignores the ``.part`` suffix)."""
    part = inbox / f"{name}.part"
    part.write_bytes(payload)
    os.replace(part, inbox / name)


def test_postgres_restart_under_listeners(fault_db: config.Settings, data_dir: Path,
                                          tmp_path: Path,
                                          fault_env: dict[str, str]) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    t_start = time.monotonic()
    run = uuid.uuid4().hex[:10]
    bootstrap = str(fault_db.get("kafka.bootstrap"))
    postgres = Postgres(fault_db)
    host, port = postgres.host, postgres.port
    topic_xml, topic_json = f"test.gcn.classic.voevent.{run}", f"test.gcn.notices.{run}"
    n_partitions = int(fault_db.get("kafka.partitions"))
    group = f"fault-pg-{run}"

    # What is sent, named: sha256 -> name; a name is the data file (Kafka payloads get
    # their topic[partition]@offset once delivered).
    payload_of: dict[str, bytes] = {}
    for rel in [r for phase in KAFKA.values() for r in phase]:
        payload_of[f"kafka:{rel}"] = (data_dir / rel).read_bytes()
    for rel in [r for phase in FILES.values() for r in phase]:
        payload_of[f"dir:{rel}"] = (data_dir / rel).read_bytes()
    sha_of = {name: hashlib.sha256(p).hexdigest() for name, p in payload_of.items()}
    assert len(set(sha_of.values())) == len(sha_of), "test data: payloads must be distinct"
    name_of = {sha: name for name, sha in sha_of.items()}

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(t, n_partitions, 1)
                                    for t in (topic_xml, topic_json)]).values():
        fut.result(30)
    partitions = [TopicPartition(t, p) for t in (topic_xml, topic_json)
                  for p in range(n_partitions)]

    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 16_000_000,
                         "enable.idempotence": True})
    sent: dict[tuple[str, int, int], str] = {}     # (topic, partition, offset) -> name
    delivery_errors: list[str] = []

    def produce(phase: str) -> None:
        for rel in KAFKA[phase]:
            name = f"kafka:{rel}"

            def report(err: Any, msg: Any, name: str = name) -> None:
                if err is not None:
                    delivery_errors.append(f"{name}: {err}")
                else:
                    sent[(msg.topic(), msg.partition(), msg.offset())] = name

            producer.produce(topic_json if rel.endswith(".json") else topic_xml,
                             payload_of[name], key=rel.encode(), on_delivery=report)
        assert producer.flush(30) == 0 and not delivery_errors, delivery_errors

    def where(name: str) -> str:
        for (t, p, o), n in sent.items():
            if n == name:
                return f"{name} ({t}[{p}]@{o}, sha256 {sha_of[name][:12]})"
        return f"{name} (sha256 {sha_of[name][:12]})"

    inbox = tmp_path / "inbox"
    inbox.mkdir()

    def drop(phase: str) -> None:
        for i, rel in enumerate(FILES[phase]):
            _drop(inbox, f"{phase}-{i}-{Path(rel).name}", payload_of[f"dir:{rel}"])

    env = {**os.environ, **fault_env,
           "MM_POSTGRES__DATABASE": str(fault_db.get("postgres.database")),
           "MM_GCN__BOOTSTRAP": bootstrap, "MM_GCN__GROUP_ID": group,
           "MM_LISTEN__BACKOFF_INITIAL_S": str(BACKOFF_INITIAL_S),
           "MM_LISTEN__BACKOFF_MAX_S": str(BACKOFF_MAX_S),
           "MM_LISTEN__DIR_POLL_S": str(DIR_POLL_S),
           "MM_GCN__MAX_POLL_INTERVAL_MS": str(MAX_POLL_INTERVAL_MS)}
    logs = {"gcn": tmp_path / "listen-gcn.log", "dir": tmp_path / "listen-dir.log"}
    commands = {"gcn": ["listen", "gcn", "--topic", topic_xml, "--topic", topic_json],
                "dir": ["listen", "dir", str(inbox)]}

    def diag() -> str:
        return "\n".join(_tail(p) for p in logs.values()) + "\n" + _tail(postgres.logfile, 1200)

    monitor = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                        "enable.auto.commit": False})
    samples: list[str] = []           # offsets read, for the printout
    violations: list[str] = []        # committed offsets covering unstored payloads

    def committed() -> dict[tuple[str, int], int]:
        """The group's committed offsets (read by a consumer that never joins it)."""
        return {(tp.topic, tp.partition): max(tp.offset, 0)
                for tp in monitor.committed(partitions, timeout=10)}

    def check_offsets(offsets: dict[tuple[str, int], int], stored: set[str], when: str,
                      ) -> None:
        """Every message below a committed offset must be journaled and processed."""
        samples.append(when)
        for (t, p), c in offsets.items():
            for (st, sp, so), name in sent.items():
                if (st, sp) == (t, p) and so < c and sha_of[name] not in stored:
                    violations.append(f"{when}: {t}[{p}] committed at {c} but {where(name)} "
                                      "was not stored")
            if c > sum(1 for (st, sp, _) in sent if (st, sp) == (t, p)):
                violations.append(f"{when}: {t}[{p}] committed at {c}, past what was sent")

    def produced() -> dict[tuple[str, int], int]:
        counts = Counter((t, p) for (t, p, _) in sent)
        return {(tp.topic, tp.partition): counts[(tp.topic, tp.partition)] for tp in partitions}

    def unavailable(which: str, offset: int) -> list[str]:
        with open(logs[which], "rb") as f:
            f.seek(offset)
            return [ln for ln in f.read().decode(errors="replace").splitlines()
                    if UNAVAILABLE in ln]

    engine = engine_for(fault_db)
    stored_before: set[str] = set()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    exits: dict[str, int | None] = {}
    stop_s: dict[str, float] = {}
    retried: dict[str, list[str]] = {}
    pg_stopped = False
    outage_s = restart_s = drain_s = -1.0
    alive = False

    def all_stored(names: list[str]) -> Callable[[], bool]:
        def check() -> bool:
            offsets = committed()
            journal = _journal(engine)  # read after the offsets: it only grows
            stored = {sha for sha, status in journal.items() if status != "received"}
            check_offsets(offsets, stored, f"t+{time.monotonic() - t_start:.1f}s")
            for which, proc in procs.items():
                if proc.poll() is not None:
                    pytest.fail(f"listener {which} exited ({proc.returncode})\n{diag()}")
            return (all(sha_of[n] in stored for n in names) and offsets == produced())
        return check

    def unstored(names: list[str]) -> Callable[[], str]:
        def text() -> str:
            journal = _journal(engine)
            # Stored (and its offset committed) before the stop, 'received' after it:
            # the crash took back a store the listener had been told was committed.
            undone = [where(n) for n in names if sha_of[n] in stored_before
                      and journal.get(sha_of[n]) == "received"]
            return (f"not journaled: {[where(n) for n in names if sha_of[n] not in journal]}\n"
                    f"journaled, left 'received': "
                    f"{[where(n) for n in names if journal.get(sha_of[n]) == 'received']}\n"
                    f"of these, stored before the stop and undone by the crash: {undone}\n"
                    f"committed {committed()}, produced {produced()}\n{diag()}")
        return text

    try:
        for which, args in commands.items():
            with open(logs[which], "wb") as out:
                procs[which] = subprocess.Popen([sys.executable, "-m", "mm_broker.app.cli", *args],
                                                env=env, stdout=out, stderr=subprocess.STDOUT)
        # 1. Before the fault.
        produce("before")
        drop("before")
        first = [f"kafka:{r}" for r in KAFKA["before"]] + [f"dir:{r}" for r in FILES["before"]]
        _wait(all_stored(first), START_S, "first batch journaled and committed",
              unstored(first))
        stored_before = {sha for sha, status in _journal(engine).items()
                         if status != "received"}
        offsets_before = committed()

        # 2. The fault: both listeners idle, nothing in flight.
        log_offsets = {w: p.stat().st_size for w, p in logs.items()}
        assert postgres.stop(mode="immediate"), "the private PostgreSQL was not running"
        pg_stopped = True
        t_down = time.monotonic()
        assert not port_open(host, port), "PostgreSQL still listens after pg_ctl stop"
        produce("during")
        drop("during")

        def retried_enough() -> bool:
            offsets = committed()
            check_offsets(offsets, stored_before, f"outage t+{time.monotonic() - t_down:.1f}s")
            if offsets != offsets_before and not any("moved" in v for v in violations):
                violations.append(f"offsets moved during the outage: {offsets_before} -> "
                                  f"{offsets}")
            for which, proc in procs.items():
                if proc.poll() is not None:
                    pytest.fail(f"listener {which} exited during the outage "
                                f"({proc.returncode})\n{diag()}")
                retried[which] = unavailable(which, log_offsets[which])
            return (time.monotonic() - t_down >= MIN_OUTAGE_S
                    and all(len(v) >= MIN_WARNINGS for v in retried.values()))

        _wait(retried_enough, RETRY_S, "both listeners retrying (backoff warnings)", diag,
              interval=0.5)

        # 3. Back.
        t_restart = time.monotonic()
        postgres.start()
        pg_stopped = False
        t_up = time.monotonic()
        outage_s, restart_s = t_up - t_down, t_up - t_restart
        produce("after")
        drop("after")
        everything = list(sha_of)
        _wait(all_stored(everything), DRAIN_S,
              "every payload journaled and every offset committed", unstored(everything))
        drain_s = time.monotonic() - t_up
        alive = all(p.poll() is None for p in procs.values())
    finally:
        if pg_stopped or not postgres.running():
            postgres.start()  # leave the private services as we found them
        for which, proc in procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for which, proc in procs.items():
            t_term = time.monotonic()
            try:
                proc.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            stop_s[which] = time.monotonic() - t_term
            exits[which] = proc.returncode
        monitor.close()

    # Audit of the journal, by sha256.
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(raw_journal.c.id, raw_journal.c.sha256,
                                       raw_journal.c.receipts, raw_journal.c.status,
                                       raw_journal.c.source)).all()
            per_row: dict[int, int] = dict(conn.execute(
                select(notices.c.journal_id, func.count())
                .group_by(notices.c.journal_id)).all())
    finally:
        engine.dispose()
    rows_by_sha = Counter(r.sha256 for r in rows)
    receipts = {r.sha256: r.receipts for r in rows}
    status = Counter(r.status for r in rows)
    missing = sorted(where(name_of[s]) for s in sha_of.values() if s not in rows_by_sha)
    # receipts must be 1: the listeners were never killed (no Kafka redelivery, no file
    # read twice) and PostgreSQL stopped while both were idle, so no payload was in
    # flight (a crash *during* a store would make the retry journal the bytes again and
    # count a second receipt; during the outage the journal insert cannot connect).
    doubled = sorted(f"{where(name_of[s])}: receipts {receipts[s]}"
                     for s in sha_of.values() if receipts.get(s, 0) > 1)
    unexpected = sorted(f"sha256 {r.sha256} (row {r.id}, source {r.source})"
                        for r in rows if r.sha256 not in name_of)
    unprocessed = sorted(where(name_of[r.sha256]) for r in rows
                         if r.status == "received" and r.sha256 in name_of)
    twice_stored = sorted(f"journal row {jid}: {n} notices" for jid, n in per_row.items()
                          if n > 1)

    def source(name: str) -> str:
        return "gcn" if name.startswith("kafka:") else "dir"

    wrong_source = sorted(f"{where(name_of[r.sha256])}: source {r.source}" for r in rows
                          if r.sha256 in name_of and r.source != source(name_of[r.sha256]))
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                       "enable.auto.commit": False})
    try:
        committed_final = {(tp.topic, tp.partition): max(tp.offset, 0)
                           for tp in reader.committed(partitions, timeout=10)}
    finally:
        reader.close()
    final = produced()
    exactly_once = sum(1 for s in sha_of.values()
                       if rows_by_sha[s] == 1 and receipts.get(s) == 1)
    spacing = {which: _spacing(lines) for which, lines in retried.items()}
    wall = time.monotonic() - t_start
    n_kafka = sum(len(v) for v in KAFKA.values())
    n_files = sum(len(v) for v in FILES.values())
    print(f"\npg-restart: injected: pg_ctl stop -m immediate of the private PostgreSQL "
          f"after {len(KAFKA['before'])} Kafka messages + {len(FILES['before'])} files; "
          f"{len(KAFKA['during'])} messages + {len(FILES['during'])} files sent while it was "
          f"down for {outage_s:.1f} s (of which pg_ctl start {restart_s:.1f} s; backoff "
          f"warnings: gcn {len(retried.get('gcn', []))} spaced {spacing.get('gcn')} s, "
          f"dir {len(retried.get('dir', []))} spaced "
          f"{spacing.get('dir')} s); restarted (crash recovery), then "
          f"{len(KAFKA['after'])} messages + {len(FILES['after'])} files; all stored "
          f"{drain_s:.1f} s after the restart.\n"
          f"pg-restart: counted: payloads {len(sha_of)} ({n_kafka} Kafka, {n_files} files), "
          f"journal rows {len(rows)}, exactly once {exactly_once}, missing {len(missing)}, "
          f"doubled {len(doubled)}, unexpected {len(unexpected)}, unprocessed "
          f"{len(unprocessed)}, statuses {dict(status)}; offset samples {len(samples)}, "
          f"violations {len(violations)}; committed {sum(committed_final.values())} of "
          f"{sum(final.values())} produced; listeners alive after the restart: {alive}; "
          f"exits {exits} after SIGTERM in "
          f"{ {w: round(s, 1) for w, s in stop_s.items()} } s; test body {wall:.1f} s")

    assert not missing, f"payloads lost (not in the raw journal): {missing}\n{diag()}"
    assert not doubled, f"payloads journaled more than once: {doubled}"
    assert not unexpected, f"journal rows of no payload sent: {unexpected}"
    assert not unprocessed, f"payloads journaled but never processed: {unprocessed}"
    assert not twice_stored, f"payloads processed into two notices: {twice_stored}"
    assert not wrong_source, f"payloads journaled under the wrong source: {wrong_source}"
    assert len(rows) == len(sha_of)
    assert not violations, "offsets committed for payloads not stored:\n" + "\n".join(
        violations[:20])
    assert committed_final == final, (f"committed offsets {committed_final} differ from the "
                                      f"messages produced per partition {final}")
    for which in ("gcn", "dir"):
        assert len(retried.get(which, [])) >= MIN_WARNINGS, (
            f"listener {which} logged no backoff while PostgreSQL was down\n{diag()}")
        gaps = spacing[which]
        assert (min(gaps) >= 0.5 * BACKOFF_INITIAL_S and gaps[-1] > gaps[0]
                and max(gaps) <= BACKOFF_MAX_S + 1.0), (
            f"listener {which}: retries spaced {gaps} s, not a backoff from "
            f"{BACKOFF_INITIAL_S} s to {BACKOFF_MAX_S} s\n{_tail(logs[which])}")
    assert alive, "a listener died after the restart\n" + diag()
    for which in ("gcn", "dir"):
        assert exits[which] == 0 and stop_s[which] < STOP_S, (
            f"listener {which} did not stop cleanly on SIGTERM (exit {exits[which]} after "
            f"{stop_s[which]:.1f} s)\n{_tail(logs[which])}")
