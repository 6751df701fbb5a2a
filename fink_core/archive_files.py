"""Which files of an archive folder hold committed data: the one way to read the archive.

The archive has two kinds of folders, and neither may be read by listing its
``*.parquet`` files:

* Folders written by Spark's Parquet **file sink** (``<archive>/raw``, and
  ``<archive>/enriched`` when ``mm-broker alerts archive`` wrote it). The sink's tasks
  write their files under their final names, then the driver commits the micro-batch
  by writing the list of its files to the sink's metadata log,
  ``<folder>/_spark_metadata/<batch id>``. A job killed between the two (SIGKILL, OOM,
  machine lost) leaves the files of that batch in the folder without a log entry; at
  the restart Spark runs the batch again and writes its rows again, *under other
  names*. Spark's own reader (``spark.read.parquet(folder)``) lists the files from the
  log and sees every row once; a reader that lists the folder (a pyarrow or pandas
  glob) sees the stray files too, i.e. the rows of that batch twice, and may open a
  file a task is still writing. :func:`committed_files` reads the log the way Spark
  does (the latest ``<id>.compact`` file, then the batch files after it, ``delete``
  entries dropped), so pyarrow readers can see exactly what Spark sees.
* Folders written by pyarrow from ``foreachBatch`` (``<archive>/enriched`` of
  ``mm-broker run``, :func:`fink_core.pipeline.write_enriched_batch`). There is no
  log: a file is written under a hidden temporary name (starting with
  :data:`TEMPORARY_PREFIX`) and renamed into place when complete, so every visible
  name is a complete file. Readers skip names starting with ``.`` or ``_``
  (pyarrow's and Spark's default).

:func:`archive_dataset` chooses between the two: a folder with ``_spark_metadata`` is
read from its log, any other from its visible files. Every reader of the archive
(:class:`coincidence.archive_store.ArchiveAlertStore`, the tests, the operator's
recipes in ``docs/operations.md``) goes through it or through Spark's reader.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.dataset as ds

#: The file sink's metadata log folder (Spark's ``FileStreamSink.metadataDir``).
SPARK_METADATA = "_spark_metadata"
#: Prefix of the temporary names of files being written (hidden from every reader).
TEMPORARY_PREFIX = ".tmp-"
#: Name prefixes readers skip (pyarrow's default ``ignore_prefixes``, Spark's too).
HIDDEN_PREFIXES = (".", "_")

_BATCH_LOG = re.compile(r"^(\d+)(\.compact)?$")
#: Version line of the sink's log files Spark 3 and 4 write (``FileStreamSinkLog``).
_LOG_VERSION = 1


def local_path(uri: str) -> Path:
    """The local path of a ``file:`` URI (``file:///a``, Spark's ``file:/a``) or a path.

    Parameters
    ----------
    uri : str
        A ``file:`` URI or a plain local path.

    Returns
    -------
    pathlib.Path
        The path, percent-decoded.

    Raises
    ------
    ValueError
        For another scheme (``hdfs://``, ``s3a://``): read those with Spark.
    """
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    raise ValueError(f"{uri}: only local folders are read with pyarrow here; "
                     "read other storage with spark.read.parquet")


def is_spark_sink(folder: str | Path) -> bool:
    """True if ``folder`` was written by Spark's file sink (it has a metadata log)."""
    return (_as_path(folder) / SPARK_METADATA).is_dir()


def committed_files(folder: str | Path) -> list[Path] | None:
    """Files of the micro-batches Spark's file sink committed to ``folder``.

    Read from ``<folder>/_spark_metadata`` as Spark's ``FileStreamSinkLog.allFiles``
    does: the newest compacted log (``<id>.compact``, every ``compactInterval``
    batches, holding every entry up to it), then each batch log after it in order;
    files named by a ``delete`` entry are dropped. Files in the folder that no log
    names (a batch interrupted before its commit, rewritten under other names by the
    restart) are not returned.

    Parameters
    ----------
    folder : str or Path
        The sink's output folder (local path or ``file:`` URI).

    Returns
    -------
    list of Path or None
        The committed files, in log order; ``None`` if ``folder`` has no metadata log
        (not written by the file sink).

    Raises
    ------
    FileNotFoundError
        A batch log between the newest compaction and the newest batch is missing (the
        log is damaged; Spark refuses it too).
    ValueError
        A log file of an unknown version.
    """
    log_dir = _as_path(folder) / SPARK_METADATA
    if not log_dir.is_dir():
        return None
    batches: dict[int, Path] = {}
    compacted: dict[int, Path] = {}
    for entry in log_dir.iterdir():
        # Skipped: Spark's temporary files (".<id>.<uuid>.tmp") and checksums (".<id>.crc").
        match = _BATCH_LOG.match(entry.name)
        if match is None:
            continue
        batch = int(match.group(1))
        (compacted if match.group(2) else batches)[batch] = entry
        batches.setdefault(batch, entry)
    if not batches:
        return []
    latest = max(batches)
    start = max((b for b in compacted if b <= latest), default=None)
    names: list[Path] = []
    if start is not None:
        names.append(compacted[start])
    first = 0 if start is None else start + 1
    for batch in range(first, latest + 1):
        if batch not in batches:
            raise FileNotFoundError(f"{log_dir}: the log of batch {batch} is missing "
                                    f"(batches {first}..{latest} expected)")
        names.append(batches[batch])
    added: dict[str, None] = {}
    deleted: set[str] = set()
    for name in names:
        for path, action in _read_log(name):
            if action == "delete":
                deleted.add(path)
            else:
                added[path] = None
    return [local_path(p) for p in added if p not in deleted]


def _read_log(path: Path) -> list[tuple[str, str]]:
    """``(path, action)`` of each entry of one sink log file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != f"v{_LOG_VERSION}":
        raise ValueError(f"{path}: not a version-{_LOG_VERSION} file sink log "
                         f"(first line {lines[0][:20] if lines else ''!r})")
    out = []
    for line in lines[1:]:
        if line.strip():
            status = json.loads(line)
            out.append((str(status["path"]), str(status.get("action", "add"))))
    return out


def archive_dataset(folder: str | Path, partitioning: ds.Partitioning | str | None = "hive",
                    ) -> ds.Dataset | None:
    """A pyarrow dataset of the committed files of an archive folder.

    Parameters
    ----------
    folder : str or Path
        ``<archive>/raw`` or ``<archive>/enriched`` (local path or ``file:`` URI).
    partitioning : pyarrow.dataset.Partitioning or str, optional
        How the partition folders (``night=…/hpx1=…``) become columns (default: hive,
        types inferred).

    Returns
    -------
    pyarrow.dataset.Dataset or None
        Only complete, committed files: those of the sink's log if ``folder`` has one
        (:func:`committed_files`), otherwise its files but those with a hidden name
        (temporary files being written); ``None`` if the folder does not exist or
        holds no committed file yet.
    """
    root = _as_path(folder)
    if not root.is_dir():
        return None
    files = committed_files(root)
    if files is None:
        dataset = ds.dataset(str(root), format="parquet", partitioning=partitioning,
                             ignore_prefixes=list(HIDDEN_PREFIXES))
        return dataset if dataset.files else None
    if not files:
        return None
    # Explicit files: the partition columns still come from the folders below root.
    return ds.dataset([str(f) for f in files], format="parquet", partitioning=partitioning,
                      partition_base_dir=str(root))


def read_archive(folder: str | Path, columns: list[str] | None = None,
                 partitioning: ds.Partitioning | str | None = "hive") -> pa.Table | None:
    """The committed rows of an archive folder (see :func:`archive_dataset`).

    Parameters
    ----------
    folder : str or Path
        ``<archive>/raw`` or ``<archive>/enriched``.
    columns : list of str, optional
        Columns to read (default: all).
    partitioning : pyarrow.dataset.Partitioning or str, optional
        As for :func:`archive_dataset`.

    Returns
    -------
    pyarrow.Table or None
        ``None`` if nothing is committed yet.
    """
    dataset = archive_dataset(folder, partitioning)
    return None if dataset is None else dataset.to_table(columns=columns)


def _as_path(folder: str | Path) -> Path:
    return folder if isinstance(folder, Path) else local_path(folder)
