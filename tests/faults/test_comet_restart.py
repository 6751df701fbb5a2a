"""Fault: the Comet broker crashes (SIGKILL) and restarts under a VTP subscription.

Requirement: the subscriber (``mm-broker listen vtp``) reconnects by itself, and
nothing it acknowledged is lost or doubled.

Scenario, on the private fault-test services (``tests/faults/conftest.py``):

1. start the VTP listener as a subprocess, subscribed to the private Comet's
   broadcast port, and wait until Comet has registered its connection;
2. submit a first batch of distinct real VOEvents to Comet's receive port (each must
   be ACKed) and wait until all are journaled and processed (what the listener's ACK
   to Comet stands for);
3. SIGKILL Comet; submit a few more VOEvents while it is down: the connection is
   refused, the submitter gets no ACK, so these are counted as *refused*, not lost
   (their author still holds them and retries; VTP never promised delivery);
4. start Comet again and wait, bounded, until the listener's new connection is
   registered by Comet (its own TCP connection, read from /proc, named in Comet's
   "New subscriber at ..." log line, so Comet's own port probes do not count);
5. submit a second batch (new VOEvents, plus the refused ones resubmitted, as their
   author would) and wait until all are journaled and processed;
6. check that the listener is still the same live process (it reconnected rather
   than died), stop it with SIGTERM (clean exit within a bound), then audit the
   database: every VOEvent Comet ACKed while the subscriber was connected is one
   raw_journal row (receipts 1) and one notice, by IVORN. A failure names the
   missing and the doubled IVORNs.

Comet's relay has no store-and-forward: an event it accepts while no subscriber is
connected is dropped for that subscriber by design. That is why step 5 waits for the
reconnection first, and why the audit covers what was accepted while connected.

Comet keeps an event database (30 days) keyed by the SHA-1 of the bytes, and NAKs
bytes it has seen ("previously seen"): a real file submitted by another test to the same
private Comet, or by an earlier run with a fixed ``MM_FAULT_PORT_SHIFT``, would be NAKed.
So every payload is a real file with one per-run XML comment appended after its root
element: bytes unique per run, IVORN and content unchanged. Within a run every file is
distinct, so every IVORN is distinct.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import Engine, func, select

from mm_broker.app.services.comet import Comet
from mm_broker.app.services.process import port_open
from mm_broker.core import config
from mm_broker.core.db.migrate import engine_for
from mm_broker.core.db.schema import notices, raw_journal
from publishers.vtp import VTPError, submit

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

# Each batch holds pairs of notices of one event (same Fermi/Swift trigger): arriving
# together, they are ingested while the first creates the event's row, which is what
# once made the listener ACK one of them unstored (concurrent ingests, now serialised).

#: Submitted (and journaled) before the crash.
BEFORE = ["notices/fermi_gbm/fermi_gbm_gnd_pos_1705.xml",
          "notices/fermi_gbm/fermi_gbm_fin_pos_984.xml",
          "notices/swift/BAT_GRB_Pos_655721-214.xml",
          "notices/swift/XRT_Pos_655721-326.xml"]
#: Submitted while Comet is down (refused), resubmitted after the restart.
WHILE_DOWN = ["notices/fermi_gbm/fermi_gbm_gnd_pos_1834.xml",
              "notices/fermi_gbm/fermi_gbm_fin_pos_1035.xml"]
#: Submitted after the subscriber reconnected.
AFTER = ["notices/fermi_gbm/fermi_gbm_gnd_pos_1848.xml",
         "notices/fermi_gbm/fermi_gbm_fin_pos_1039.xml",
         "notices/fermi_gbm/voevent_number=193.xml",
         "notices/fermi_gbm/voevent_number=2750.xml",
         "notices/swift/voevent_number=392.xml",
         "notices/swift/voevent_number=4554.xml"]

#: Bounds (seconds) of each wait.
SUBSCRIBE_S = 30.0    # listener start-up until Comet registers its connection
JOURNAL_S = 30.0      # ACKed by Comet until journaled
RECONNECT_S = 20.0    # Comet restarted until the listener is registered again
#: The listener's ``[listen] backoff_max_s``, which bounds its reconnection delay.
BACKOFF_MAX_S = 2.0
STOP_S = 20.0         # SIGTERM until the listener has exited

NEW_SUBSCRIBER = re.compile(r"New subscriber at IPv4Address\(type='TCP', host='[^']*', "
                            r"port=(\d+)\)")


def _payload(data_dir: Path, rel: str, run: str) -> bytes:
    """The real file, bytes made unique per run by a trailing comment (IVORN unchanged)."""
    return ((data_dir / rel).read_bytes().rstrip()
            + f"\n<!-- mm_broker fault test comet-restart {run} -->\n".encode())


def _ivorn(payload: bytes) -> str:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return str(etree.fromstring(payload, parser=parser).get("ivorn") or "")


def _established_local_ports(pid: int, remote_port: int) -> set[int]:
    """Local ports of the ESTABLISHED TCP connections of process ``pid`` to
    ``remote_port`` (from /proc: socket inodes of its fds, matched in /proc/net/tcp*)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if (inode in inodes and state == "01"
                    and int(remote.rsplit(":", 1)[1], 16) == remote_port):
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def _registered_port(pid: int, broadcast_port: int, comet_log: Path, offset: int) -> int | None:
    """The local port of the listener's connection if Comet logged it as a new
    subscriber after byte ``offset`` of its log, else None."""
    ports = _established_local_ports(pid, broadcast_port)
    if not ports:
        return None
    with open(comet_log, "rb") as f:
        f.seek(offset)
        logged = {int(p) for p in NEW_SUBSCRIBER.findall(f.read().decode(errors="replace"))}
    hit = ports & logged
    return min(hit) if hit else None


