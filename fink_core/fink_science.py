"""Fink's own science modules (``fink-science`` 7.4.0) beside our annotation.

Thin wrappers over the pure functions of the published ``fink-science`` wheel, for
ZTF rows (null on LSST rows: the ``fink_science.ztf`` modules read ZTF fields). Their
outputs are new columns named ``fink_<Fink's name>`` (:data:`FINK_COLUMNS`, typed in
:data:`fink_core.model.FINK_SCIENCE_COLUMNS`), so an input that already holds Fink's
own columns (a Fink Parquet table: ``roid``, ``mag_rate``... in ``survey_fields``) is
never overwritten.

========================  ====================================================  =========
module (fink-science)     what we call                                          columns
========================  ====================================================  =========
``ztf.asteroids``         ``roid_catcher`` (the pandas function inside the UDF)  fink_roid
``ztf.nalerthist``        ``nalerthist`` (idem)                                  fink_nalerthist
``ztf.fast_transient_``   ``return_last_alerts`` (which point the rate uses) and  fink_mag_rate,
``rate``                  ``fast_transient_rate``'s sampling, one alert at a     fink_sigma_rate,
                          time (see below)                                       ...
========================  ====================================================  =========

Inputs are rebuilt from the alert model as Fink's ``concat_col`` builds them: the
history and the current detection in time order, magnitudes null (NaN) for upper
limits, ``fid`` 1/2/3 for g/r/i, and the ZTF ``-999`` "none" values restored where our
model holds nulls (``roid_catcher`` compares ``abs(distpsnr1) - ssdistnr > 0``, which
``-999`` passes and a null does not).

The rate: one alert's value is its own
--------------------------------------
``fast_transient_rate`` samples ``N`` fluxes per measurement from one generator for the
whole batch and shifts every sample by the minimum over the *whole batch*: the same
alert gets different values in different micro-batches (measured: median 0.018 mag/day
over 200 alerts alone versus inside 1,644). Calling it once per alert gives each
alert its own values, but costs about 180 ms per call (its ``stack_column`` loops over
the ``N`` samples in Python). :func:`fast_transient_rate_per_alert` therefore computes,
for each alert, exactly what ``fast_transient_rate(<that alert alone>, N, seed)``
returns — same generator, same draws in the same order, the shift by that alert's own
minimum — with Fink's own ``return_last_alerts`` and flux conversions, without the
per-call overhead; the seed of each alert is derived from its ``alert_id``
(:func:`alert_seed`), so values are reproducible run after run. The tests check the
equality with Fink's function called on each alert alone.

The point the rate uses is 7.4.0's rule (the *last* point of the history in the
alert's band, the search stopping at an i-band point; ``jd_first_real_det`` the first
detection, not the first epoch), not 5.6.2's (the *first* same-band point of the
30-day history; the first epoch): 5.6.2 computed the Fink outputs stored in our
2024-01-15 Parquet night, so those agree where both rules pick the same point.

Not wrapped (see CHANGELOG.md): anomaly detection (its feature extractor needs
``light-curve``, GPL-3.0-or-later, and 7.4.0's ``anomaly_score`` calls
``pandas.read_csv(squeeze=...)``, removed in pandas 2); the SN Ia random forest and
kilonova (feature extractors published only on GitHub), microlensing (GPL-3.0, GitHub
only), SuperNNova (torch), CATS (TensorFlow); the ``fink_science.rubin`` modules
(SuperNNova, CATS, a random forest: the same heavy dependencies). None of them is
imported, so scikit-learn's ``InconsistentVersionWarning`` (models pickled with old
scikit-learn) never arises here.
"""

from __future__ import annotations

import hashlib
import warnings
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from fink_core.model import FINK_SCIENCE_COLUMNS

# Import boundary. fink-science decorates its functions with pyspark's ``pandas_udf``
# at import time; ``nalerthist`` and ``asteroids`` pass ``PandasUDFType.SCALAR``, on
# which pyspark 4 emits a UserWarning ("... PandasUDFType will be deprecated"). The
# warning is about Fink's decorator, not about anything we call (we call the pandas
# functions inside the UDFs), and the suite turns warnings into errors: silence that
# one warning, for these imports only.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r".*pandas UDF type.*", category=UserWarning)
    import fink_science
    import fink_science.ztf.fast_transient_rate.utils as _ft_utils
    from fink_science.ztf.asteroids.processor import roid_catcher as _roid_udf
    from fink_science.ztf.fast_transient_rate import rate_module_output_schema
    from fink_science.ztf.fast_transient_rate.processor import return_last_alerts
    from fink_science.ztf.nalerthist.processor import nalerthist as _nalerthist_udf

