"""Quality flags: each cut is its own boolean column; no alert is ever dropped.

ZTF (Fink's cuts)
-----------------
Fink's ZTF science pipeline keeps an alert when ``nbad == 0``, ``rb >= 0.55`` and
``fid != 3`` (astrolabsoftware/fink-broker ``bin/ztf/raw2science.py`` @ 09060cc:
``df.filter(df["candidate.nbad"] == 0).filter(df["candidate.rb"] >= 0.55)`` then
``df.filter(df["candidate.fid"] != 3)``; the same nbad/rb cut is fink-filters
``filter_quality_cuts/filter.py``, ``ztf_quality_cuts_``). Fink's first level-one
filter also required ``abs(magdiff) <= 0.1`` (fink-broker ``userfilters/levelone.py``
@ b12c43b, ``qualitycuts``), where ZTF's ``magdiff`` is ``magap - magpsf``
(aperture minus PSF-fit magnitude, not ``magpsf - magnr``); current Fink no longer
applies it, so here it is a flag of its own that does not enter ``quality_ok``.

===============  ==============================================  ==========
column           passes when                                      in quality_ok
===============  ==============================================  ==========
flag_nbad        ZTF nbad == 0                                    yes (ZTF)
flag_rb          ZTF rb >= 0.55                                   yes (ZTF)
flag_band        ZTF band is not i (fid != 3)                     yes (ZTF)
flag_magdiff     ZTF abs(magdiff) <= 0.1                          no
===============  ==============================================  ==========

LSST
----
===========================  ==========================================  ==========
column                       passes when                                 in quality_ok
===========================  ==========================================  ==========
flag_lsst_reliability        reliability >= 0.5 (ours: the probability   yes (LSST)
                             that the source is astrophysical, 0.5 is
                             "more likely real than not")
flag_lsst_pixel_flags        none of Fink's ``b_good_quality`` flags     yes (LSST)
                             is set (fink-filters ``rubin/blocks.py``
                             @ 145a9df: isDipole, shape_flag,
                             forced_PsfFlux_flag, psfFlux_flag,
                             centroid_flag, apFlux_flag,
                             pixelFlags_interpolated, pixelFlags_cr,
                             forced_PsfFlux_flag_edge, pixelFlags_bad)
===========================  ==========================================  ==========

A flag of the other survey is null (not applicable). A missing input (e.g. a null
``rb``) fails its flag, as Spark's ``filter`` would drop it in Fink.
``quality_ok`` is never null.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Version of these quality cuts (MAJOR.MINOR.PATCH), stamped on every enriched alert
#: (``prov_rules``) and counterpart record (``rule_versions``). It MUST be bumped, and
#: the change listed in CHANGELOG.md, whenever a cut, a threshold or the definition of
#: ``quality_ok`` changes (tests/fink_core/test_fc_provenance.py pins the rule content
#: of each version).
RULES_VERSION = "1.0.0"

#: Fink's ZTF real/bogus threshold.
ZTF_RB_MIN = 0.55
#: Fink's (2019) ZTF |magap - magpsf| bound.
ZTF_MAGDIFF_MAX = 0.1
#: Our LSST reliability threshold.
LSST_RELIABILITY_MIN = 0.5
#: diaSource flags that fail an LSST alert (Fink ``b_good_quality``).
LSST_BAD_FLAGS = frozenset(
    {
        "isDipole",
        "shape_flag",
        "forced_PsfFlux_flag",
        "psfFlux_flag",
        "centroid_flag",
        "apFlux_flag",
        "pixelFlags_interpolated",
        "pixelFlags_cr",
        "forced_PsfFlux_flag_edge",
        "pixelFlags_bad",
    }
)

#: Columns added by :func:`quality_flags`, in order.
QUALITY_COLUMNS = (
    "flag_nbad",
    "flag_rb",
    "flag_band",
    "flag_magdiff",
    "flag_lsst_reliability",
    "flag_lsst_pixel_flags",
    "quality_ok",
)


def _only(mask: np.ndarray, applies: np.ndarray) -> pd.Series:
    """Nullable boolean: ``mask`` where ``applies``, null elsewhere."""
    out = pd.array(mask, dtype="boolean")
    out[~applies] = pd.NA
    return pd.Series(out)


def quality_flags(df: pd.DataFrame) -> pd.DataFrame:
    """Compute the quality flags of a batch of alerts.

    Parameters
    ----------
    df : pandas.DataFrame
        Alerts in the model of :mod:`fink_core.model`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`QUALITY_COLUMNS` (nullable booleans; ``quality_ok`` never
        null), same index as ``df``.
    """
    is_ztf = (df["survey"] == "ztf").to_numpy()
    is_lsst = (df["survey"] == "lsst").to_numpy()
    nbad = df["ztf_nbad"].to_numpy(dtype="float64", na_value=np.nan)
    rb = df["ztf_rb"].to_numpy(dtype="float64")
    magdiff = df["ztf_magdiff"].to_numpy(dtype="float64")
    fid = df["ztf_fid"].to_numpy(dtype="float64", na_value=np.nan)
    f_nbad = nbad == 0
    f_rb = rb >= ZTF_RB_MIN
    f_band = np.isfinite(fid) & (fid != 3)
    f_magdiff = np.abs(magdiff) <= ZTF_MAGDIFF_MAX

    reliability = df["reliability"].to_numpy(dtype="float64")
    f_rel = reliability >= LSST_RELIABILITY_MIN
    f_pix = np.array(
        [
            isinstance(flags, (list, np.ndarray)) and not LSST_BAD_FLAGS.intersection(flags)
            for flags in df["lsst_flags_set"]
        ],
        dtype=bool,
    )
    ok = np.where(is_ztf, f_nbad & f_rb & f_band, np.where(is_lsst, f_rel & f_pix, False))
    out = pd.DataFrame(
        {
            "flag_nbad": _only(f_nbad, is_ztf),
            "flag_rb": _only(f_rb, is_ztf),
            "flag_band": _only(f_band, is_ztf),
            "flag_magdiff": _only(f_magdiff, is_ztf),
            "flag_lsst_reliability": _only(f_rel, is_lsst),
            "flag_lsst_pixel_flags": _only(f_pix, is_lsst),
            "quality_ok": ok.astype(bool),
        }
    )
    out.index = df.index
    return out
