"""First classification of each alert: an ordered rule table, first match wins.

Every alert gets a ``classification`` label among :data:`LABELS` and the name of the
rule that gave it in ``classification_rule``; when no rule fires the label is
``"unknown"`` (rule ``"no_rule"``): the label is never empty. A rule that needs a
column the batch does not have (a catalogue that was not loaded) does not fire.

The table (thresholds are the constants below):

====  ===============================  ==============  ===========================================
 #    rule                             label           fires when
====  ===============================  ==============  ===========================================
 1    bad_coordinates                  unknown         position unusable (flagged, kept)
 2    known_solar_system_object        solar_system    ZTF: Fink's own fink_roid = 3 (fink-science
                                                       roid_catcher); where fink_roid is null
                                                       (LSST): ctx_is_sso_candidate (Rubin
                                                       ssObject association)
 3    gcvs_variable_star               variable_star   a GCVS star within its radius
 4    agn_catalogue                    agn_blazar      a 4LAC or 3HSP source within its radius
 5    yso_catalogue                    galactic        a SPICY young stellar object
 6    tns_supernova                    sn_like         a TNS object classified "SN ..."
 7    stellar_counterpart_long_lived   variable_star   star-like counterpart, first seen more
                                                       than 30 d ago
 8    stellar_counterpart              galactic        star-like counterpart (flare, CV, nova...)
 9    fast_rate                        fast_transient  |rate| > 0.3 mag/d, positive difference,
                                                       first seen at most 5 d ago; rate = Fink's
                                                       own fink_mag_rate (fast_transient_rate,
                                                       sampled, upper limits as a flux below the
                                                       limit) where it has one (ZTF), else our
                                                       ft_mag_rate (LSST). Fink: rate-based KN
                                                       filter after Andreoni et al. 2021 and the
                                                       GVOM filter, |mag_rate| > 0.3, jd -
                                                       jdstarthist <= 5
 10   young_positive_transient         sn_like         positive difference, >= 2 detections, first
                                                       seen at most 90 d ago
 11   no_rule                          unknown         nothing above
====  ===============================  ==============  ===========================================

Rules 2 and 9 read Fink's own modules (:mod:`fink_core.fink_science`) where they
measure the same thing: the asteroid flag is Fink's code itself rather than our
re-statement of it, and Fink's rate treats a previous upper limit as a flux drawn below
the limit (a value with an error) where ours only gives a bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Version of the classification rule table (MAJOR.MINOR.PATCH), stamped on every
#: enriched alert (``prov_rules``) and counterpart record (``rule_versions``). It MUST be
#: bumped, and the change listed in CHANGELOG.md, whenever a rule, its order, a label
#: or a threshold below changes (tests/fink_core/test_fc_provenance.py pins the rule
#: content of each version).
RULES_VERSION = "1.1.0"

LABELS = (
    "solar_system",
    "variable_star",
    "agn_blazar",
    "galactic",
    "fast_transient",
    "sn_like",
    "unknown",
)

#: Rate above which (in absolute value) a transient is fast [mag/day].
FAST_RATE_MAG_PER_DAY = 0.3
#: A fast transient must have been first seen at most this long ago [days].
FAST_MAX_AGE_DAYS = 5.0
#: A star-like counterpart first seen longer ago than this is a variable star [days].
LONG_LIVED_STAR_DAYS = 30.0
#: An sn_like transient was first seen at most this long ago [days].
SN_MAX_AGE_DAYS = 90.0
#: An sn_like transient has at least this many detections.
SN_MIN_DETECTIONS = 2

#: Columns added by :func:`classify`.
CLASSIFY_COLUMNS = ("classification", "classification_rule")

Predicate = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True)
class Rule:
    """One row of the rule table.

    Attributes
    ----------
    name : str
        Value written to ``classification_rule``.
    label : str
        One of :data:`LABELS`.
    predicate : callable
        DataFrame -> boolean array (True where the rule fires).
    """

    name: str
    label: str
    predicate: Predicate


def _bool(df: pd.DataFrame, name: str) -> np.ndarray:
    """Column as a bool array, null/missing column -> False."""
    if name not in df:
        return np.zeros(len(df), dtype=bool)
    return df[name].astype("boolean").fillna(False).to_numpy(dtype=bool)


def _float(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df:
        return np.full(len(df), np.nan)
    return df[name].to_numpy(dtype="float64", na_value=np.nan)


def _matched(df: pd.DataFrame, key: str) -> np.ndarray:
    return np.isfinite(_float(df, f"xm_{key}_sep_arcsec"))


def _tns_sn(df: pd.DataFrame) -> np.ndarray:
    if "xm_tns_type" not in df:
        return np.zeros(len(df), dtype=bool)
    return np.array(
        [isinstance(t, str) and t.startswith("SN") for t in df["xm_tns_type"]], dtype=bool
    )


def _age(df: pd.DataFrame) -> np.ndarray:
    return _float(df, "ctx_days_since_first_seen")


def _known_sso(df: pd.DataFrame) -> np.ndarray:
    """Fink's roid = 3 where Fink's flag exists, else our context flag."""
    roid = _float(df, "fink_roid")
    return np.where(np.isfinite(roid), roid == 3, _bool(df, "ctx_is_sso_candidate"))


def _rate(df: pd.DataFrame) -> np.ndarray:
    """Fink's sampled rate where it has one, else ours."""
    fink = _float(df, "fink_mag_rate")
    return np.where(np.isfinite(fink), fink, _float(df, "ft_mag_rate"))