#: Version of the fink-science wheel these wrappers call (provenance).
FINK_SCIENCE_VERSION: str = str(fink_science.__version__)
#: Version of the fink-utils wheel installed beside it.
FINK_UTILS_VERSION: str = metadata.version("fink-utils")
#: Samples per measurement of the rate's error estimate (Fink's value).
RATE_SAMPLES = 10_000
#: Columns added by :func:`fink_modules`, in order.
FINK_COLUMNS: tuple[str, ...] = tuple(c.name for c in FINK_SCIENCE_COLUMNS)
#: Fink's rate outputs, in Fink's order (``rate_module_output_schema``).
RATE_OUTPUTS: tuple[str, ...] = tuple(rate_module_output_schema)

_FID = {"g": 1, "r": 2, "i": 3}
#: ZTF's "none" value, which our model turns into nulls.
_ZTF_NONE = -999.0


def versions() -> dict[str, str]:
    """Versions of Fink's code and models applied here (for the provenance).

    The three modules wrapped carry no trained model: their version is the
    fink-science release.

    Returns
    -------
    dict
        ``fink_science``, ``fink_utils``, and ``fink_model_<module>`` per module.

    Examples
    --------
    >>> sorted(versions())  # doctest: +NORMALIZE_WHITESPACE
    ['fink_model_asteroids', 'fink_model_fast_transient_rate', 'fink_model_nalerthist',
     'fink_science', 'fink_utils']
    """
    none = f"fink-science {FINK_SCIENCE_VERSION} (no trained model)"
    return {"fink_science": FINK_SCIENCE_VERSION, "fink_utils": FINK_UTILS_VERSION,
            "fink_model_asteroids": none, "fink_model_nalerthist": none,
            "fink_model_fast_transient_rate": none}


def alert_seed(alert_id: str) -> int:
    """Seed of an alert's rate sampling, from its id (stable across runs and machines).

    Examples
    --------
    >>> alert_seed("2567343280015015004") == alert_seed("2567343280015015004")
    True
    """
    return int.from_bytes(hashlib.blake2b(str(alert_id).encode(), digest_size=8).digest(),
                          "little")


def fink_inputs(df: pd.DataFrame) -> pd.DataFrame:
    """Fink's inputs (the ``candidate.*`` fields and ``concat_col`` lists) of ZTF rows.

    Parameters
    ----------
    df : pandas.DataFrame
        ZTF alerts in the model of :mod:`fink_core.model`.

    Returns
    -------
    pandas.DataFrame
        ``magpsf, sigmapsf, jd, jdstarthist, fid, ndethist, sgscore1, ssdistnr,
        distpsnr1`` and the lists ``cmagpsf, csigmapsf, cdiffmaglim, cjd, cfid``
        (NaN magnitude for an upper limit, NaN limit for a detection), index of ``df``.
    """
    cmag, cerr, clim, cjd, cfid = [], [], [], [], []
    for jd, mag, err, band, ul in zip(df["hist_jd"], df["hist_mag"], df["hist_magerr"],
                                      df["hist_band"], df["hist_is_upper_limit"], strict=True):
        upper = np.asarray(ul, dtype=bool)
        m = np.asarray(mag, dtype=np.float64)
        cmag.append(np.where(upper, np.nan, m))
        cerr.append(np.where(upper, np.nan, np.asarray(err, dtype=np.float64)))
        clim.append(np.where(upper, m, np.nan))
        cjd.append(np.asarray(jd, dtype=np.float64))
        cfid.append(np.array([_FID.get(str(b), 0) for b in band], dtype=np.int64))

    def raw(name: str) -> np.ndarray:
        return df[name].to_numpy(dtype=np.float64, na_value=_ZTF_NONE)

    out = pd.DataFrame({
        "magpsf": df["mag"].to_numpy(dtype=np.float64, na_value=np.nan),
        "sigmapsf": df["mag_err"].to_numpy(dtype=np.float64, na_value=np.nan),
        "jd": df["obs_jd"].to_numpy(dtype=np.float64),
        "jdstarthist": raw("ztf_jdstarthist"),
        "fid": df["band"].map(lambda b: _FID.get(str(b), 0)).to_numpy(dtype=np.int64),
        "ndethist": raw("ztf_ndethist"),
        "sgscore1": raw("ztf_sgscore1"),
        "ssdistnr": raw("ztf_ssdistnr"),
        "distpsnr1": raw("ztf_distpsnr1"),
        "cmagpsf": cmag, "csigmapsf": cerr, "cdiffmaglim": clim, "cjd": cjd, "cfid": cfid,
    })
    out.index = df.index
    return out


