"""Directory listener and file replay: hand notice files on in order of issue time.

:func:`ingest_paths` reads every file, orders them by the issue time their parser
reports (files that do not parse come last, in path order, and the handler rejects
them with their reason), then hands each to the handler. :func:`watch` polls a
folder for new or changed files. The journal's ``topic`` of a file is its path; the
handler decides what that origin means (a path is not a Kafka topic).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from listeners.daemon import Stopper, log_outcome, with_backoff
from listeners.parsers import NoticeError, parse
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


def _issue_key(payload: bytes, path: Path) -> tuple[int, datetime, str]:
    """Sort key: parsed notices by issue time, then the unparsable ones."""
    try:
        notice = parse(payload)
    except NoticeError:
        return (1, datetime.max.replace(tzinfo=UTC), str(path))
    return (0, notice.issue_time, str(path))


def ingest_paths(paths: Iterable[str | Path], handler: Handler[OutcomeT],
                 source: str = "dir") -> Iterator[tuple[Path, OutcomeT]]:
    """Hand every file under ``paths`` to ``handler``, in order of issue time.

    Parameters
    ----------
    paths : iterable of str or Path
        Files, or folders searched recursively (:func:`notice_files`).
    handler : Handler
        Called as ``handler(source, str(path), payload, received_at)``, one
        ``received_at`` for the whole call.
    source : str, optional
        The source name handed on (``dir``).

    Yields
    ------
    (Path, outcome)
        Each file with what the handler returned, in the order handled.
    """
    files = notice_files(paths)
    received_at = datetime.now(UTC)
    loaded = [(f, f.read_bytes()) for f in files]
    for f, payload in sorted(loaded, key=lambda item: _issue_key(item[1], item[0])):
        yield f, handler(source, str(f), payload, received_at)


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
                return list(ingest_paths([f], handler))

            outcome = with_backoff(work, stopper, f"ingest {f}", *backoff)
            if outcome is None:
                break
            for path, handled in outcome:
                log_outcome("dir", str(path), handled)
                count += 1
            seen[f] = mtime
        stopper.sleep(poll_s)
    return count
