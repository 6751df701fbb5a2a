"""Alert times: TAI and UTC, modified and plain Julian dates, Unix time.

ZTF gives its observation times as UTC Julian dates (``jd``); Rubin/LSST as TAI
modified Julian dates (``midpointMjdTai``). The alert model keeps UTC JD
(``obs_jd``) and a UTC timestamp (``obs_time``): :func:`tai_mjd_to_utc_jd` applies
the leap-second offset of the date (IERS Bulletin C, checked against ERFA) and
:func:`jd_to_unix_us` gives the microseconds since the Unix epoch.
"""

from __future__ import annotations

import bisect

import numpy as np

#: JD of MJD 0.
MJD_TO_JD = 2400000.5
#: JD of the Unix epoch (1970-01-01T00:00:00 UTC).
UNIX_EPOCH_JD = 2440587.5

# TAI - UTC (s) from each UTC date (MJD) on, IERS Bulletin C; checked against ERFA.
_LEAP_MJD = [
    41317, 41499, 41683, 42048, 42413, 42778, 43144, 43509, 43874, 44239, 44786,
    45151, 45516, 46247, 47161, 47892, 48257, 48804, 49169, 49534, 50083, 50630,
    51179, 53736, 54832, 56109, 57204, 57754,
]  # fmt: skip
_TAI_MINUS_UTC = [float(10 + i) for i in range(len(_LEAP_MJD))]


def tai_mjd_to_utc_jd(mjd_tai: float) -> float:
    """Convert a TAI modified Julian date to a UTC Julian date.

    Parameters
    ----------
    mjd_tai : float
        TAI MJD (LSST ``midpointMjdTai``).

    Returns
    -------
    float
        UTC JD (TAI minus the leap-second offset of that date).

    Examples
    --------
    >>> round((tai_mjd_to_utc_jd(60924.0) - 2460924.5) * 86400, 3)
    -37.0
    """
    idx = bisect.bisect_right(_LEAP_MJD, mjd_tai) - 1
    offset = _TAI_MINUS_UTC[idx] if idx >= 0 else _TAI_MINUS_UTC[0]
    return mjd_tai - offset / 86400.0 + MJD_TO_JD


def jd_to_unix_us(jd: np.ndarray) -> np.ndarray:
    """Microseconds since the Unix epoch (int64, rounded) of UTC Julian dates.

    Parameters
    ----------
    jd : numpy.ndarray
        UTC JD (float64).

    Returns
    -------
    numpy.ndarray
        int64 microseconds since 1970-01-01T00:00:00 UTC.

    Examples
    --------
    >>> jd_to_unix_us(np.array([2440587.5, 2440588.5])).tolist()
    [0, 86400000000]
    """
    return np.round((np.asarray(jd, dtype=np.float64) - UNIX_EPOCH_JD) * 86400e6).astype(np.int64)


__all__ = ["MJD_TO_JD", "UNIX_EPOCH_JD", "jd_to_unix_us", "tai_mjd_to_utc_jd"]
