"""Alerts as the coincidence maths sees them, and where past alerts are kept.

:class:`AlertBatch` is a columnar batch of alerts (numpy arrays, times in ns) built
from a pandas DataFrame with the columns of :data:`ALERT_COLUMNS`.

:class:`AlertStore` is what the engine needs to retro-match a late notice: remember
alerts, and return those observed in a time window inside a set of order-29 ranges.
:class:`InMemoryAlertStore` keeps them in memory; an archive-backed store (Parquet
partitions, or PostgreSQL with an index on the order-29 pixel column) can implement
the same two methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from coincidence.index import expand_counts, ipix29
from coincidence.times import column_to_ns
from mm_broker.core.models import IPIX_DTYPE

#: Columns of an alerts DataFrame handed to the engine, and their meaning.
ALERT_COLUMNS: dict[str, str] = {
    "alert_id": "unique alert identifier (ZTF candid, LSST diaSourceId), kept as text",
    "object_id": "object identifier (ZTF objectId, LSST diaObjectId), text",
    "survey": "'ZTF', 'LSST', ...",
    "ra": "right ascension, ICRS degrees",
    "dec": "declination, ICRS degrees",
    "alert_time": "observation time, timezone-aware datetime64 (UTC)",
    "first_detection_time": "first detection of the object, timezone-aware datetime64",
    "quality": "optional bool, True when the alert passes the quality cuts (default True)",
}

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
ObjArray = npt.NDArray[np.object_]


def _text(values: Sequence[object] | pd.Series | npt.NDArray[np.generic]) -> ObjArray:
    """Identifiers as an object array of ``str`` (vectorised for numeric and text)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iuU":
        return arr.astype(str).astype(object)
    return np.array([str(v) for v in arr.ravel()], dtype=object)


@dataclass(frozen=True, eq=False)
class AlertBatch:
    """A batch of alerts, one array per column (all of the same length).

    Attributes
    ----------
    alert_id, object_id, survey : ndarray of object (str)
    ra, dec : ndarray of float64
        Degrees.
    ipix : ndarray of IPIX_DTYPE (int64)
        Order-29 nested HEALPix index of the position.
    time_ns, first_ns : ndarray of int64
        Observation time and object's first detection, ns since the epoch.
    quality : ndarray of bool
    """

    alert_id: ObjArray
    object_id: ObjArray
    survey: ObjArray
    ra: FloatArray
    dec: FloatArray
    ipix: IntArray
    time_ns: IntArray
    first_ns: IntArray
    quality: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.alert_id)

    @classmethod
    def from_arrays(
        cls,
        *,
        alert_id: Sequence[object] | npt.NDArray[np.generic],
        object_id: Sequence[object] | npt.NDArray[np.generic],
        survey: Sequence[object] | npt.NDArray[np.generic] | str,
        ra: npt.ArrayLike,
        dec: npt.ArrayLike,
        time_ns: npt.ArrayLike,
        first_ns: npt.ArrayLike,
        quality: npt.ArrayLike | None = None,
    ) -> AlertBatch:
        """Build a batch from arrays (times already in ns since the epoch).

        Raises
        ------
        ValueError
            On columns of different lengths or positions that are not finite or
            outside ``dec ∈ [−90, 90]``.
        """
        ids = _text(alert_id)
        n = len(ids)
        ra_arr = np.asarray(ra, dtype=np.float64).reshape(-1)
        dec_arr = np.asarray(dec, dtype=np.float64).reshape(-1)
        bad = ~(np.isfinite(ra_arr) & np.isfinite(dec_arr)) | (np.abs(dec_arr) > 90.0)
        if np.any(bad):
            raise ValueError(f"{int(np.count_nonzero(bad))} alerts have an invalid position")
        surveys = np.full(n, survey, dtype=object) if isinstance(survey, str) else _text(survey)
        flags = np.ones(n, dtype=bool) if quality is None else np.asarray(quality, dtype=bool)
        batch = cls(
            alert_id=ids,
            object_id=_text(object_id),
            survey=surveys,
            ra=ra_arr,
            dec=dec_arr,
            ipix=ipix29(ra_arr, dec_arr) if n else np.zeros(0, dtype=IPIX_DTYPE),
            time_ns=np.asarray(time_ns, dtype=np.int64).reshape(-1),
            first_ns=np.asarray(first_ns, dtype=np.int64).reshape(-1),
            quality=flags.reshape(-1),
        )
        lengths = {len(getattr(batch, name)) for name in batch.__dataclass_fields__}
        if len(lengths) != 1:
            raise ValueError(f"alert columns differ in length: {sorted(lengths)}")
        return batch

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> AlertBatch:
        """Build a batch from a DataFrame with the columns of :data:`ALERT_COLUMNS`.

        Raises
        ------
        ValueError
            On a missing column, naive or missing times, or invalid positions.
        """
        required = [c for c in ALERT_COLUMNS if c != "quality"]
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise ValueError(f"alerts lack columns {missing}")
        return cls.from_arrays(
            alert_id=frame["alert_id"].to_numpy(),
            object_id=frame["object_id"].to_numpy(),
            survey=frame["survey"].to_numpy(),
            ra=frame["ra"].to_numpy(dtype=np.float64),
            dec=frame["dec"].to_numpy(dtype=np.float64),
            time_ns=column_to_ns(frame["alert_time"]),
            first_ns=column_to_ns(frame["first_detection_time"]),
            quality=frame["quality"].to_numpy(dtype=bool) if "quality" in frame else None,
        )

    @classmethod
    def empty(cls) -> AlertBatch:
        """A batch without alerts."""
        return cls.from_arrays(
            alert_id=[], object_id=[], survey=[], ra=[], dec=[], time_ns=[], first_ns=[]
        )

    def take(self, index: npt.ArrayLike) -> AlertBatch:
        """The alerts at ``index`` (integer positions or a boolean mask)."""
        idx = np.asarray(index)
        return AlertBatch(
            alert_id=self.alert_id[idx],
            object_id=self.object_id[idx],
            survey=self.survey[idx],
            ra=self.ra[idx],
            dec=self.dec[idx],
            ipix=self.ipix[idx],
            time_ns=self.time_ns[idx],
            first_ns=self.first_ns[idx],
            quality=self.quality[idx],
        )

    @classmethod
    def concat(cls, batches: Sequence[AlertBatch]) -> AlertBatch:
        """All alerts of ``batches``, in order."""
        if not batches:
            return cls.empty()
        return cls(
            alert_id=np.concatenate([b.alert_id for b in batches]),
            object_id=np.concatenate([b.object_id for b in batches]),
            survey=np.concatenate([b.survey for b in batches]),
            ra=np.concatenate([b.ra for b in batches]),
            dec=np.concatenate([b.dec for b in batches]),
            ipix=np.concatenate([b.ipix for b in batches]),
            time_ns=np.concatenate([b.time_ns for b in batches]),
            first_ns=np.concatenate([b.first_ns for b in batches]),
            quality=np.concatenate([b.quality for b in batches]),
        )


