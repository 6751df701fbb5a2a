"""Directory listener and file replay: ingest notice files in order of issue time.

``ingest_paths`` journals every file first, then processes them in order of the
issue time their parser reports (files that do not parse come last, in path order,
and are rejected with their reason). ``watch`` polls a folder for new files.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from listeners.daemon import Stopper, log_result, with_backoff
from listeners.parsers import NoticeError, parse
from mm_broker.app.ingest import IngestResult, Limits, journal, process, recover_pending

log = logging.getLogger("mm_broker.listen")

SUFFIXES = {".xml", ".json", ".txt", ".voevent"}


def notice_files(paths: Iterable[str | Path]) -> list[Path]:
    """Notice files under ``paths`` (files, or folders searched recursively)."""
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


def ingest_paths(engine: Engine, paths: Iterable[str | Path], limits: Limits,
                 source: str = "dir") -> Iterator[tuple[Path, IngestResult]]:
    """Journal then ingest every file, in order of issue time; yield each outcome."""
    files = notice_files(paths)
    received_at = datetime.now(UTC)
    pending: list[tuple[tuple[int, datetime, str], Path, bytes, int, bool, str]] = []
    with engine.begin() as conn:
        for f in files:
            payload = f.read_bytes()
            jid, first, status = journal(conn, payload, source, str(f), received_at)
            pending.append((_issue_key(payload, f), f, payload, jid, first, status))
    for _, f, payload, jid, first, status in sorted(pending, key=lambda x: x[0]):
        if not first and status != "received":
            yield f, IngestResult("duplicate", f"identical bytes already journaled (row {jid})",
                                  jid)
            continue
        # A file path is not a topic: the payload's own content chooses the parser.
        yield f, process(engine, jid, payload, None, limits)


def watch(engine: Engine, folder: Path, limits: Limits, stopper: Stopper,
          poll_s: float = 2.0, backoff: tuple[float, float] = (1.0, 60.0)) -> int:
    """Ingest files appearing in ``folder`` until stopped; return how many were ingested."""
    seen: dict[Path, float] = {}
    count = 0
    for pending in recover_pending(engine, limits):
        log_result("dir", "recovered", pending)
    while not stopper.stopping:
        fresh = [f for f in notice_files([folder])
                 if seen.get(f) != f.stat().st_mtime]
        for f in fresh:
            if stopper.stopping:
                break
            mtime = f.stat().st_mtime
            def work(f: Path = f) -> list[tuple[Path, IngestResult]]:
                return list(ingest_paths(engine, [f], limits))

            outcome = with_backoff(work, stopper, f"ingest {f}", *backoff)
            if outcome is None:
                break
            for path, result in outcome:
                log_result("dir", str(path), result)
                count += 1
            seen[f] = mtime
        stopper.sleep(poll_s)
    return count
