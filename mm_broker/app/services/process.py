"""Small process helpers for the local services: pid files, ports, waiting.

Only processes whose pid file is in our state directory are ever signalled, and only
if their command line still mentions that state directory (a recycled pid belongs to
somebody else).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mm_broker.core.errors import ServiceError


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Return whether a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(check: Callable[[], bool], timeout: float, what: str,
             interval: float = 0.2, log_file: Path | None = None) -> float:
    """Poll ``check`` until it is true; return the seconds waited.

    Raises
    ------
    ServiceError
        If ``timeout`` seconds pass first (the tail of ``log_file`` is included).
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(interval)
    tail = ""
    if log_file is not None and log_file.exists():
        tail = "\n--- " + str(log_file) + " ---\n" + log_file.read_text(errors="replace")[-3000:]
    raise ServiceError(f"{what} did not answer within {timeout:.0f} s{tail}")


def cmdline(pid: int) -> str:
    """Command line of a running process, or ``""`` if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def read_pid(pid_file: Path, marker: str) -> int | None:
    """Pid recorded in ``pid_file`` if that process is alive and ours (``marker`` in cmdline)."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    line = cmdline(pid)
    if not line or marker not in line:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return None
    except OSError:
        return None
    return pid


def spawn(cmd: Sequence[str], log_file: Path, pid_file: Path,
          env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Start ``cmd`` detached in its own session, output to ``log_file``; record its pid."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - argument list, no shell
            list(cmd), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env, cwd=cwd,
        )
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def terminate(pid: int, timeout: float = 20.0, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to ``pid`` and its process group; SIGKILL after ``timeout`` seconds."""
    for target in (lambda s: os.killpg(pid, s), lambda s: os.kill(pid, s)):
        try:
            target(sig)
            break
        except (ProcessLookupError, PermissionError):
            continue
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not cmdline(pid):
            return
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)
            if waited == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill(pid: int | None, pid_file: Path) -> bool:
    """SIGKILL a recorded service process (a crash, for fault tests) and forget its pid
    file; return whether it was running."""
    if pid is None:
        return False
    terminate(pid, timeout=15, sig=signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True