class AlertStore(Protocol):
    """Alerts already seen, for late-notice retro-matching."""

    def add(self, batch: AlertBatch) -> AlertBatch:
        """Remember the alerts not seen before (by ``alert_id``) and return them.

        Within the batch, the first occurrence of an ``alert_id`` wins.
        """

    def query(
        self, start_ns: int, end_ns: int, ranges: npt.NDArray[np.uint64] | IntArray
    ) -> AlertBatch:
        """Alerts with ``start_ns <= time_ns <= end_ns`` and ``ipix`` in a range.

        ``ranges`` are sorted, disjoint ``[lo, hi)`` order-29 ranges. The answer is
        in the order the alerts were added.
        """


class InMemoryAlertStore:
    """An :class:`AlertStore` in memory: every alert added, sorted by pixel on demand.

    Examples
    --------
    >>> store = InMemoryAlertStore()
    >>> batch = AlertBatch.from_arrays(alert_id=[1, 2, 1], object_id=["a", "b", "a"],
    ...     survey="ZTF", ra=[10.0, 20.0, 10.0], dec=[0.0, 0.0, 0.0],
    ...     time_ns=[5, 6, 5], first_ns=[5, 6, 5])
    >>> len(store.add(batch)), len(store.add(batch)), len(store)
    (2, 0, 2)
    """

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._batches: list[AlertBatch] = []
        self._sorted: AlertBatch | None = None
        self._sorted_seq: IntArray = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, batch: AlertBatch) -> AlertBatch:
        """See :meth:`AlertStore.add`."""
        if len(batch) == 0:
            return batch
        _, first_pos = np.unique(batch.alert_id.astype(str), return_index=True)
        first_pos.sort()
        fresh = np.array(
            [i for i in first_pos.tolist() if batch.alert_id[i] not in self._seen], dtype=np.int64
        )
        new = batch.take(fresh)
        if len(new):
            self._seen.update(new.alert_id.tolist())
            self._batches.append(new)
            self._sorted = None
        return new

    def forget_before(self, cutoff_ns: int) -> int:
        """Drop the alerts whose time is before ``cutoff_ns``; return how many.

        For stores backed by an archive that holds them too
        (:class:`coincidence.archive_store.ArchiveAlertStore`): memory stays bounded
        on an endless stream. A forgotten alert added again counts as new.
        """
        if not self._batches:
            return 0
        everything = AlertBatch.concat(self._batches)
        old = everything.time_ns < cutoff_ns
        if not old.any():
            return 0
        self._seen.difference_update(everything.alert_id[old].tolist())
        keep = np.flatnonzero(~old)
        self._batches = [everything.take(keep)] if len(keep) else []
        self._sorted = None
        return int(old.sum())

    def _consolidated(self) -> tuple[AlertBatch, IntArray]:
        if self._sorted is None:
            everything = AlertBatch.concat(self._batches)
            self._batches = [everything] if len(everything) else []
            order = np.argsort(everything.ipix, kind="stable")
            self._sorted = everything.take(order)
            self._sorted_seq = order.astype(np.int64)
        return self._sorted, self._sorted_seq

    def query(
        self, start_ns: int, end_ns: int, ranges: npt.NDArray[np.uint64] | IntArray
    ) -> AlertBatch:
        """See :meth:`AlertStore.query`."""
        alerts, seq = self._consolidated()
        bounds = np.asarray(ranges).reshape(-1, 2).astype(IPIX_DTYPE)  # as alerts.ipix
        if len(alerts) == 0 or len(bounds) == 0:
            return AlertBatch.empty()
        first = np.searchsorted(alerts.ipix, bounds[:, 0], side="left")
        last = np.searchsorted(alerts.ipix, bounds[:, 1], side="left")
        counts = last - first
        rows = expand_counts(first, counts)
        times = alerts.time_ns[rows]
        rows = rows[(times >= start_ns) & (times <= end_ns)]
        rows = rows[np.argsort(seq[rows], kind="stable")]
        return alerts.take(rows)
