"""Compaction of the enriched archive: one Parquet file per (night, hpx1) partition.

``mm-broker run`` appends one small file per micro-batch and partition
(:func:`fink_core.pipeline.write_enriched_batch`, ``batch-<id>-<n>.parquet``). A late
notice is retro-matched by reading the partitions its region and window cover
(:class:`coincidence.archive_store.ArchiveAlertStore`), and reading many small files
costs several times more than reading one (``mm-broker bench retro``: 8 s for 10 M
alerts in one file per partition and night, 24 s with ten). The compaction merges a
partition's files into one, rows sorted by ``ipix29`` so row-group statistics prune
the reads further.

Safety rules
------------
* Only files of micro-batches the streaming query has **committed** are merged: the
  batch ids in ``<checkpoints>/<service>/coincidence/commits``. An uncommitted batch may
  be replayed after a crash and would rewrite its ``batch-<id>-*`` files next to the
  merged copy, doubling its alerts.
* Each merge is crash-safe: the merged file is written under a hidden name (readers
  skip names starting with ``.``), a manifest names it and its sources, then it is
  renamed and the sources deleted. A compaction that finds a manifest (a crash) first
  finishes or undoes that merge. Between the rename and the deletions a reader may see
  an alert twice; the archive store drops such duplicates by ``alert_id``.
* An archive written by Spark's own file sink (``_spark_metadata`` present, as
  ``mm-broker alerts archive`` writes) is refused: Spark lists those files from its
  log, and renaming them would hide alerts from it.

pyarrow's ``write_dataset`` cannot merge into an existing partition in place (it
appends or overwrites whole names), hence this module.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from mm_broker.core.errors import CompactionError

log = logging.getLogger("fink_core.compact")

_BATCH = re.compile(r"^batch-(\d+)-\d+\.parquet$")
_COMPACT = re.compile(r"^compact-[0-9a-f]{16}\.parquet$")


@dataclass
class CompactionReport:
    """What one compaction did.

    Attributes
    ----------
    partitions : int
        Partitions merged into one file.
    files_in : int
        Files merged (and deleted).
    rows : int
        Rows written in the merged files.
    skipped_uncommitted : int
        Files left alone because their micro-batch is not committed.
    recovered : int
        Merges left half-done by a crash, finished or undone first.
    nights : list of str
        Nights touched.
    """

    partitions: int = 0
    files_in: int = 0
    rows: int = 0
    skipped_uncommitted: int = 0
    recovered: int = 0
    nights: list[str] = field(default_factory=list)


def _path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise CompactionError(f"compaction works on local or mounted archives; got {uri!r}")
    return Path(parsed.path if parsed.scheme == "file" else uri)


def last_committed_batch(checkpoint_uri: str, service: str = "service") -> int | None:
    """Highest micro-batch id committed by the ``coincidence`` query of ``service``
    (``None`` when it has committed none)."""
    commits = _path(checkpoint_uri) / service / "coincidence" / "commits"
    ids = [int(p.name) for p in commits.iterdir() if p.name.isdigit()] \
        if commits.is_dir() else []
    return max(ids) if ids else None


def _recover(part: Path) -> int:
    """Finish or undo merges a crash interrupted in ``part``; return how many."""
    done = 0
    for manifest in sorted(part.glob(".compact-*.json")):
        spec = json.loads(manifest.read_text())
        target = part / spec["target"]
        hidden = part / spec["hidden"]
        if target.exists():  # renamed: the sources must go
            for name in spec["sources"]:
                (part / name).unlink(missing_ok=True)
        else:  # not renamed: the sources are intact, the partial copy goes
            hidden.unlink(missing_ok=True)
        manifest.unlink()
        done += 1
    for stray in part.glob(".tmp-compact-*.parquet"):
        if not any(part.glob(f".compact-{stray.name[13:29]}.json")):
            stray.unlink()
    return done


def _merge(part: Path, files: list[Path]) -> int:
    tables = [pq.read_table(f) for f in files]
    # Older files may lack later columns (provenance): missing ones become nulls.
    table = pa.concat_tables(tables, promote_options="default")
    if "ipix29" in table.column_names:
        table = table.sort_by([("ipix29", "ascending")])
    token = uuid.uuid4().hex[:16]
    hidden = part / f".tmp-compact-{token}.parquet"
    target = part / f"compact-{token}.parquet"
    pq.write_table(table, hidden, row_group_size=64_000)
    manifest = part / f".compact-{token}.json"
    tmp_manifest = part / f".tmp-manifest-{token}"
    tmp_manifest.write_text(json.dumps({"target": target.name, "hidden": hidden.name,
                                        "sources": [f.name for f in files]}))
    os.replace(tmp_manifest, manifest)
    os.replace(hidden, target)
    for f in files:
        f.unlink(missing_ok=True)
    manifest.unlink()
    return table.num_rows


def compact(archive_uri: str, checkpoint_uri: str | None, service: str = "service",
            nights: Iterable[str] | None = None, min_age_days: float = 1.0,
            now: datetime | None = None) -> CompactionReport:
    """Merge the committed files of each partition of ``<archive>/enriched`` into one.

    Parameters
    ----------
    archive_uri : str
        Archive root (``file://`` URI or path).
    checkpoint_uri : str or None
        Checkpoint root of ``mm-broker run`` (``alerts.checkpoint_uri``); only files of
        committed micro-batches are merged. ``None``: no streaming job writes this
        archive (a finished batch archive), every ``batch-*`` file may be merged.
    service : str
        The service's checkpoint folder name (``run(name=...)``).
    nights : iterable of str, optional
        Only these nights (``YYYYMMDD``); default: every night older than
        ``min_age_days``.
    min_age_days : float
        Nights younger than this (from ``now``) are left to the live stream.
    now : datetime, optional
        The clock (tests).

    Returns
    -------
    CompactionReport

    Raises
    ------
    CompactionError
        If the archive is a Spark file-sink output (``_spark_metadata``).
    """
    root = _path(archive_uri) / "enriched"
    report = CompactionReport()
    if not root.is_dir():
        return report
    if (root / "_spark_metadata").exists():
        raise CompactionError(f"{root} is written by Spark's file sink (_spark_metadata): "
                              "Spark lists its files from that log, so they are not "
                              "merged here")
    limit = None if checkpoint_uri is None else last_committed_batch(checkpoint_uri, service)
    wanted = None if nights is None else set(nights)
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=min_age_days)).strftime("%Y%m%d")
    for night_dir in sorted(root.glob("night=*")):
        night = night_dir.name.split("=", 1)[1]
        if wanted is not None and night not in wanted:
            continue
        if wanted is None and night >= cutoff and night != "__HIVE_DEFAULT_PARTITION__":
            continue
        touched = False
        for part in sorted(night_dir.glob("hpx1=*")):
            report.recovered += _recover(part)
            files = []
            for f in sorted(part.iterdir()):
                m = _BATCH.match(f.name)
                if m is not None:
                    if checkpoint_uri is not None and (limit is None or int(m.group(1)) > limit):
                        report.skipped_uncommitted += 1
                        continue
                    files.append(f)
                elif _COMPACT.match(f.name):
                    files.append(f)
            if len(files) < 2:
                continue
            report.rows += _merge(part, files)
            report.partitions += 1
            report.files_in += len(files)
            touched = True
        if touched:
            report.nights.append(night)
    log.info("compacted %d partitions (%d files, %d rows) in %d nights; %d files of "
             "uncommitted micro-batches left; %d interrupted merges recovered",
             report.partitions, report.files_in, report.rows, len(report.nights),
             report.skipped_uncommitted, report.recovered)
    return report
