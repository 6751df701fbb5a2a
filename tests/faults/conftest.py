"""Fault scenarios on a private set of real services.

The faults (SIGKILL of Kafka, PostgreSQL stopped, Comet restarted) are injected into a
second set of services with its own state directory and ports, so the services the
rest of the suite uses are never touched. The set's ports and state directory are
chosen per test process among the free ones (``MM_FAULT_PORT_SHIFT`` fixes them), so
two test runs on one machine never inject faults into each other's services.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mm_broker.app import services
from mm_broker.core import config

REPO = Path(__file__).resolve().parents[2]


def _ports(shift: int) -> list[int]:
    """The TCP ports of the private services for ``shift``."""
    return [44000 + shift, 45000 + shift, 45001 + shift, 46000 + shift, 46001 + shift]


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@functools.cache
def _shift() -> int:
    """The port shift of this test process: ``MM_FAULT_PORT_SHIFT``, or the first from
    ``2 * (pid % 450)`` on whose ports nothing listens and whose state directory is
    not in use (two processes whose pids fall on one shift would otherwise share, and
    fail on, one set of ports: seen once in a loop of the fault tests)."""
    if "MM_FAULT_PORT_SHIFT" in os.environ:
        return int(os.environ["MM_FAULT_PORT_SHIFT"])
    start = os.getpid() % 450
    for k in range(450):
        shift = 2 * ((start + k) % 450)
        if not (REPO / ".mm" / f"faults-{shift}").exists() and all(map(_free, _ports(shift))):
            return shift
    return 2 * start


def fault_environ() -> dict[str, str]:
    """MM_* variables of the private fault-test services."""
    shift = _shift()
    kafka = 45000 + shift
    return {"MM_STATE_DIR": str(REPO / ".mm" / f"faults-{shift}"),
            "MM_POSTGRES__PORT": str(44000 + shift),
            "MM_KAFKA__PORT": str(kafka), "MM_KAFKA__CONTROLLER_PORT": str(kafka + 1),
            "MM_KAFKA__BOOTSTRAP": f"127.0.0.1:{kafka}",
            "MM_COMET__RECEIVE_PORT": str(46000 + shift),
            "MM_COMET__BROADCAST_PORT": str(46001 + shift)}


@pytest.fixture(scope="session")
def fault_env() -> dict[str, str]:
    """The MM_* variables of the private services (for subprocesses)."""
    return fault_environ()


@pytest.fixture(scope="session")
def fault_services() -> Iterator[config.Settings]:
    """Private PostgreSQL, Kafka and Comet (started here, stopped at the end)."""
    import shutil

    settings = config.load(environ={**os.environ, **fault_environ()})
    try:
        services.up(settings)
        yield settings
    finally:
        services.down(settings)
        shutil.rmtree(settings.state_dir, ignore_errors=True)


@pytest.fixture
def fault_db(fault_services: config.Settings) -> Iterator[config.Settings]:
    """A new, empty database at the newest migration in the private PostgreSQL."""
    from mm_broker.core.db.scratch import temporary_database

    with temporary_database(fault_services, "mm_fault") as settings:
        yield settings