#: The ordered rule table (first match wins).
RULES: tuple[Rule, ...] = (
    Rule("bad_coordinates", "unknown", lambda d: _bool(d, "bad_coordinates")),
    Rule("known_solar_system_object", "solar_system", _known_sso),
    Rule("gcvs_variable_star", "variable_star", lambda d: _matched(d, "gcvs")),
    Rule("agn_catalogue", "agn_blazar", lambda d: _matched(d, "4lac") | _matched(d, "3hsp")),
    Rule("yso_catalogue", "galactic", lambda d: _matched(d, "spicy")),
    Rule("tns_supernova", "sn_like", _tns_sn),
    Rule(
        "stellar_counterpart_long_lived",
        "variable_star",
        lambda d: _bool(d, "ctx_is_star") & (_age(d) > LONG_LIVED_STAR_DAYS),
    ),
    Rule("stellar_counterpart", "galactic", lambda d: _bool(d, "ctx_is_star")),
    Rule(
        "fast_rate",
        "fast_transient",
        lambda d: (
            (np.abs(_rate(d)) > FAST_RATE_MAG_PER_DAY)
            & (_age(d) <= FAST_MAX_AGE_DAYS)
            & ~_bool(d, "is_negative")
        ),
    ),
    Rule(
        "young_positive_transient",
        "sn_like",
        lambda d: (
            ~_bool(d, "is_negative")
            & (_float(d, "n_detections") >= SN_MIN_DETECTIONS)
            & (_age(d) <= SN_MAX_AGE_DAYS)
        ),
    ),
)


def classify(df: pd.DataFrame, rules: tuple[Rule, ...] = RULES) -> pd.DataFrame:
    """Label each alert with the first rule of the table that fires.

    Parameters
    ----------
    df : pandas.DataFrame
        Alerts with the model, quality, context, feature and cross-match columns.
    rules : tuple of Rule, optional
        The rule table (default :data:`RULES`).

    Returns
    -------
    pandas.DataFrame
        ``classification`` (one of :data:`LABELS`) and ``classification_rule``,
        index of ``df``; never null.
    """
    n = len(df)
    label = np.full(n, "unknown", dtype=object)
    rule_name = np.full(n, "no_rule", dtype=object)
    undecided = np.ones(n, dtype=bool)
    for rule in rules:
        fires = np.asarray(rule.predicate(df), dtype=bool) & undecided
        label[fires] = rule.label
        rule_name[fires] = rule.name
        undecided &= ~fires
    out = pd.DataFrame({"classification": label, "classification_rule": rule_name})
    out.index = df.index
    return out
