"""Alerts as the coincidence engine takes them, for ``run`` and ``replay`` alike.

The enriched alerts of :mod:`fink_core` (decoded, flagged, annotated) become the
engine's input frame (one row per alert id, in alert-time order, first detection
known) and the per-alert values that travel with a counterpart record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from coincidence.rules import DAY_S, Window
from fink_core.annotate import annotate
from fink_core.catalogues import Catalogue, load_default_catalogues
from fink_core.context import survey_first_detection_jd
from fink_core.files import read_alert_files
from mm_broker.core.config import Settings
from mm_broker.core.models import Messenger

#: Columns of the enriched alerts the coincidence step needs.
ALERT_COLUMNS = ["alert_id", "object_id", "survey", "ra", "dec", "obs_jd", "bad_coordinates",
                 "first_detection_jd", "ztf_jdstarthist", "lsst_first_dia_source_jd",
                 "quality_ok", "mag", "mag_err", "band", "classification",
                 "classification_rule"]


def load_catalogues(catalogue_dir: Path | None) -> list[Catalogue]:
    """The default catalogues of ``catalogue_dir`` (none if it is not a folder)."""
    return load_default_catalogues(catalogue_dir) if catalogue_dir and catalogue_dir.is_dir() \
        else []


def load_alerts(paths: Iterable[str | Path], catalogue_dir: Path | None = None,
                catalogues: Sequence[Catalogue] | None = None,
                ) -> tuple[pd.DataFrame, dict[str, int], dict[str, dict[str, Any]]]:
    """Read alert files into the engine's frame, sorted by observation time.

    Alerts are annotated with ``catalogues`` when given, else with those of
    ``catalogue_dir`` (:func:`load_catalogues`). Returns the frame, counts, and per
    alert id the values a follow-up facility needs with a counterpart (photometry,
    classification, catalogue matches).
    """
    df = read_alert_files(list(paths))
    cats = list(catalogues) if catalogues is not None else load_catalogues(catalogue_dir)
    df = annotate(df, cats)
    frame, counts = engine_frame(df)
    extras = alert_extras(df, [c.key for c in cats])
    return frame, counts, extras


def engine_frame(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Annotated alerts (fink_core model) → the coincidence engine's input frame.

    Rows with bad coordinates are counted and left out (no position, no match); the
    rest is sorted by alert time, one row per alert id.
    """
    counts = {"alerts_read": int(len(df))}
    bad = df["bad_coordinates"].fillna(True).to_numpy(dtype=bool) \
        if "bad_coordinates" in df else np.zeros(len(df), dtype=bool)
    counts["alerts_bad_coordinates"] = int(bad.sum())
    df = df.loc[~bad]
    first = pd.Series(survey_first_detection_jd(df), index=df.index)
    # An alert is itself a detection, so its object's first detection cannot be later
    # than the alert. When the record says otherwise (the peer's doctored rows of
    # 2024-01-15 moved jdstarthist but not jd), the record's own detection time is
    # not trusted: the alert time used for the window is the first detection.
    late_first = (first > df["obs_jd"]).to_numpy()
    obs = df["obs_jd"].where(~late_first, first)
    counts["alerts_time_inconsistent"] = int(late_first.sum())
    frame = pd.DataFrame({
        "alert_id": df["alert_id"].astype(str).to_numpy(),
        "object_id": df["object_id"].astype(str).to_numpy(),
        "survey": df["survey"].astype(str).to_numpy(),
        "ra": df["ra"].to_numpy(dtype=float), "dec": df["dec"].to_numpy(dtype=float),
        "alert_time": _jd_to_datetime(obs.to_numpy(dtype=float)),
        "first_detection_time": _jd_to_datetime(first.to_numpy(dtype=float)),
        "quality": df["quality_ok"].fillna(False).to_numpy(dtype=bool),
    })
    frame = frame.drop_duplicates("alert_id").sort_values(["alert_time", "alert_id"],
                                                         kind="stable")
    counts["alerts_unique"] = int(len(frame))
    return frame.reset_index(drop=True), counts


def alert_extras(df: pd.DataFrame, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Per alert id: photometry, classification and catalogue matches (for records)."""
    out: dict[str, dict[str, Any]] = {}
    for row in df.itertuples(index=False):
        matches = {k: str(getattr(row, f"xm_{k}_name")) for k in keys
                   if isinstance(getattr(row, f"xm_{k}_name", None), str)}
        mag, err = float(row.mag), float(row.mag_err)
        out[str(row.alert_id)] = {
            "mag": mag if np.isfinite(mag) else None,
            "mag_err": err if np.isfinite(err) else None,
            "band": row.band if isinstance(row.band, str) else None,
            "classification": str(row.classification),
            "classification_rule": str(row.classification_rule),
            "catalogue_matches": matches or None,
        }
    return out


def _jd_to_datetime(jd: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime((jd - 2440587.5) * 86400.0, unit="s", utc=True))


def windows_from_settings(settings: Settings) -> dict[Messenger, Window]:
    """Per-messenger :class:`coincidence.rules.Window` from ``[coincidence]``."""
    c = settings.coincidence
    return {m: Window(before_s=c.window_before_s, after_s=c.after_days(m.value) * DAY_S,
                      newness_s=c.newness_before_s)
            for m in Messenger}