def roid(inputs: pd.DataFrame) -> np.ndarray:
    """Fink's asteroid flag (0-3) of each alert: ``roid_catcher`` of fink-science."""
    if len(inputs) == 0:
        return np.zeros(0, dtype=np.int32)
    flags = _roid_udf.func(  # the pandas function Fink's UDF wraps
        inputs["cjd"].reset_index(drop=True), inputs["cmagpsf"].reset_index(drop=True),
        *(inputs[c].reset_index(drop=True) for c in ("ndethist", "sgscore1", "ssdistnr",
                                                      "distpsnr1")))
    return np.asarray(flags, dtype=np.int32)


def nalerthist(inputs: pd.DataFrame) -> np.ndarray:
    """Fink's number of detections in the alert (current + history, upper limits not
    counted): ``nalerthist`` of fink-science."""
    if len(inputs) == 0:
        return np.zeros(0, dtype=np.int32)
    counts = _nalerthist_udf.func(inputs["cmagpsf"].reset_index(drop=True))
    return np.asarray(counts, dtype=np.int32)


def fast_transient_rate_per_alert(inputs: pd.DataFrame, seeds: np.ndarray,
                                  n_samples: int = RATE_SAMPLES) -> pd.DataFrame:
    """Fink's magnitude rate of each alert, as if each alert were its own batch.

    Row ``i`` equals ``fast_transient_rate(inputs.iloc[[i]], n_samples, seeds[i])`` of
    fink-science (see the module docstring): the last measurement is Fink's
    ``return_last_alerts``; fluxes are sampled with ``numpy.random.default_rng(seed)``
    in Fink's order (current detection, previous detection, else uniform below the
    previous upper limit), each sample set shifted by its own minimum.

    Parameters
    ----------
    inputs : pandas.DataFrame
        :func:`fink_inputs` of ZTF alerts.
    seeds : numpy.ndarray
        One seed per row (:func:`alert_seed`).
    n_samples : int
        Samples per measurement (Fink's ``N``).

    Returns
    -------
    pandas.DataFrame
        :data:`RATE_OUTPUTS` (``from_upper`` as 0.0/1.0, as Fink returns it), index of
        ``inputs``. An alert whose fluxes or errors cannot be sampled (negative or
        infinite: a garbled packet, on which Fink's function raises for the whole
        batch) gets no rate (NaN), the other alerts theirs.
    """
    n = len(inputs)
    out = np.full((n, len(RATE_OUTPUTS)), np.nan)
    if n == 0:
        return pd.DataFrame(out, columns=list(RATE_OUTPUTS), index=inputs.index)
    last = np.array(return_last_alerts(inputs["fid"], inputs["cfid"], inputs["cmagpsf"],
                                       inputs["csigmapsf"], inputs["cdiffmaglim"],
                                       inputs["cjd"]), dtype=np.float64)
    dt = inputs["jd"].to_numpy(dtype=np.float64) - last[:, 3]
    out[:, 0] = last[:, 4]
    out[:, 1] = last[:, 4] - inputs["jdstarthist"].to_numpy(dtype=np.float64)
    out[:, 6] = dt
    finite_mag = np.isfinite(last[:, 0])
    finite_upper = np.isfinite(last[:, 2])
    out[:, 7] = (~finite_mag) & finite_upper
    magpsf = inputs["magpsf"].to_numpy(dtype=np.float64)
    sigmapsf = inputs["sigmapsf"].to_numpy(dtype=np.float64)
    eps = np.finfo(float).eps
    for i in np.flatnonzero(finite_mag | finite_upper):
        with np.errstate(over="ignore"):
            flux = _ft_utils.to_flux(magpsf[i])
            err = _ft_utils.to_fluxerr(sigmapsf[i], flux)
            last_flux = _ft_utils.to_flux(last[i, 0] if finite_mag[i] else last[i, 2])
            last_err = _ft_utils.to_fluxerr(last[i, 1], last_flux) if finite_mag[i] else 0.0
            params = (flux, err, last_flux, last_err)
        if not all(np.isfinite(v) and not np.signbit(v) for v in params):
            # Nothing Fink's sampler can draw from (a negative, -0.0 or infinite error
            # or flux: a garbled alert; numpy would raise): no rate for this alert.
            continue
        rng = np.random.default_rng(int(seeds[i]))
        current = rng.normal(flux, err, n_samples)
        current += np.abs(np.min(current))
        current[current == 0] = eps
        if finite_mag[i]:
            previous = rng.normal(last_flux, last_err, n_samples)
            previous += np.abs(np.min(previous))
            previous[previous == 0] = eps
        else:
            previous = rng.uniform(0, last_flux, n_samples)
        # As in Fink: a point at the alert's own time (dt = 0) gives an infinite rate,
        # a uniform draw of 0 an infinite ratio; numpy's warnings on them are expected.
        with np.errstate(divide="ignore", invalid="ignore"):
            sample = -2.5 * np.log10(current / previous) / dt[i]
            out[i, 2] = np.mean(sample)
            out[i, 3] = np.std(sample)
            out[i, 4], out[i, 5] = np.percentile(sample, [5.0, 95.0])
    return pd.DataFrame(out, columns=list(RATE_OUTPUTS), index=inputs.index)


