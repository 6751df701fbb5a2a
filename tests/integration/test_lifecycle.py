"""`services up` is idempotent, binds only 127.0.0.1, and `down` leaves nothing running.

Runs a second, private set of services (own state directory and ports) so that the
services used by the rest of the suite are left alone.
"""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

import pytest

from mm_broker.app import services
from mm_broker.app.services.postgres import Postgres
from mm_broker.app.services.process import cmdline
from mm_broker.core import config

pytestmark = pytest.mark.services

REPO = Path(__file__).resolve().parents[2]


def _listening(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state owned by ``pids``."""
    inodes: set[str] = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        for fd in fd_dir.iterdir() if fd_dir.exists() else []:
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    found: set[tuple[str, int]] = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] != "0A" or cols[9] not in inodes:
                continue
            addr_hex, port_hex = cols[1].split(":")
            raw = bytes.fromhex(addr_hex)
            if family == socket.AF_INET:
                addr = socket.inet_ntop(family, raw[::-1])
            else:
                addr = socket.inet_ntop(family, b"".join(struct.pack("<I", w) for w in
                                                         struct.unpack(">4I", raw)))
            found.add((addr, int(port_hex, 16)))
    return found


def _our_pids(state_dir: Path, pg_datadir: Path) -> set[int]:
    """Processes naming the state directory or the PostgreSQL cluster (which lives
    outside the state directory when the server's account cannot reach it)."""
    pids = set()
    for proc in Path("/proc").iterdir():
        line = cmdline(int(proc.name)) if proc.name.isdigit() else ""
        if str(state_dir) in line or str(pg_datadir) in line:
            pids.add(int(proc.name))
    return pids


def test_up_twice_loopback_only_down_leaves_nothing() -> None:
    state = REPO / ".mm" / "lifecycle-test"
    env = {"MM_STATE_DIR": str(state), "MM_POSTGRES__PORT": "55532",
           "MM_KAFKA__PORT": "59192", "MM_KAFKA__CONTROLLER_PORT": "59193",
           "MM_KAFKA__BOOTSTRAP": "127.0.0.1:59192",
           "MM_COMET__RECEIVE_PORT": "58198", "MM_COMET__BROADCAST_PORT": "58199"}
    settings = config.load(environ=env)
    try:
        first = {s.name: s.address for s in services.up(settings)}
        second = {s.name: s.address for s in services.up(settings)}
        assert first == second
        assert first["kafka"] == "kafka://127.0.0.1:59192"
        datadir = Postgres(settings).datadir
        pids = _our_pids(state, datadir)
        assert len(pids) >= 3  # postgres (+ its workers), kafka, comet
        sockets = _listening(pids)
        ports = {p for _, p in sockets}
        assert {55532, 59192, 59193, 58198, 58199} <= ports
        non_loopback = {(a, p) for a, p in sockets if a not in ("127.0.0.1", "::ffff:127.0.0.1")}
        assert non_loopback == set()
        states = dict(services.status(settings))
        assert all(v.startswith("running") for v in states.values()), states
    finally:
        stopped = dict(services.down(settings))
    assert all(stopped.values()), stopped
    assert _our_pids(state, Postgres(settings).datadir) == set()
    assert all(v == "stopped" for _, v in services.status(settings))
