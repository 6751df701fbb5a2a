"""An :class:`~coincidence.alerts.AlertStore` backed by the fink_core Parquet archive.

Late notices must be matched against alerts seen before they arrived, including
alerts archived before the streaming job last restarted. This store answers
:meth:`query` from the enriched archive (``<archive>/enriched/night=…/hpx1=…``),
reading only its committed, complete files
(:func:`fink_core.archive_files.archive_dataset`), only the partitions of the nights
the window spans and the coarse HEALPix cells the region touches, and only the
columns the engine needs; the exact order-29 range test and the time test are then
numpy. Alerts of the current session are also kept in memory (the archive query may
lag the stream by one micro-batch), and the two answers are merged by ``alert_id``. With a
``memory_horizon_s``, alerts older than that (before the newest alert added) leave
the memory: they are still answered from the archive, and memory stays bounded on
an endless stream.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.dataset as ds

from coincidence.alerts import AlertBatch, InMemoryAlertStore
from coincidence.index import expand_counts
from fink_core.archive_files import archive_dataset
from fink_core.context import survey_first_detection_jd
from fink_core.pipeline import PARTITION_ORDER

_COLUMNS = ["alert_id", "object_id", "survey", "ra", "dec", "ipix29", "obs_jd",
            "first_detection_jd", "ztf_jdstarthist", "lsst_first_dia_source_jd", "quality_ok"]
_JD_UNIX = 2440587.5
#: Listings of the archive tried when files listed vanish before they are read.
_LIST_ATTEMPTS = 3


def _jd_to_ns(jd: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    return np.round((jd - _JD_UNIX) * 86400e9).astype(np.int64)


class ArchiveAlertStore:
    """Alerts of the Parquet archive plus those of this session.

    Parameters
    ----------
    archive_uri : str
        The archive root (``file://`` URI or local path); the enriched alerts are in
        ``<archive_uri>/enriched``.
    memory_horizon_s : float, optional
        Keep in memory only the alerts of the last this-many seconds (alert time,
        before the newest added); ``None``: all of this session's.
    """

    def __init__(self, archive_uri: str, memory_horizon_s: float | None = None) -> None:
        parsed = urlparse(archive_uri)
        self.root = Path(parsed.path if parsed.scheme == "file" else archive_uri) / "enriched"
        self.memory = InMemoryAlertStore()
        self.horizon_ns = None if memory_horizon_s is None else int(memory_horizon_s * 1e9)
        self._newest_ns: int | None = None
        self._kept_at_trim = 0
        #: Alerts memory may grow by, beyond a quarter, before it is trimmed again.
        self.trim_slack = 1000

    def __len__(self) -> int:
        return len(self.memory)

    def add(self, batch: AlertBatch) -> AlertBatch:
        """See :meth:`coincidence.alerts.AlertStore.add` (kept in memory)."""
        new = self.memory.add(batch)
        if self.horizon_ns is not None and len(new):
            newest = int(new.time_ns.max())
            self._newest_ns = newest if self._newest_ns is None else max(self._newest_ns,
                                                                          newest)
            # Trim when memory has grown by a quarter since the last trim (each trim
            # copies what is kept).
            if len(self.memory) > 1.25 * self._kept_at_trim + self.trim_slack:
                self.memory.forget_before(self._newest_ns - self.horizon_ns)
                self._kept_at_trim = len(self.memory)
        return new

    def query(self, start_ns: int, end_ns: int,
              ranges: npt.NDArray[np.uint64] | npt.NDArray[np.int64]) -> AlertBatch:
        """Archived and in-memory alerts in ``[start_ns, end_ns]`` and in ``ranges``."""
        live = self.memory.query(start_ns, end_ns, ranges)
        archived = self._archived(start_ns, end_ns, np.asarray(ranges).reshape(-1, 2))
        if len(archived) == 0:
            return live
        seen = set(live.alert_id.tolist())
        keep = np.array([a not in seen for a in archived.alert_id], dtype=bool)
        return AlertBatch.concat([live, archived.take(np.flatnonzero(keep))])

    def _archived(self, start_ns: int, end_ns: int,
                  bounds: npt.NDArray[np.generic]) -> AlertBatch:
        if len(bounds) == 0 or not self.root.is_dir():
            return AlertBatch.empty()
        lo = bounds[:, 0].astype(np.int64)
        hi = bounds[:, 1].astype(np.int64)
        shift = 2 * (29 - PARTITION_ORDER)
        cells: set[int] = set()
        for a, b in zip(lo >> shift, (hi - 1) >> shift, strict=True):
            cells.update(range(int(a), int(b) + 1))
        first_night = datetime.fromtimestamp(start_ns / 1e9, UTC) - timedelta(days=1)
        nights = []
        day = first_night.date()
        while day <= datetime.fromtimestamp(end_ns / 1e9, UTC).date():
            nights.append(day.strftime("%Y%m%d"))
            day += timedelta(days=1)
        partitioning = ds.partitioning(
            pa.schema([("night", pa.string()), ("hpx1", pa.int32())]), flavor="hive")
        # Only complete, committed files: never a file being written (hidden temporary
        # names), never the stray files of a Spark file-sink batch interrupted before
        # its commit (see fink_core.archive_files).
        expr = ds.field("night").isin(nights) & ds.field("hpx1").isin(sorted(cells))
        for attempt in range(_LIST_ATTEMPTS):
            dataset = archive_dataset(self.root, partitioning)
            if dataset is None:
                return AlertBatch.empty()
            names = set(dataset.schema.names)
            columns = [c for c in _COLUMNS if c in names]
            try:
                table = dataset.to_table(columns=columns,
                                         filter=expr & ds.field("ipix29").is_valid())
                break
            except FileNotFoundError:
                # A compaction merged and removed files after they were listed (the
                # merged file holds their rows, see fink_core.compact): list again.
                if attempt == _LIST_ATTEMPTS - 1:
                    raise
        if table.num_rows == 0:
            return AlertBatch.empty()
        # An alert twice (a compaction between its rename and its deletions, see
        # fink_core.compact) is one alert.
        frame = table.to_pandas().drop_duplicates("alert_id", ignore_index=True)
        ipix = frame["ipix29"].to_numpy(dtype=np.int64)
        order = np.argsort(ipix, kind="stable")
        ipix = ipix[order]
        first = np.searchsorted(ipix, lo, side="left")
        last = np.searchsorted(ipix, hi, side="left")
        rows = order[expand_counts(first, last - first)]
        frame = frame.iloc[np.sort(rows)]
        time_ns = _jd_to_ns(frame["obs_jd"].to_numpy(dtype=float))
        first_ns = _jd_to_ns(survey_first_detection_jd(frame))
        # As in the replay: a first detection later than the alert is not trusted as the
        # alert time (see mm_broker.app.replay.load_alerts).
        time_ns = np.maximum(time_ns, first_ns)
        in_time = (time_ns >= start_ns) & (time_ns <= end_ns)
        frame = frame.loc[in_time]
        if len(frame) == 0:
            return AlertBatch.empty()
        quality = frame["quality_ok"].fillna(False).to_numpy(dtype=bool) \
            if "quality_ok" in frame else None
        return AlertBatch.from_arrays(
            alert_id=frame["alert_id"].astype(str).to_numpy(),
            object_id=frame["object_id"].astype(str).to_numpy(),
            survey=frame["survey"].astype(str).to_numpy(),
            ra=frame["ra"].to_numpy(dtype=float), dec=frame["dec"].to_numpy(dtype=float),
            time_ns=time_ns[in_time], first_ns=first_ns[in_time], quality=quality)
