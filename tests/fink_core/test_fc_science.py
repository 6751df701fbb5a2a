"""Features, context and classification: a hand-checked light curve and Fink's night."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fink_core.classify import LABELS, RULES, classify
from fink_core.context import context
from fink_core.features import FEATURE_COLUMNS, features, light_curve_features

# A worked example. r-band source observed at t = 105.0 (the alert), with before it:
#   t      band  kind            mag
#   100.0  g     upper limit     20.5
#   101.0  r     detection       19.0 +- 0.10
#   101.2  g     detection       19.4 +- 0.05
#   103.0  r     detection       18.0 +- 0.10
#   103.6  g     NEGATIVE diff   18.5 +- 0.05   (ignored: a flux decrease)
#   104.0  r     upper limit     19.5
#   105.0  r     detection       17.5 +- 0.08   <- the alert
LC = {
    "hist_jd": np.array([100.0, 101.0, 101.2, 103.0, 103.6, 104.0, 105.0]),
    "hist_mag": np.array([20.5, 19.0, 19.4, 18.0, 18.5, 19.5, 17.5]),
    "hist_magerr": np.array([np.nan, 0.10, 0.05, 0.10, 0.05, np.nan, 0.08]),
    "hist_band": np.array(["g", "r", "g", "r", "g", "r", "r"], dtype=object),
    "hist_is_upper_limit": np.array([True, False, False, False, False, True, False]),
    "hist_is_negative": np.array([False, False, False, False, True, False, False]),
}


def _frame(lc: dict[str, np.ndarray], last_nondetection: float) -> pd.DataFrame:
    row = {**lc, "obs_jd": 105.0, "band": "r", "last_nondetection_jd": last_nondetection}
    return pd.DataFrame([row])


def test_worked_light_curve_with_an_upper_limit_before() -> None:
    out = features(_frame(LC, 104.0)).iloc[0]
    assert list(out.index) == list(FEATURE_COLUMNS)
    # previous r measurement is the limit at 104.0: (17.5 - 19.5) / 1.0 = -2.0 mag/day
    assert out["ft_mag_rate"] == pytest.approx(-2.0)
    assert out["ft_rate_dt_days"] == pytest.approx(1.0)
    assert bool(out["ft_mag_rate_from_upper"]) is True
    assert math.isnan(out["ft_mag_rate_err"])  # a bound, no error
    # per band: r from its last two detections (103.0, 18.0) -> (105.0, 17.5): -0.25 mag/day
    assert out["ft_rate_r"] == pytest.approx(-0.25)
    # g: one positive detection only (the negative one is not a measurement of the source)
    assert math.isnan(out["ft_rate_g"]) and math.isnan(out["ft_rate_i"])
    # colour: g at 101.2 with r at 101.0 (0.2 d apart): 19.4 - 19.0 = 0.4
    assert out["ft_color_gr"] == pytest.approx(0.4)
    assert out["ft_color_gr_dt_days"] == pytest.approx(0.2)
    assert out["ft_color_gr_jd"] == pytest.approx(101.2)
    assert out["ft_days_since_last_nondetection"] == pytest.approx(1.0)


def test_worked_light_curve_with_a_detection_before() -> None:
    keep = ~np.isclose(LC["hist_jd"], 104.0)
    lc = {k: v[keep] for k, v in LC.items()}
    out = features(_frame(lc, 100.0)).iloc[0]
    # previous r measurement is the detection at 103.0: (17.5 - 18.0) / 2.0
    assert out["ft_mag_rate"] == pytest.approx(-0.25)
    # error: sqrt(0.08^2 + 0.10^2) / 2 = 0.0640312...
    assert out["ft_mag_rate_err"] == pytest.approx(math.sqrt(0.08**2 + 0.10**2) / 2.0)
    assert bool(out["ft_mag_rate_from_upper"]) is False
    assert out["ft_days_since_last_nondetection"] == pytest.approx(5.0)


def test_colour_needs_bands_within_half_a_day() -> None:
    out = light_curve_features(
        [10.0, 10.6],
        [18.0, 17.0],
        [0.1, 0.1],
        ["g", "r"],
        [False, False],
        [False, False],
        10.6,
        "r",
    )
    assert math.isnan(out["ft_color_gr"])
    assert out["ft_mag_rate_from_upper"] is None  # no earlier r point: no rate


def test_every_alert_gets_a_label_and_a_rule(
    ztf_frame: pd.DataFrame, lsst_frame: pd.DataFrame, catalogues: list
) -> None:
    from fink_core.annotate import annotate

    both = annotate(pd.concat([ztf_frame, lsst_frame], ignore_index=True), catalogues)
    assert both["classification"].isin(LABELS).all()
    assert both["classification_rule"].isin([r.name for r in RULES] + ["no_rule"]).all()
    assert both["classification"].notna().all() and (both["classification"] != "").all()
    # The four LSST sources associated with asteroids by Rubin
    lsst = both[both["survey"] == "lsst"]
    assert (lsst["classification"] == "solar_system").sum() == 4
    assert (lsst.loc[lsst["lsst_ss_object_id"].notna(), "classification"] == "solar_system").all()


def test_first_rule_wins() -> None:
    # an SSO with bad coordinates: the bad_coordinates rule comes first
    frame = pd.DataFrame({"bad_coordinates": [True, False], "ctx_is_sso_candidate": [True, True]})
    out = classify(frame)
    assert out["classification"].tolist() == ["unknown", "solar_system"]
    assert out["classification_rule"].tolist() == ["bad_coordinates", "known_solar_system_object"]


# --------------------------------------------------------------------------- #
# The Fink-processed night of 2024-01-15 (doctored rows excluded)
# --------------------------------------------------------------------------- #


def test_solar_system_agrees_with_fink_roid(fink_night: pd.DataFrame) -> None:
    assert len(fink_night) == 801
    fink_sso = fink_night["roid"] == 3
    ours = fink_night["ctx_is_sso_candidate"].astype(bool)
    assert fink_sso.sum() == 173
    assert (ours == fink_sso).all()
    assert ((fink_night["classification"] == "solar_system") == fink_sso).all()
    # On this night the brief's simple rule (0 <= ssdistnr < 5") gives the same set.
    ss = fink_night["ztf_ssdistnr"]
    assert (((ss >= 0) & (ss < 5)) == fink_sso).all()


def test_detection_counts_agree_with_fink(fink_night: pd.DataFrame) -> None:
    # Fink nalerthist: number of measured magnitudes in history + current alert
    assert (fink_night["nalerthist"] == fink_night["n_detections"]).all()


def test_first_detection_and_rate_against_fink(fink_night: pd.DataFrame) -> None:
    """Fink's fast-transient columns of this file follow an older rule than today's code.

    In this file Fink's ``jd_first_real_det`` is the first epoch of the stored history,
    detection or upper limit, and ``delta_time`` is measured from that epoch; current
    Fink (and we) compare with the previous measurement in the same band.
    """
    first_epoch = np.array([h[0] for h in fink_night["hist_jd"]])
    first_is_limit = np.array([u[0] for u in fink_night["hist_is_upper_limit"]])
    assert np.allclose(fink_night["jd_first_real_det"], first_epoch, atol=1e-6)
    assert np.allclose(fink_night["obs_jd"] - fink_night["delta_time"], first_epoch, atol=1e-5)
    # agreement where the first epoch is a detection; disagreement (listed) otherwise
    det = ~first_is_limit
    assert det.sum() == 249
    assert np.allclose(fink_night["jd_first_real_det"][det], fink_night["first_detection_jd"][det])
    assert (fink_night["jd_first_real_det"][~det] < fink_night["first_detection_jd"][~det]).all()
    # rates: where both use the same reference epoch, from_upper agrees and, from a
    # detection, our closed form is within 0.1 sigma of Fink's 10,000-draw estimate
    same = np.isclose(fink_night["delta_time"], fink_night["ft_rate_dt_days"])
    assert same.sum() == 16
    sub = fink_night[same]
    assert (sub["from_upper"].astype(bool) == sub["ft_mag_rate_from_upper"].astype(bool)).all()
    from_det = sub[~sub["from_upper"].astype(bool)]
    assert len(from_det) == 5
    assert (
        np.abs(from_det["mag_rate"] - from_det["ft_mag_rate"]) <= 0.1 * from_det["sigma_rate"]
    ).all()
    assert np.allclose(from_det["sigma_rate"], from_det["ft_mag_rate_err"], rtol=0.05)


def test_classes_against_fink_columns(fink_night: pd.DataFrame) -> None:
    """Where Fink's columns say the same thing as ours, and where they do not.

    - SuperNNova: all 3 alerts with snn_sn_vs_all > 0.5 are sn_like for us.
    - SIMBAD stars (Fink cdsxmatch): 241 of 248 are variable_star for us.
    - SIMBAD QSO/AGN: 54 of 56 are *variable_star* for us (stellar_counterpart_long_lived):
      a quasar is a point source in PS1 and Gaia and nothing in the alert tells them
      apart; 1 (in 4LAC) is agn_blazar. A known weakness of the rule table,
      needing a QSO catalogue or Gaia astrometry.
    - Fink mulens and rf_snia_vs_nonia are 0 for every alert of the night: nothing to
      compare.
    """
    snn = fink_night[fink_night["snn_sn_vs_all"] > 0.5]
    assert len(snn) == 3 and (snn["classification"] == "sn_like").all()
    stars = [
        "RRLyr", "EB*_Candidate", "EB*", "LPV*", "V*", "LP*_Candidate", "Mira", "PulsV*",
        "Star", "AGB*", "C*", "SB*", "Em*", "CV*_Candidate",
    ]  # fmt: skip
    simbad_stars = fink_night[fink_night["cdsxmatch"].isin(stars)]
    assert len(simbad_stars) == 248
    assert (simbad_stars["classification"] == "variable_star").sum() == 241
    qso = fink_night[fink_night["cdsxmatch"].isin(["QSO", "Seyfert_1", "AGN", "AGN_Candidate"])]
    counts = qso["classification"].value_counts().to_dict()
    assert counts == {"variable_star": 54, "agn_blazar": 1, "unknown": 1}
    assert (fink_night["mulens"] == 0).all() and (fink_night["rf_snia_vs_nonia"] == 0).all()
    # Fink's one 4LAC match is ours too (at the counterpart position, 0.03")
    lac = fink_night[fink_night["x4lac"] != "Unknown"]
    assert lac["xm_4lac_name"].tolist() == lac["x4lac"].tolist() == ["4FGL J0706.9+6109"]
    assert lac["xm_4lac_sep_arcsec"].iloc[0] < 0.1


def test_context_newness_and_stars(ztf_frame: pd.DataFrame) -> None:
    ctx = context(ztf_frame)
    since = ztf_frame["obs_jd"] - np.fmin(
        ztf_frame["first_detection_jd"], ztf_frame["ztf_jdstarthist"]
    )
    assert np.allclose(ctx["ctx_days_since_first_seen"], since)
    assert (ctx["ctx_days_since_first_seen"] >= 0).all()
    assert (ctx["ctx_days_since_first_detection"] <= ctx["ctx_days_since_first_seen"] + 1e-9).all()
    star = ((ztf_frame["ztf_distpsnr1"] <= 1.0) & (ztf_frame["ztf_sgscore1"] >= 0.76)) | (
        ztf_frame["ztf_neargaia"] <= 1.0
    )
    assert (ctx["ctx_is_star"].astype(bool) == star.fillna(False)).all()
