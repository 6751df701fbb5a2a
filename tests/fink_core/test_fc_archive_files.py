"""Reading the archive: only committed, complete files.

A Spark file-sink folder with the stray files of a micro-batch interrupted before its
commit (made here the way a SIGKILL makes them: Spark writes the batch, its log entry
and commit are lost, the restart writes it again under other names) is read by
:func:`fink_core.archive_files.committed_files` exactly as Spark's own reader reads it;
the enriched archive written from ``foreachBatch`` never shows a partial file.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from coincidence.archive_store import ArchiveAlertStore
from fink_core import catalogues as C
from fink_core.archive_files import (
    TEMPORARY_PREFIX,
    archive_dataset,
    committed_files,
    local_path,
    read_archive,
)
from fink_core.pipeline import enrich, write_enriched_batch

SKY = np.array([[0, 12 * 4**29]], dtype=np.uint64)


def _log(folder: Path, name: str, entries: list[tuple[str, str]]) -> None:
    meta = folder / "_spark_metadata"
    meta.mkdir(parents=True, exist_ok=True)
    lines = ["v1"] + [json.dumps({"path": (folder / p).as_uri(), "size": 1, "isDir": False,
                                  "modificationTime": 0, "blockReplication": 1,
                                  "blockSize": 1, "action": action})
                      for p, action in entries]
    (meta / name).write_text("\n".join(lines) + "\n")


def test_log_read_as_spark_reads_it(tmp_path: Path) -> None:
    """Newest compaction, then the batches after it; deletes dropped; Spark's
    temporary and checksum files, and batch logs older than the compaction, ignored."""
    sink = tmp_path / "raw"
    _log(sink, "0", [("night=1/a.parquet", "add")])
    _log(sink, "1", [("night=1/b.parquet", "add"), ("night=1/gone.parquet", "add")])
    _log(sink, "2.compact", [("night=1/a.parquet", "add"), ("night=1/b.parquet", "add"),
                             ("night=1/c.parquet", "add")])
    _log(sink, "3", [("night=2/d e.parquet", "add")])  # a URI: d%20e
    _log(sink, "4", [("night=1/b.parquet", "delete"), ("night=2/f.parquet", "add")])
    (sink / "_spark_metadata" / ".5.0f1e2d.tmp").write_text("v1\n{\"path\": \"x\"}\n")
    (sink / "_spark_metadata" / ".4.crc").write_bytes(b"crc")
    got = committed_files(sink)
    assert got == [sink / "night=1/a.parquet", sink / "night=1/c.parquet",
                   sink / "night=2/d e.parquet", sink / "night=2/f.parquet"]
    assert committed_files(sink.as_uri()) == got
    assert committed_files(tmp_path / "no-sink") is None
    (sink / "_spark_metadata" / "3").unlink()
    with pytest.raises(FileNotFoundError, match="batch 3"):
        committed_files(sink)
    (sink / "_spark_metadata" / "3").write_text("v9\n")
    with pytest.raises(ValueError, match="version"):
        committed_files(sink)


def test_local_path() -> None:
    assert local_path("file:/a/b%3Dc") == Path("/a/b=c")  # Spark's form of a URI
    assert local_path("file:///a/b") == Path("/a/b")
    assert local_path("/a/b") == Path("/a/b")
    with pytest.raises(ValueError, match="spark.read.parquet"):
        local_path("s3a://bucket/archive/raw")


@pytest.mark.spark
@pytest.mark.services
def test_uncommitted_batch_of_a_real_file_sink_is_not_read(spark, tmp_path: Path) -> None:
    """A real Spark file sink (partitioned, its log compacted every 3 batches); the
    last batch loses its log entry and commit as in a SIGKILL between the two and is
    run again by the restart: a glob of the folder reads its rows twice, the log
    reader reads what Spark reads, each row once."""
    inbox, sink, ckpt = tmp_path / "in", tmp_path / "raw", tmp_path / "ckpt"
    inbox.mkdir()
    for b in range(5):
        rows = [{"id": 10 * b + i, "night": f"2018112{i % 2}"} for i in range(10)]
        (inbox / f"part-{b}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def run_once() -> None:
        stream = (spark.readStream.schema("id LONG, night STRING")
                  .option("maxFilesPerTrigger", 1).json(str(inbox)))
        query = (stream.writeStream.format("parquet").option("path", str(sink))
                 .option("checkpointLocation", str(ckpt)).partitionBy("night")
                 .trigger(availableNow=True).start())
        query.awaitTermination()
        assert query.exception() is None

    key = "spark.sql.streaming.fileSink.log.compactInterval"
    before = spark.conf.get(key, None)
    spark.conf.set(key, "3")
    try:
        run_once()
        meta = sink / "_spark_metadata"
        assert (meta / "2.compact").is_file() and (meta / "4").is_file()
        # The crash: batch 4's files are written, its sink log entry and commit are not.
        for lost in (meta / "4", meta / ".4.crc", ckpt / "commits" / "4",
                     ckpt / "commits" / ".4.crc"):
            lost.unlink(missing_ok=True)
        run_once()
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)

    visible = set(sink.glob("night=*/*.parquet"))
    committed = committed_files(sink)
    assert committed is not None
    stray = visible - set(committed)
    assert stray, "the restart must have rewritten batch 4 under other names"
    assert set(committed) <= visible
    globbed = Counter(ds.dataset(str(sink), format="parquet", partitioning="hive")
                      .to_table(columns=["id"]).column("id").to_pylist())
    assert max(globbed.values()) == 2  # what the fault test counted as doubled offsets
    spark_read = spark.read.parquet(str(sink))
    assert {local_path(f) for f in spark_read.inputFiles()} == set(committed)
    table = read_archive(sink)
    assert table is not None
    ids = Counter(table.column("id").to_pylist())
    assert ids == Counter(range(50))
    want = spark_read.toPandas().sort_values("id").reset_index(drop=True)
    got = table.to_pandas()[["id", "night"]].sort_values("id").reset_index(drop=True)
    got["night"] = got["night"].astype(str)
    assert got.equals(want[["id", "night"]].astype({"night": str}))


@pytest.fixture(scope="module")
def enriched(data_dir: Path, catalogues: list[C.Catalogue]) -> pd.DataFrame:
    """A hundred real ZTF alerts, enriched."""
    files = sorted((data_dir / "alerts/ztf/avro").rglob("*.avro"))[:100]
    frame = enrich([p.read_bytes() for p in files], catalogues)  # default provenance
    return frame[frame["decode_error"].isna()].reset_index(drop=True)


def test_enriched_batch_renamed_into_place(enriched: pd.DataFrame,
                                           catalogues: list[C.Catalogue],
                                           tmp_path: Path) -> None:
    """No temporary file is left; a temporary file a crash left (truncated) is skipped
    by every reader and removed when its batch is written again; a rewritten batch
    replaces its files."""
    keys = [c.key for c in catalogues]
    root = tmp_path / "archive"
    write_enriched_batch(enriched.iloc[:50], root.as_uri(), 0, keys)
    names = {p.name for p in (root / "enriched").rglob("*") if p.is_file()}
    assert names and all(n.startswith("batch-0-") for n in names), names
    # A crash while batch 1 was being written: a truncated temporary file.
    part = next((root / "enriched").glob("night=*/hpx1=*"))
    stale = part / f"{TEMPORARY_PREFIX}batch-1-deadbeef0000-0.parquet"
    stale.write_bytes(b"PAR1 truncated")
    dataset = archive_dataset(root / "enriched")
    assert dataset is not None and dataset.count_rows() == 50
    store = ArchiveAlertStore(root.as_uri())
    assert len(store.query(0, 2**62, SKY)) == 50
    # The batch replayed after the crash, twice (the second a replay of the replay).
    write_enriched_batch(enriched.iloc[50:], root.as_uri(), 1, keys)
    write_enriched_batch(enriched.iloc[50:], root.as_uri(), 1, keys)
    assert not stale.exists()
    leftovers = [p for p in (root / "enriched").rglob(f"{TEMPORARY_PREFIX}*")]
    assert leftovers == []
    table = read_archive(root / "enriched", columns=["alert_id"])
    assert table is not None
    assert Counter(table.column("alert_id").to_pylist()) == Counter(enriched["alert_id"])
    assert len(store.query(0, 2**62, SKY)) == len(enriched)


def test_readers_never_open_a_file_being_written(enriched: pd.DataFrame,
                                                 catalogues: list[C.Catalogue],
                                                 tmp_path: Path) -> None:
    """Micro-batches written while readers read (as the region watcher of `run`, the
    compaction or a test reads the archive during a batch): every read succeeds, and
    what is visible only grows."""
    keys = [c.key for c in catalogues]
    root = tmp_path / "archive"
    size = 10
    batches = 100
    done = threading.Event()
    errors: list[BaseException] = []
    seen: list[int] = []

    def writer() -> None:
        try:
            for b in range(batches):
                rows = enriched.iloc[np.arange(b * size, (b + 1) * size) % len(enriched)]
                rows = rows.assign(alert_id=[f"{b}-{a}" for a in rows["alert_id"]])
                write_enriched_batch(rows, root.as_uri(), b, keys)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    store = ArchiveAlertStore(root.as_uri())
    reads = 0
    try:
        while not done.is_set():
            table = read_archive(root / "enriched", columns=["alert_id"])
            n = 0 if table is None else table.num_rows
            seen.append(n)
            assert len(store.query(0, 2**62, SKY)) >= n
            reads += 1
    finally:
        thread.join(60)
    assert errors == []
    assert reads > 0
    assert seen == sorted(seen)
    final = read_archive(root / "enriched", columns=["alert_id"])
    assert final is not None and final.num_rows == size * batches


def test_store_lists_again_when_a_compaction_removed_listed_files(
        enriched: pd.DataFrame, catalogues: list[C.Catalogue], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A compaction merges (and deletes) files between the store's listing and its read:
    the store lists again and finds every alert once, in the merged files."""
    from coincidence import archive_store
    from fink_core.compact import compact

    keys = [c.key for c in catalogues]
    root = tmp_path / "archive"
    for b, part in enumerate(np.array_split(np.arange(len(enriched)), 4)):
        write_enriched_batch(enriched.iloc[part], root.as_uri(), b, keys)
    listings = []

    def listed_then_compacted(folder: Path, partitioning: object) -> object:
        dataset = archive_dataset(folder, partitioning)  # type: ignore[arg-type]
        listings.append(dataset)
        if len(listings) == 1:
            report = compact(root.as_uri(), None, nights=set(enriched["night"]))
            assert report.files_in > 0
        return dataset

    monkeypatch.setattr(archive_store, "archive_dataset", listed_then_compacted)
    got = ArchiveAlertStore(root.as_uri()).query(0, 2**62, SKY)
    assert len(listings) == 2
    assert Counter(got.alert_id.tolist()) == Counter(enriched["alert_id"].astype(str))