def fink_nulls(df: pd.DataFrame) -> pd.DataFrame:
    """The :data:`FINK_COLUMNS`, all null (typed), index of ``df``: Fink's modules not
    run."""
    data: dict[str, Any] = {
        "fink_roid": pd.array([pd.NA] * len(df), dtype="Int32"),
        "fink_nalerthist": pd.array([pd.NA] * len(df), dtype="Int32"),
        **{f"fink_{k}": np.full(len(df), np.nan) for k in RATE_OUTPUTS if k != "from_upper"},
        "fink_from_upper": pd.array([pd.NA] * len(df), dtype="boolean"),
    }
    return pd.DataFrame(data, index=df.index)[list(FINK_COLUMNS)]


def fink_modules(df: pd.DataFrame, n_samples: int = RATE_SAMPLES) -> pd.DataFrame:
    """Fink's science modules on a batch of alerts: the :data:`FINK_COLUMNS`.

    Every value of a row depends on that row only (never on the batch).

    Parameters
    ----------
    df : pandas.DataFrame
        Alerts in the model of :mod:`fink_core.model` (ZTF and LSST).
    n_samples : int
        Samples per measurement of the rate (:data:`RATE_SAMPLES`).

    Returns
    -------
    pandas.DataFrame
        :data:`FINK_COLUMNS`, index of ``df``; nulls on LSST rows and, for the rate,
        where Fink gives none (no earlier point in the band).
    """
    out = fink_nulls(df)
    ztf = (df["survey"] == "ztf").to_numpy() & df["mag"].notna().to_numpy()
    if ztf.any():
        rows = df[ztf]
        inputs = fink_inputs(rows)
        where = out.index[ztf]
        out.loc[where, "fink_roid"] = roid(inputs)
        out.loc[where, "fink_nalerthist"] = nalerthist(inputs)
        seeds = np.array([alert_seed(a) for a in rows["alert_id"]], dtype=np.uint64)
        rate = fast_transient_rate_per_alert(inputs, seeds, n_samples)
        for k in RATE_OUTPUTS:
            if k == "from_upper":
                known = np.isfinite(rate["delta_time"].to_numpy())
                flag = pd.array(rate[k].to_numpy() > 0, dtype="boolean")
                flag[~known] = pd.NA
                out.loc[where, "fink_from_upper"] = flag
            else:
                out.loc[where, f"fink_{k}"] = rate[k].to_numpy()
    return out


__all__ = ["FINK_COLUMNS", "FINK_SCIENCE_VERSION", "FINK_UTILS_VERSION", "RATE_OUTPUTS",
           "RATE_SAMPLES", "alert_seed", "fast_transient_rate_per_alert", "fink_inputs",
           "fink_modules", "fink_nulls", "nalerthist", "roid", "versions"]
