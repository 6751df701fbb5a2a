"""What the two survey flatteners share: numbers, the history summary, the
``survey_fields`` JSON and the model DataFrame built from row dicts.

:mod:`fink_core.ztf` and :mod:`fink_core.lsst` turn one decoded record into one row
dict of the alert model (:mod:`fink_core.model`); :func:`model_frame` builds the
DataFrame of those rows, with the model's columns and dtypes, and
:func:`concat_frames` joins such frames.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fink_core import model
from fink_core.times import jd_to_unix_us

#: Key under which :func:`fink_core.decode.decode_avro` records what it recognised
#: (``{"survey", "schema_version"}``) on each decoded record.
META_KEY = "_mm_meta"

#: Keys of a decoded record that never go into ``survey_fields``.
CUTOUT_KEYS = frozenset({"cutoutScience", "cutoutTemplate", "cutoutDifference"})
HISTORY_AND_CUTOUT_KEYS = CUTOUT_KEYS | {
    "prv_candidates",
    "fp_hists",
    "prvDiaSources",
    "prvDiaForcedSources",
    "prvDiaNondetectionLimits",
}

#: One point of a light curve: (jd, mag, mag_err, band, is_upper_limit, is_negative).
HistPoint = tuple[float, float, float, str, bool, bool]


def num(value: Any) -> float:
    """Float or NaN (for None).

    Examples
    --------
    >>> num(None), num("1.5")
    (nan, 1.5)
    """
    if value is None:
        return math.nan
    return float(value)


def bad_coordinates(ra: float, dec: float) -> bool:
    """True unless ``0 <= ra <= 360`` and ``-90 <= dec <= 90`` (NaN is bad)."""
    return not (0.0 <= ra <= 360.0 and -90.0 <= dec <= 90.0)


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite(value: Any) -> Any:
    """Copy of a JSON-ready structure with NaN/inf floats replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def survey_fields_json(record: Mapping[str, Any]) -> str:
    """Serialise a record, minus history and cutouts, as strict JSON.

    Parameters
    ----------
    record : mapping
        Decoded alert record.

    Returns
    -------
    str
        JSON object text (NaN/inf -> null, bytes -> base64, datetimes -> ISO 8601).
    """
    kept = {k: v for k, v in record.items() if k not in HISTORY_AND_CUTOUT_KEYS and k != META_KEY}
    try:
        return json.dumps(kept, default=_json_default, allow_nan=False, separators=(",", ":"))
    except ValueError:
        # NaN or inf somewhere (Fink Parquet floats): rebuild with nulls.
        cleaned = _finite(json.loads(json.dumps(kept, default=_json_default)))
        return json.dumps(cleaned, allow_nan=False, separators=(",", ":"))


def summarise(points: list[HistPoint], obs_jd: float) -> dict[str, Any]:
    """History columns of the model from the light-curve points of one alert.

    Parameters
    ----------
    points : list of HistPoint
        Every point, the alert's own detection included (sorted here, in place).
    obs_jd : float
        JD of the alert.

    Returns
    -------
    dict
        ``first_detection_jd``, ``n_detections``, ``last_nondetection_jd`` (NaN when
        no upper limit precedes the alert) and the ``hist_*`` arrays.
    """
    points.sort(key=lambda p: p[0])
    det_jd = [p[0] for p in points if not p[4]]
    ul_before = [p[0] for p in points if p[4] and p[0] < obs_jd]
    return {
        "first_detection_jd": min(det_jd),
        "n_detections": len(det_jd),
        "last_nondetection_jd": max(ul_before) if ul_before else math.nan,
        "hist_jd": np.array([p[0] for p in points], dtype=np.float64),
        "hist_mag": np.array([p[1] for p in points], dtype=np.float64),
        "hist_magerr": np.array([p[2] for p in points], dtype=np.float64),
        "hist_band": np.array([p[3] for p in points], dtype=object),
        "hist_is_upper_limit": np.array([p[4] for p in points], dtype=bool),
        "hist_is_negative": np.array([p[5] for p in points], dtype=bool),
    }


def model_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Build the model DataFrame (all columns, model dtypes) from row dicts.

    Parameters
    ----------
    rows : list of dict
        One dict per alert, keyed by model column (missing keys are nulls);
        ``obs_time`` is computed from ``obs_jd``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`fink_core.model.COLUMN_NAMES`, in order.
    """
    data: dict[str, Any] = {}
    for col in model.COLUMNS:
        values = [row.get(col.name) for row in rows]
        dtype = model.pandas_dtype(col)
        if col.name == "obs_time":
            continue
        if dtype == "float64":
            data[col.name] = np.array(
                [math.nan if v is None else v for v in values], dtype=np.float64
            )
        elif dtype == "Int32":
            data[col.name] = pd.array(values, dtype="Int32")
        elif dtype == "int32":
            data[col.name] = np.array(values, dtype=np.int32)
        elif dtype == "bool":
            data[col.name] = np.array(values, dtype=bool)
        else:
            series = np.empty(len(values), dtype=object)
            series[:] = values
            data[col.name] = series
    data["obs_time"] = pd.to_datetime(jd_to_unix_us(data["obs_jd"]), unit="us", utc=True)
    return pd.DataFrame(data, columns=list(model.COLUMN_NAMES))


def concat_frames(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate model DataFrames (an empty model frame when there are none)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return model_frame([])
    return pd.concat(frames, ignore_index=True)


__all__ = ["CUTOUT_KEYS", "HISTORY_AND_CUTOUT_KEYS", "META_KEY", "HistPoint", "bad_coordinates",
           "concat_frames", "model_frame", "num", "summarise", "survey_fields_json"]