def _wait(check: Callable[[], object], bound: float, what: str, diag: Callable[[], str],
          ) -> tuple[object, float]:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after
    ``bound`` seconds. Returns (value, seconds waited)."""
    t0 = time.monotonic()
    while True:
        value = check()
        if value:
            return value, time.monotonic() - t0
        if time.monotonic() - t0 > bound:
            pytest.fail(f"{what}: not within {bound:.0f} s\n{diag()}")
        time.sleep(0.2)


def _journal_status(engine: Engine, shas: set[str]) -> dict[str, str]:
    """sha256 -> journal status, for the rows among ``shas``."""
    with engine.connect() as conn:
        return {r.sha256: r.status for r in conn.execute(
            select(raw_journal.c.sha256, raw_journal.c.status)
            .where(raw_journal.c.sha256.in_(shas)))}


def _tail(path: Path, n: int = 2500) -> str:
    try:
        return f"--- {path} (tail) ---\n" + path.read_text(errors="replace")[-n:]
    except OSError:
        return f"--- {path}: unreadable ---"


def test_comet_restart_loses_nothing_acknowledged(fault_db: config.Settings, data_dir: Path,
                                                  tmp_path: Path,
                                                  fault_env: dict[str, str]) -> None:
    t_start = time.monotonic()
    run = uuid.uuid4().hex[:12]
    comet = Comet(fault_db)
    host = comet.host
    receive_port = int(fault_db.get("comet.receive_port"))
    broadcast_port = int(fault_db.get("comet.broadcast_port"))
    comet.start()  # idempotent: the session fixture started it (a previous test may not have)
    payloads = {rel: _payload(data_dir, rel, run) for rel in BEFORE + WHILE_DOWN + AFTER}
    ivorn_of = {rel: _ivorn(p) for rel, p in payloads.items()}
    assert len(set(ivorn_of.values())) == len(payloads), "test data: IVORNs must be distinct"

    # The listener's own state directory (Comet subscriber event db) is private to this
    # test; it talks to the private PostgreSQL and to the fresh database. Its
    # reconnection delay is capped at BACKOFF_MAX_S (listeners/vtp.py), so it is back
    # within about that long once Comet listens again.
    env = {**os.environ, **fault_env,
           "MM_POSTGRES__DATABASE": str(fault_db.get("postgres.database")),
           "MM_STATE_DIR": str(tmp_path / "listener-state"),
           "MM_LISTEN__BACKOFF_MAX_S": str(BACKOFF_MAX_S)}
    listener_log = tmp_path / "listener.log"
    engine = engine_for(fault_db)
    accepted: dict[str, str] = {}          # IVORN -> sha256, ACKed while subscribed
    refused: dict[str, str] = {}           # IVORN -> outcome, while Comet was down
    comet_pid_killed: int | None = None
    reconnect_s = stop_s = -1.0

    def diag() -> str:
        return _tail(listener_log) + "\n" + _tail(comet.logfile)

    def submit_batch(rels: list[str]) -> None:
        for rel in rels:
            result = submit(payloads[rel], host, receive_port, timeout=10.0)
            assert result.ok, (f"Comet did not ACK {result.ivorn}: {result.status} "
                               f"({result.reason})")
            accepted[result.ivorn] = hashlib.sha256(payloads[rel]).hexdigest()

    def processed() -> bool:
        # Journaled and processed (the subscriber ACKs only after both).
        status = _journal_status(engine, set(accepted.values()))
        return all(status.get(sha, "received") != "received" for sha in accepted.values())

    def unprocessed() -> str:
        status = _journal_status(engine, set(accepted.values()))
        return ("not journaled: " + ", ".join(sorted(
                    iv for iv, sha in accepted.items() if sha not in status))
                + "\njournaled, left 'received': " + ", ".join(sorted(
                    iv for iv, sha in accepted.items() if status.get(sha) == "received"))
                + "\n" + diag())

    def wait_journaled(what: str) -> float:
        _, waited = _wait(processed, JOURNAL_S, what, unprocessed)
        return waited

    def registered(offset: int) -> int | None:
        if proc.poll() is not None:
            pytest.fail(f"the listener exited ({proc.returncode})\n{diag()}")
        return _registered_port(proc.pid, broadcast_port, comet.logfile, offset)

    offset = comet.logfile.stat().st_size
    with open(listener_log, "wb") as log_out:
        proc = subprocess.Popen([sys.executable, "-m", "mm_broker.app.cli", "listen", "vtp",
                                 "--remote", f"{host}:{broadcast_port}"],
                                env=env, stdout=log_out, stderr=subprocess.STDOUT)
    try:
        port1, _ = _wait(lambda: registered(offset), SUBSCRIBE_S,
                         "listener subscribed to Comet", diag)

        submit_batch(BEFORE)
        wait_journaled("first batch journaled")

        # The crash. kill() returns once the process is gone from /proc, which can be a
        # moment before the kernel has closed its sockets (a connection to the dying
        # listener is then reset): wait until the receive port refuses connections.
        comet_pid_killed = comet.pid()
        assert comet.kill(), "Comet was not running"
        t_killed = time.monotonic()
        _wait(lambda: not port_open(host, receive_port), 10.0, "Comet's port closed", diag)

        # While Comet is down a submission cannot connect: no ACK, so the author keeps
        # the VOEvent (refused, not lost). Only an ACK would be a finding.
        for rel in WHILE_DOWN:
            outcome: str
            try:
                outcome = submit(payloads[rel], host, receive_port, timeout=5.0).status
            except VTPError:
                outcome = "cannot connect"
            if outcome == "ack":
                pytest.fail(f"{ivorn_of[rel]} ACKed while Comet was down")
            refused[ivorn_of[rel]] = outcome

        offset = comet.logfile.stat().st_size
        comet.start()
        port2, reconnect_s = _wait(lambda: registered(offset), RECONNECT_S,
                                   "listener reconnected to the restarted Comet", diag)
        outage_s = time.monotonic() - t_killed
        assert proc.poll() is None, "the listener exited instead of reconnecting\n" + diag()

        # Refused ones resubmitted, as their author would; then the new ones.
        submit_batch(WHILE_DOWN + AFTER)
        wait_journaled("second batch journaled")
        alive = proc.poll() is None
    finally:
        if comet.pid() is None:
            comet.start()  # leave the private services as we found them
        proc.send_signal(signal.SIGTERM)
        t_term = time.monotonic()
        try:
            proc.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        stop_s = time.monotonic() - t_term

    # Audit: by IVORN, journal rows (and their receipts) and notices.
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(raw_journal.c.sha256, raw_journal.c.payload,
                                       raw_journal.c.receipts, raw_journal.c.status,
                                       raw_journal.c.reason)).all()
            notice_rows: Counter[str] = Counter(dict(conn.execute(
                select(notices.c.ivorn, func.count()).group_by(notices.c.ivorn)).all()))
    finally:
        engine.dispose()
    rows_by_ivorn = Counter(_ivorn(r.payload) for r in rows)
    receipts_by_ivorn: Counter[str] = Counter()
    for r in rows:
        receipts_by_ivorn[_ivorn(r.payload)] += r.receipts
    status_of = {_ivorn(r.payload): f"{r.status} ({r.reason})" for r in rows}
    missing = sorted(iv for iv in accepted if rows_by_ivorn[iv] == 0)
    doubled = sorted(iv for iv in accepted
                     if rows_by_ivorn[iv] > 1 or receipts_by_ivorn[iv] > 1
                     or notice_rows[iv] > 1)
    no_notice = sorted(iv for iv in accepted if rows_by_ivorn[iv] and notice_rows[iv] == 0)
    unexpected = sorted(iv for iv in rows_by_ivorn if iv not in accepted)
    exactly_once = sum(1 for iv in accepted
                       if rows_by_ivorn[iv] == 1 and receipts_by_ivorn[iv] == 1)
    wall = time.monotonic() - t_start

    print(f"\ncomet-restart: injected: SIGKILL of Comet (pid {comet_pid_killed}) after "
          f"{len(BEFORE)} VOEvents; {len(WHILE_DOWN)} submitted while down -> "
          f"{len(refused)} refused ({dict(Counter(refused.values()))}; no ACK, so not lost: "
          f"resubmitted after the restart); "
          f"Comet restarted; the subscriber was back {reconnect_s:.1f} s after the restart, "
          f"{outage_s:.1f} s after the kill (port {port1} -> {port2}); "
          f"{len(WHILE_DOWN) + len(AFTER)} submitted after.\n"
          f"comet-restart: counted: ACKed while subscribed {len(accepted)}, journaled "
          f"{sum(1 for iv in accepted if rows_by_ivorn[iv])}, exactly once {exactly_once}, "
          f"notices {sum(notice_rows[iv] for iv in accepted)}, missing {len(missing)}, "
          f"doubled {len(doubled)}, unexpected {len(unexpected)}; listener alive after the "
          f"restart: {alive}; stopped {stop_s:.1f} s after SIGTERM (exit "
          f"{proc.returncode}); test body {wall:.1f} s")

    assert not missing, f"ACKed by Comet but not journaled (lost): {missing}\n{diag()}"
    assert not doubled, (f"journaled more than once: {doubled} (rows "
                         f"{ {iv: rows_by_ivorn[iv] for iv in doubled} }, receipts "
                         f"{ {iv: receipts_by_ivorn[iv] for iv in doubled} }, notices "
                         f"{ {iv: notice_rows[iv] for iv in doubled} })")
    assert not unexpected, f"journaled but never ACKed by Comet: {unexpected}"
    assert not no_notice, (f"journaled but not stored as a notice: {no_notice} "
                           f"(journal status: { {iv: status_of.get(iv) for iv in no_notice} })")
    assert len(refused) == len(WHILE_DOWN)
    assert alive, "the listener died after the restart\n" + diag()
    # Clean stop: twistd stops the reactor ("Server Shut Down.") and then, by design
    # (twisted.scripts.twistd -> app._exitWithSignal), re-raises the signal it got, so
    # the exit status is -SIGTERM rather than 0.
    clean = "Server Shut Down." in listener_log.read_text(errors="replace")
    assert stop_s < STOP_S and clean and proc.returncode in (0, -signal.SIGTERM), (
        f"listener did not stop cleanly on SIGTERM (exit {proc.returncode} after "
        f"{stop_s:.1f} s)\n{_tail(listener_log)}")
