"""Resident memory and CPU of a process tree, from ``/proc`` (Linux).

Used by ``mm-broker bench soak`` to follow ``mm-broker run``: its Python driver,
Spark's JVM and the pyspark workers.
"""

from __future__ import annotations

import os
from pathlib import Path


def process_tree(root: int) -> list[int]:
    """A process and its descendants, from ``/proc``.

    Parameters
    ----------
    root : int
        Process id.

    Returns
    -------
    list of int
        ``root`` first, then its descendants.
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def proc_usage(pid: int) -> tuple[float, int, bytes] | None:
    """Resident memory, CPU ticks and command line of a live process.

    Parameters
    ----------
    pid : int
        Process id.

    Returns
    -------
    tuple or None
        ``(RSS MiB, CPU ticks (user + system), command line)``; ``None`` if the
        process is gone.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return None
    rss_kb = next((int(line.split()[1]) for line in status.splitlines()
                   if line.startswith("VmRSS:")), 0)
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return rss_kb / 1024, ticks, cmdline


def service_usage(root: int) -> tuple[dict[str, float], dict[int, tuple[str, int]]]:
    """Resident memory (MiB) of the service's process tree by role, and the CPU ticks of
    each of its processes (pid → (role, ticks)). Roles: ``driver`` (the ``mm-broker
    run`` Python process: join, store, publication), ``jvm`` (Spark's driver JVM that
    pyspark starts: Kafka source, raw archive, scheduling), ``python_workers`` (the
    pyspark daemon and its workers, children of the JVM: Avro decoding and enrichment in
    ``mapInPandas``), ``other``. The RSS dict also has ``total`` and ``processes``.

    Parameters
    ----------
    root : int
        Process id of the service (the ``driver``).

    Returns
    -------
    tuple
        ``(rss, ticks)``: MiB by role, and pid → (role, ticks).
    """
    rss = dict.fromkeys(("driver", "jvm", "python_workers", "other"), 0.0)
    ticks: dict[int, tuple[str, int]] = {}
    for pid in process_tree(root):
        got = proc_usage(pid)
        if got is None:
            continue
        mib, t, cmd = got
        role = ("driver" if pid == root else "jvm" if b"java" in cmd.split(b"\0")[0]
                else "python_workers" if b"pyspark" in cmd else "other")
        rss[role] += mib
        ticks[pid] = (role, t)
    return ({**{k: round(v, 1) for k, v in rss.items()},
             "total": round(sum(rss.values()), 1), "processes": len(ticks)}, ticks)


def cpu_by_role(window: list[dict[int, tuple[str, int]]]) -> dict[str, int]:
    """CPU ticks spent by role between the first and the last of these samples of
    per-process ticks: for each process, its last value seen minus its value in the
    first sample (0 if it started later). A process that ended between two samples
    loses at most one sampling interval.

    Parameters
    ----------
    window : list of dict
        Per-process ticks (pid → (role, ticks)) of successive samples.

    Returns
    -------
    dict
        Ticks by role, and ``total``.
    """
    first, last = window[0], {}
    for per_pid in window:
        last.update(per_pid)
    out: dict[str, int] = {"total": 0}
    for pid, (role, ticks) in last.items():
        spent = ticks - (first[pid][1] if pid in first else 0)
        out[role] = out.get(role, 0) + spent
        out["total"] += spent
    return out


def machine_ticks() -> tuple[int, int]:
    """CPU ticks of the machine since boot, from ``/proc/stat``.

    Returns
    -------
    tuple of int
        ``(busy, total)``: all ticks but idle and iowait, and all ticks.
    """
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)
