"""Directory listener: notice files as a transport.

:func:`notice_files` lists the notice files under paths; :func:`watch` polls a folder
for new or changed files and hands each one's bytes to the handler (the journal's
``topic`` of a file is its path; the handler decides what that origin means — a path
is not a Kafka topic). Ordering a batch of files by the issue time of their notices
is the application's (``notices ingest``: :func:`mm_broker.app.ingest.ingest_files`),
since it needs the parsers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from listeners.daemon import Stopper, log_outcome, with_backoff
from listeners.types import Handler, OutcomeT

log = logging.getLogger("mm_broker.listen")

SUFFIXES = {".xml", ".json", ".txt", ".voevent"}


def notice_files(paths: Iterable[str | Path]) -> list[Path]:
    """Notice files under ``paths`` (files, or folders searched recursively).

    Raises
    ------
    FileNotFoundError
        A path that is neither a file nor a folder.
    """
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.is_file()
                                and f.suffix.lower() in SUFFIXES))
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"no notice file or folder at {p}")
    return found


def watch(folder: Path, handler: Handler[OutcomeT], stopper: Stopper, poll_s: float = 2.0,
          backoff: tuple[float, float] = (1.0, 60.0)) -> int:
    """Hand on files appearing (or changing) in ``folder`` until stopped.

    A file is marked seen only once the handler has returned for it; while the
    store is unreachable the file is retried with backoff.

    Parameters
    ----------
    folder : Path
        The folder to poll (recursively).
    handler : Handler
        Journals and processes one payload.
    stopper : Stopper
        Ends the loop.
    poll_s : float, optional
        Seconds between polls.
    backoff : tuple of float, optional
        Initial and largest wait (seconds) between attempts while the store is away.

    Returns
    -------
    int
        How many payloads were handled.
    """
    seen: dict[Path, float] = {}
    count = 0
    while not stopper.stopping:
        fresh = [f for f in notice_files([folder])
                 if seen.get(f) != f.stat().st_mtime]
        for f in fresh:
            if stopper.stopping:
                break
            mtime = f.stat().st_mtime

            def work(f: Path = f) -> list[tuple[Path, OutcomeT]]:
                return [(f, handler("dir", str(f), f.read_bytes(), datetime.now(UTC)))]

            outcome = with_backoff(work, stopper, f"ingest {f}", *backoff)
            if outcome is None:
                break
            for path, handled in outcome:
                log_outcome("dir", str(path), handled)
                count += 1
            seen[f] = mtime
        stopper.sleep(poll_s)
    return count
