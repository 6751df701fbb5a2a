"""Light-curve features from the alert history (detections and upper limits).

Rate (after Fink's fast-transient module)
-----------------------------------------
Fink's ``fast_transient_rate`` (fink-science ``ztf/fast_transient_rate/processor.py``
@ da372c0, columns ``mag_rate``, ``sigma_rate``, ``delta_time``, ``from_upper``,
``jd_first_real_det``) compares the current magnitude with the *previous measurement
in the same band*: a detection, or else the upper limit of that epoch
(``from_upper = True``), divided by the time between them (mag/day; negative =
brightening). Fink estimates it by sampling 10,000 fluxes from each measurement's
Gaussian (a uniform flux below an upper limit) and takes the mean and standard
deviation; we compute the same quantity in closed form:

- ``ft_mag_rate = (mag - mag_prev) / dt``, with ``mag_prev`` the previous positive
  detection or upper limit (limiting magnitude) in the alert's band;
- ``ft_mag_rate_err = sqrt(err^2 + err_prev^2) / dt`` (null when from an upper limit:
  the rate is then a bound, the source brightened at least that fast);
- ``ft_rate_dt_days = dt``; ``ft_mag_rate_from_upper``.

Unlike Fink, negative-difference detections (ZTF ``isdiffpos = f``, LSST negative
flux) are not used: their magnitude is that of a flux *decrease*, not of the source.
Fink's alerts with such points therefore differ (see the tests).

Per band: ``ft_rate_<band>`` is the slope between the last two positive detections
in that band (u g r i z y), null with fewer than two.

Also: ``ft_days_since_last_nondetection = obs_jd - last_nondetection_jd`` and the
colour ``ft_color_gr`` = g - r from the most recent pair of positive g and r
detections taken at most :data:`COLOR_MAX_DT_DAYS` (0.5 d) apart, with that pair's
``ft_color_gr_dt_days`` (t_g - t_r) and ``ft_color_gr_jd`` (the later of the two).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from fink_core.model import BANDS

#: Maximum time between a g and an r detection to form a colour [days].
COLOR_MAX_DT_DAYS = 0.5

#: Columns added by :func:`features`, in order.
FEATURE_COLUMNS: tuple[str, ...] = (
    "ft_mag_rate",
    "ft_mag_rate_err",
    "ft_rate_dt_days",
    "ft_mag_rate_from_upper",
    *(f"ft_rate_{b}" for b in BANDS),
    "ft_days_since_last_nondetection",
    "ft_color_gr",
    "ft_color_gr_dt_days",
    "ft_color_gr_jd",
)

_NAN = math.nan


def light_curve_features(
    jd: Sequence[float],
    mag: Sequence[float],
    magerr: Sequence[float],
    band: Sequence[str],
    is_upper_limit: Sequence[bool],
    is_negative: Sequence[bool],
    obs_jd: float,
    obs_band: str | None,
) -> dict[str, Any]:
    """Features of one light curve.

    Parameters
    ----------
    jd, mag, magerr, band, is_upper_limit, is_negative : sequences
        The ``hist_*`` lists of one alert (time-ordered, current detection included).
    obs_jd : float
        Time of the current detection (UTC JD).
    obs_band : str or None
        Band of the current detection.

    Returns
    -------
    dict
        :data:`FEATURE_COLUMNS` except ``ft_days_since_last_nondetection``.

    Examples
    --------
    An r-band source at 19.0 mag, 2 days after an r detection at 20.0 mag:

    >>> out = light_curve_features(
    ...     [10.0, 12.0], [20.0, 19.0], [0.1, 0.1], ["r", "r"], [False, False],
    ...     [False, False], 12.0, "r")
    >>> out["ft_mag_rate"], round(out["ft_mag_rate_err"], 4), out["ft_mag_rate_from_upper"]
    (-0.5, 0.0707, False)
    """
    n = len(jd)
    jd_l = [float(x) for x in jd]
    mag_l = [float(x) if x is not None else _NAN for x in mag]
    err_l = [float(x) if x is not None else _NAN for x in magerr]
    band_l = [str(x) for x in band]
    ul_l = [bool(x) for x in is_upper_limit]
    neg_l = [bool(x) for x in is_negative]

    def usable(i: int) -> bool:
        """Positive detection with a magnitude, or an upper limit with a depth."""
        return (ul_l[i] or not neg_l[i]) and not math.isnan(mag_l[i])

    out: dict[str, Any] = {
        "ft_mag_rate": _NAN,
        "ft_mag_rate_err": _NAN,
        "ft_rate_dt_days": _NAN,
        "ft_mag_rate_from_upper": None,
    }
    current = next(
        (
            i
            for i in range(n - 1, -1, -1)
            if jd_l[i] == obs_jd and not ul_l[i] and band_l[i] == str(obs_band)
        ),
        None,
    )
    if current is not None and usable(current):
        prev = next(
            (
                i
                for i in range(current - 1, -1, -1)
                if band_l[i] == band_l[current] and jd_l[i] < obs_jd and usable(i)
            ),
            None,
        )
        if prev is not None:
            dt = obs_jd - jd_l[prev]
            out["ft_mag_rate"] = (mag_l[current] - mag_l[prev]) / dt
            out["ft_rate_dt_days"] = dt
            out["ft_mag_rate_from_upper"] = ul_l[prev]
            if not ul_l[prev]:
                out["ft_mag_rate_err"] = math.hypot(err_l[current], err_l[prev]) / dt

    positive = [i for i in range(n) if not ul_l[i] and not neg_l[i] and not math.isnan(mag_l[i])]
    for b in BANDS:
        idx = [i for i in positive if band_l[i] == b]
        rate = _NAN
        if len(idx) >= 2:
            i1, i2 = idx[-2], idx[-1]
            if jd_l[i2] > jd_l[i1]:
                rate = (mag_l[i2] - mag_l[i1]) / (jd_l[i2] - jd_l[i1])
        out[f"ft_rate_{b}"] = rate

    best: tuple[float, float, float, float] | None = None  # (later jd, -|dt|, colour, dt)
    g_idx = [i for i in positive if band_l[i] == "g"]
    r_idx = [i for i in positive if band_l[i] == "r"]
    for ig in g_idx:
        for ir in r_idx:
            dt = jd_l[ig] - jd_l[ir]
            if abs(dt) <= COLOR_MAX_DT_DAYS:
                cand = (max(jd_l[ig], jd_l[ir]), -abs(dt), mag_l[ig] - mag_l[ir], dt)
                if best is None or cand[:2] > best[:2]:
                    best = cand
    out["ft_color_gr"] = best[2] if best else _NAN
    out["ft_color_gr_dt_days"] = best[3] if best else _NAN
    out["ft_color_gr_jd"] = best[0] if best else _NAN
    return out


def features(df: pd.DataFrame) -> pd.DataFrame:
    """Compute the light-curve features of a batch of alerts.

    Parameters
    ----------
    df : pandas.DataFrame
        Alerts in the model of :mod:`fink_core.model`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`FEATURE_COLUMNS` (floats; ``ft_mag_rate_from_upper`` is a
        nullable boolean, null when there is no rate), index of ``df``.
    """
    rows = [
        light_curve_features(*args)
        for args in zip(
            df["hist_jd"],
            df["hist_mag"],
            df["hist_magerr"],
            df["hist_band"],
            df["hist_is_upper_limit"],
            df["hist_is_negative"],
            df["obs_jd"].to_numpy(dtype="float64"),
            df["band"],
            strict=True,
        )
    ]
    data: dict[str, Any] = {}
    for name in FEATURE_COLUMNS:
        if name == "ft_days_since_last_nondetection":
            data[name] = df["obs_jd"].to_numpy(dtype="float64") - df[
                "last_nondetection_jd"
            ].to_numpy(dtype="float64")
        elif name == "ft_mag_rate_from_upper":
            data[name] = pd.array([r[name] for r in rows], dtype="boolean")
        else:
            data[name] = np.array([r[name] for r in rows], dtype=np.float64)
    out = pd.DataFrame(data, columns=list(FEATURE_COLUMNS))
    out.index = df.index
    return out
