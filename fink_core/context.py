"""Context of an alert: solar-system proximity, stellar counterpart, newness.

Solar system (``ctx_is_sso_candidate``)
---------------------------------------
ZTF: Fink's ``roid = 3`` rule ("flagged by ZTF as a known solar-system object",
fink-science ``asteroids/processor.py`` ``roid_catcher`` @ 003fd9e), all conditions:

- ``0 <= ssdistnr < 5`` arcsec: a known MPC object within 5" (ZTF looks up to 30");
- the PS1 source is farther than the MPC object (``|distpsnr1| - ssdistnr > 0``;
  no PS1 source counts as farther);
- ``ndethist <= 5`` and at most 5 detections in the alert history (an object seen
  many times at this position is not a moving object).

LSST: the source was associated with a solar-system object by Rubin
(``diaSource.ssObjectId`` set, ``lsst_ss_object_id`` not null).
``ctx_sso_distance_arcsec`` is ZTF ``ssdistnr`` (null for LSST: Rubin gives the
association, not a distance) and ``ctx_sso_name`` the name of the nearest known
object (ZTF ``ssnamenr``, any distance up to ZTF's 30" search) or Rubin's
``ssObjectId``: read them with ``ctx_is_sso_candidate``.

Stellar counterpart (``ctx_is_star``) and host (``ctx_near_galaxy``), ZTF only
-----------------------------------------------------------------------------
- star: the closest PS1 source is within :data:`STAR_MATCH_ARCSEC` (1") with a
  star/galaxy score ``sgscore1 >= 0.76`` (the value Fink uses to call a PS1 source a
  star, after Tachibana & Miller 2018), or a Gaia source within 1" (``neargaia``).
- near a galaxy: the closest PS1 source is within :data:`GALAXY_MATCH_ARCSEC` (5")
  and has ``sgscore1 < 0.5`` (more likely extended than point-like).

Both are null for LSST rows (the alert carries no host information).

Newness
-------
- ``ctx_first_seen_jd``: earliest of the alert-history first detection and, when the
  survey gives one, its own longer memory: ZTF ``jdstarthist`` (first 3-sigma
  detection at this position since the survey began, beyond the 30-day history),
  LSST ``diaObject.firstDiaSourceMjdTai``.
- ``ctx_days_since_first_seen`` = ``obs_jd - ctx_first_seen_jd``;
  ``ctx_days_since_first_detection`` uses the history only.
- ``ctx_is_new``: first seen less than :data:`NEW_MAX_DAYS` (3 days) ago.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Fink roid=3: max distance to the known solar-system object [arcsec].
SSO_MAX_DIST_ARCSEC = 5.0
#: Fink roid=3: max number of detections (ZTF ndethist and alert history).
SSO_MAX_DETECTIONS = 5
#: PS1 star/galaxy score above which the PS1 source is a star (Fink, roid_catcher).
PS1_STAR_SCORE = 0.76
#: PS1 score below which the source is taken as extended.
PS1_GALAXY_SCORE = 0.5
#: Distance within which a PS1 or Gaia star is the alert's counterpart [arcsec].
STAR_MATCH_ARCSEC = 1.0
#: Distance within which an extended PS1 source is a candidate host [arcsec].
GALAXY_MATCH_ARCSEC = 5.0
#: Objects first seen less than this many days ago are new.
NEW_MAX_DAYS = 3.0

#: Columns added by :func:`context`, in order.
CONTEXT_COLUMNS = (
    "ctx_is_sso_candidate",
    "ctx_sso_distance_arcsec",
    "ctx_sso_name",
    "ctx_is_star",
    "ctx_near_galaxy",
    "ctx_first_seen_jd",
    "ctx_days_since_first_seen",
    "ctx_days_since_first_detection",
    "ctx_is_new",
)


def _f(df: pd.DataFrame, name: str) -> np.ndarray:
    return df[name].to_numpy(dtype="float64", na_value=np.nan)


def sso_candidate(df: pd.DataFrame) -> np.ndarray:
    """Whether each alert is a known solar-system object (see module doc).

    Parameters
    ----------
    df : pandas.DataFrame
        Alerts in the model.

    Returns
    -------
    numpy.ndarray of bool
    """
    ss = _f(df, "ztf_ssdistnr")
    ps = _f(df, "ztf_distpsnr1")
    ndethist = _f(df, "ztf_ndethist")
    ndet = df["n_detections"].to_numpy(dtype="float64")
    ps_farther = np.where(np.isnan(ps), True, (np.abs(ps) - ss) > 0.0)
    ztf = (
        (ss >= 0.0)
        & (ss < SSO_MAX_DIST_ARCSEC)
        & ps_farther
        & (ndethist <= SSO_MAX_DETECTIONS)
        & (ndet <= SSO_MAX_DETECTIONS)
    )
    lsst = df["lsst_ss_object_id"].notna().to_numpy()
    is_ztf = (df["survey"] == "ztf").to_numpy()
    return np.where(is_ztf, ztf, lsst)


def context(df: pd.DataFrame) -> pd.DataFrame:
    """Compute the context columns of a batch of alerts.

    Parameters
    ----------
    df : pandas.DataFrame
        Alerts in the model of :mod:`fink_core.model`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CONTEXT_COLUMNS`, index of ``df``.
    """
    is_ztf = (df["survey"] == "ztf").to_numpy()
    sg = _f(df, "ztf_sgscore1")
    dps = _f(df, "ztf_distpsnr1")
    gaia = _f(df, "ztf_neargaia")
    star = ((dps >= 0) & (dps <= STAR_MATCH_ARCSEC) & (sg >= PS1_STAR_SCORE)) | (
        (gaia >= 0) & (gaia <= STAR_MATCH_ARCSEC)
    )
    galaxy = (dps >= 0) & (dps <= GALAXY_MATCH_ARCSEC) & (sg < PS1_GALAXY_SCORE)
    is_star = pd.array(star, dtype="boolean")
    is_star[~is_ztf] = pd.NA
    near_galaxy = pd.array(galaxy, dtype="boolean")
    near_galaxy[~is_ztf] = pd.NA

    obs = df["obs_jd"].to_numpy(dtype="float64")
    first_det = df["first_detection_jd"].to_numpy(dtype="float64")
    survey_first = np.where(is_ztf, _f(df, "ztf_jdstarthist"), _f(df, "lsst_first_dia_source_jd"))
    first_seen = np.fmin(first_det, survey_first)
    since = obs - first_seen

    sso_name = np.where(
        is_ztf,
        df["ztf_ssnamenr"].to_numpy(dtype=object),
        df["lsst_ss_object_id"].to_numpy(dtype=object),
    )
    out = pd.DataFrame(
        {
            "ctx_is_sso_candidate": sso_candidate(df),
            "ctx_sso_distance_arcsec": _f(df, "ztf_ssdistnr"),
            "ctx_sso_name": sso_name,
            "ctx_is_star": is_star,
            "ctx_near_galaxy": near_galaxy,
            "ctx_first_seen_jd": first_seen,
            "ctx_days_since_first_seen": since,
            "ctx_days_since_first_detection": obs - first_det,
            "ctx_is_new": since < NEW_MAX_DAYS,
        }
    )
    out.index = df.index
    return out


#: Columns giving an object's first detection, most authoritative first.
FIRST_DETECTION_COLUMNS = ("ztf_jdstarthist", "lsst_first_dia_source_jd",
                           "first_detection_jd", "obs_jd")


def survey_first_detection_jd(df: pd.DataFrame) -> np.ndarray:
    """First detection (JD) used by the coincidence newness rule.

    The survey's own statement over the object's whole history is preferred (ZTF
    ``jdstarthist``; LSST ``firstDiaSourceMjdTai``), as Fink's multi-messenger module
    does; without it, the earliest detection in the alert's history, else the alert
    itself. Unlike ``ctx_first_seen_jd`` (the earliest of all of them), the survey's
    statement is taken as it is, even when the alert history disagrees.
    """
    first = np.full(len(df), np.nan)
    for col in FIRST_DETECTION_COLUMNS:
        if col in df.columns:
            values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
            first = np.where(np.isnan(first), values, first)
    return first
