"""Compaction of the enriched archive: one file per partition, the same rows, only
committed micro-batches merged, crash-safe, and the retro-match reads the same alerts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from coincidence.archive_store import ArchiveAlertStore
from fink_core import catalogues as C
from fink_core.compact import CompactionError, compact, last_committed_batch
from fink_core.pipeline import enrich, write_enriched_batch
from mm_broker.app.provenance import rule_versions
from mm_broker.core.provenance import Provenance

FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def enriched(data_dir: Path, catalogues: list[C.Catalogue]) -> pd.DataFrame:
    """Every real ZTF Avro alert, enriched (several nights, many sky cells)."""
    files = sorted((data_dir / "alerts/ztf/avro").rglob("*.avro"))
    values = [p.read_bytes() for p in files]
    frame = enrich(values, catalogues,
                   provenance=Provenance.build("test", catalogues, rule_versions()))
    return frame[frame["decode_error"].isna()].reset_index(drop=True)


def _archive(root: Path, frame: pd.DataFrame, keys: list[str], batches: int) -> None:
    for b, part in enumerate(np.array_split(np.arange(len(frame)), batches)):
        write_enriched_batch(frame.iloc[part], root.as_uri(), b, keys)


def _commit(ckpt: Path, upto: int) -> None:
    commits = ckpt / "service" / "coincidence" / "commits"
    commits.mkdir(parents=True, exist_ok=True)
    for b in range(upto + 1):
        (commits / str(b)).write_text("v1\n{}\n")


def _rows(root: Path) -> pd.DataFrame:
    table = ds.dataset(str(root / "enriched"), format="parquet", partitioning="hive").to_table()
    frame = table.to_pandas()
    cols = sorted(c for c in frame.columns if c not in ("night", "hpx1"))
    return frame[cols].sort_values("alert_id").reset_index(drop=True)


def _files(root: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in sorted((root / "enriched").glob("night=*/hpx1=*")):
        out[str(part.relative_to(root))] = sorted(p.name for p in part.iterdir())
    return out


def test_committed_batches_merged_into_one_file_per_partition(
        enriched: pd.DataFrame, catalogues: list[C.Catalogue], tmp_path: Path) -> None:
    keys = [c.key for c in catalogues]
    root, ckpt = tmp_path / "archive", tmp_path / "ckpt"
    _archive(root, enriched, keys, batches=5)
    _commit(ckpt, 3)  # batch 4 is not committed: it may still be replayed
    before = _rows(root)
    files_before = _files(root)
    uncommitted = sum(n.startswith("batch-4-") for names in files_before.values()
                      for n in names)
    assert uncommitted > 0 and last_committed_batch(ckpt.as_uri()) == 3

    report = compact(root.as_uri(), ckpt.as_uri(), now=FUTURE)

    after = _rows(root)
    pd.testing.assert_frame_equal(before, after, check_dtype=False)
    files_after = _files(root)
    for part, names in files_after.items():
        merged = [n for n in names if n.startswith("compact-")]
        batch4 = [n for n in names if n.startswith("batch-4-")]
        others = [n for n in names if n not in merged and n not in batch4]
        committed_before = [n for n in files_before[part] if not n.startswith("batch-4-")]
        if len(committed_before) >= 2:
            assert others == [] and len(merged) == 1, f"{part}: left {others}"
        else:  # a single committed file is already one file
            assert others == committed_before and merged == []
        assert batch4 == [n for n in files_before[part] if n.startswith("batch-4-")]
    merged_parts = sum(1 for names in files_before.values()
                       if sum(not n.startswith("batch-4-") for n in names) >= 2)
    assert report.partitions == merged_parts > 0
    assert report.skipped_uncommitted == uncommitted
    assert report.files_in == sum(sum(not n.startswith("batch-4-") for n in names)
                                  for names in files_before.values()
                                  if sum(not n.startswith("batch-4-") for n in names) >= 2)
    # Sorted by ipix29 inside each merged file.
    for part, names in files_after.items():
        for n in names:
            if n.startswith("compact-"):
                ip = ds.dataset(str(root / part / n)).to_table(columns=["ipix29"])
                values = ip.column(0).to_numpy(zero_copy_only=False)
                assert (np.diff(values.astype(np.int64)) >= 0).all()

    # Once batch 4 is committed, a second pass folds it in; a third has nothing to do.
    _commit(ckpt, 4)
    second = compact(root.as_uri(), ckpt.as_uri(), now=FUTURE)
    assert second.skipped_uncommitted == 0 and second.partitions > 0
    pd.testing.assert_frame_equal(before, _rows(root), check_dtype=False)
    assert all(len(names) == 1 for names in _files(root).values())
    assert compact(root.as_uri(), ckpt.as_uri(), now=FUTURE).partitions == 0


def test_recent_nights_and_uncommitted_archives_are_left_alone(
        enriched: pd.DataFrame, catalogues: list[C.Catalogue], tmp_path: Path) -> None:
    keys = [c.key for c in catalogues]
    root = tmp_path / "archive"
    _archive(root, enriched, keys, batches=3)
    files = _files(root)
    # No commit at all: nothing is merged.
    nothing = compact(root.as_uri(), (tmp_path / "none").as_uri(), now=FUTURE)
    assert nothing.partitions == 0 and nothing.skipped_uncommitted > 0
    # Every night younger than min_age_days: nothing is merged either.
    oldest = min(p.split("/")[1].split("=")[1] for p in files)
    clock = datetime.strptime(oldest, "%Y%m%d").replace(tzinfo=UTC)
    young = compact(root.as_uri(), None, now=clock, min_age_days=0)
    assert young.partitions == 0
    # The clock on the busiest night: only older nights are merged, it is left alone.
    def night(part: str) -> str:
        return part.split("/")[1].split("=")[1]

    busiest = max(files, key=lambda p: len(files[p]))
    clock = datetime.strptime(night(busiest), "%Y%m%d").replace(tzinfo=UTC)
    older = compact(root.as_uri(), None, now=clock, min_age_days=0)
    assert all(n < night(busiest) for n in older.nights)
    assert all(_files(root)[p] == files[p] for p in files if night(p) >= night(busiest))
    # A day later it is old enough.
    later = compact(root.as_uri(), None, now=clock, min_age_days=-1)
    assert night(busiest) in later.nights
    files = _files(root)
    assert _files(root) == files
    # Only the night asked for.
    night = sorted(p.split("/")[1].split("=")[1] for p in files)[0]
    one = compact(root.as_uri(), None, nights=[night])
    assert set(one.nights) <= {night}
    for part, names in _files(root).items():
        if f"night={night}/" not in part + "/":
            assert names == files[part]


def test_crash_in_the_middle_of_a_merge_is_finished_or_undone(
        enriched: pd.DataFrame, catalogues: list[C.Catalogue], tmp_path: Path) -> None:
    import shutil

    keys = [c.key for c in catalogues]
    root = tmp_path / "archive"
    _archive(root, enriched, keys, batches=4)
    before = _rows(root)
    parts = [p for p in (root / "enriched").glob("night=*/hpx1=*")
             if len(list(p.glob("batch-*.parquet"))) >= 2]
    assert len(parts) >= 2
    renamed, not_renamed = parts[0], parts[1]
    # A crash after the rename: the merged file and its sources are both present.
    sources = sorted(p.name for p in renamed.glob("batch-*.parquet"))
    shutil.copy(renamed / sources[0], renamed / "compact-00000000000000aa.parquet")
    (renamed / ".compact-00000000000000aa.json").write_text(json.dumps(
        {"target": "compact-00000000000000aa.parquet",
         "hidden": ".tmp-compact-00000000000000aa.parquet", "sources": sources[:1]}))
    # A crash before the rename: a partial hidden copy and its manifest.
    (not_renamed / ".tmp-compact-00000000000000bb.parquet").write_bytes(b"PAR1 partial")
    (not_renamed / ".compact-00000000000000bb.json").write_text(json.dumps(
        {"target": "compact-00000000000000bb.parquet",
         "hidden": ".tmp-compact-00000000000000bb.parquet",
         "sources": sorted(p.name for p in not_renamed.glob("batch-*.parquet"))}))
    # Meanwhile the retro-match sees the doubled rows as one alert each.
    store = ArchiveAlertStore(root.as_uri())
    wide = np.array([[0, 12 * 4**29]], dtype=np.uint64)
    seen = store.query(0, 2**62, wide)
    assert len(seen) == len(set(seen.alert_id)) == before["alert_id"].nunique()

    report = compact(root.as_uri(), None, now=FUTURE)
    assert report.recovered == 2
    assert not list((root / "enriched").rglob(".*"))
    pd.testing.assert_frame_equal(before, _rows(root), check_dtype=False)


def test_spark_file_sink_archive_is_refused(tmp_path: Path) -> None:
    meta = tmp_path / "archive" / "enriched" / "_spark_metadata"
    meta.mkdir(parents=True)
    with pytest.raises(CompactionError, match="_spark_metadata"):
        compact((tmp_path / "archive").as_uri(), None)


def test_memory_horizon_bounds_memory_and_loses_no_alert(
        enriched: pd.DataFrame, catalogues: list[C.Catalogue], tmp_path: Path) -> None:
    """`run`'s store keeps only recent alerts in memory; a late notice still finds every
    archived alert (from the archive), the same set as with everything in memory."""
    from coincidence.alerts import AlertBatch
    from mm_broker.app.alert_frame import engine_frame

    keys = [c.key for c in catalogues]
    root = tmp_path / "archive"
    frame, _ = engine_frame(enriched)
    frame = frame.reset_index(drop=True)
    bounded = ArchiveAlertStore(root.as_uri(), memory_horizon_s=3600.0)
    bounded.trim_slack = 0  # trim at every batch (a few hundred alerts here)
    unbounded = ArchiveAlertStore((tmp_path / "empty").as_uri())
    new_counts = []
    for part in np.array_split(np.arange(len(frame)), 8):
        rows = frame.iloc[part]
        write_enriched_batch(enriched[enriched["alert_id"].isin(rows["alert_id"])],
                             root.as_uri(), int(part[0]), keys)
        batch = AlertBatch.from_frame(rows)
        new_counts.append(len(bounded.add(batch)))
        unbounded.add(batch)
    assert sum(new_counts) == len(frame)  # every alert new once
    # The alerts span years: most left the memory, the last hour's stayed.
    times = pd.to_datetime(frame["alert_time"], utc=True)
    recent = int((times >= times.max() - pd.Timedelta(hours=1)).sum())
    assert len(unbounded) == len(frame)
    # What stays: the last hour's alerts, plus at most the last batch (not yet trimmed).
    assert recent <= len(bounded) <= recent + new_counts[-1] < len(frame)
    wide = np.array([[0, 12 * 4**29]], dtype=np.uint64)
    got = bounded.query(0, 2**62, wide)
    want = unbounded.query(0, 2**62, wide)
    assert sorted(got.alert_id.tolist()) == sorted(want.alert_id.tolist())
    assert len(got) == len(frame)
