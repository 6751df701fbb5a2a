"""Time representation of the coincidence maths: integer nanoseconds since the Unix epoch.

Every time inside :mod:`coincidence` is an ``int64`` count of nanoseconds since
1970-01-01T00:00:00 UTC ("ns"). Integers make the window edges exact: an alert
observed exactly at ``t0 - 600 s`` compares equal to the edge, whatever the number of
decimals a float would have kept. Durations handed to the statistics are converted
once, here, to days (:data:`NS_PER_DAY`).

Conversions happen at the edges only: :func:`to_ns` for a :class:`datetime.datetime`,
:func:`column_to_ns` for a pandas column, :func:`from_ns` and :func:`iso_utc` on the
way out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd

#: Nanoseconds in one second.
NS_PER_S = 1_000_000_000
#: Nanoseconds in one day (86,400 s). Rates are per day, so elapsed times are in days.
NS_PER_DAY = 86_400 * NS_PER_S

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ns(when: datetime) -> int:
    """Nanoseconds since the Unix epoch of a timezone-aware datetime.

    Parameters
    ----------
    when : datetime
        Timezone-aware time (any zone; converted to UTC).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``when`` is naive: a naive time has no defined instant.

    Examples
    --------
    >>> to_ns(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))
    1000000000
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when!r}: times must be timezone-aware (UTC)")
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1_000


def seconds_to_ns(seconds: float) -> int:
    """A duration in seconds as integer nanoseconds (rounded to the nearest ns)."""
    return round(seconds * NS_PER_S)


def from_ns(ns: int) -> datetime:
    """UTC datetime of a nanosecond timestamp (truncated to the microsecond).

    Examples
    --------
    >>> from_ns(86_400 * NS_PER_S).isoformat()
    '1970-01-02T00:00:00+00:00'
    """
    return _EPOCH + timedelta(microseconds=int(ns) // 1_000)


def iso_utc(when: datetime) -> str:
    """ISO 8601 text of a time in UTC with a ``Z`` suffix.

    Examples
    --------
    >>> iso_utc(datetime(2024, 1, 15, 3, 4, 5, 250000, tzinfo=UTC))
    '2024-01-15T03:04:05.250000Z'
    """
    text = when.astimezone(UTC).isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z")


def column_to_ns(column: pd.Series) -> npt.NDArray[np.int64]:
    """Nanoseconds since the epoch of a timezone-aware pandas datetime column.

    Parameters
    ----------
    column : pandas.Series
        ``datetime64[…, tz]`` values (any resolution, any zone).

    Returns
    -------
    ndarray of int64

    Raises
    ------
    ValueError
        If the column is not a timezone-aware datetime column or has missing values.
    """
    if not isinstance(column.dtype, pd.DatetimeTZDtype):
        raise ValueError(
            f"column {column.name!r} has dtype {column.dtype}: expected timezone-aware "
            "datetime64 (UTC)"
        )
    if column.isna().any():
        raise ValueError(f"column {column.name!r} has missing times")
    values = column.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
    return values.to_numpy().view(np.int64).copy()
