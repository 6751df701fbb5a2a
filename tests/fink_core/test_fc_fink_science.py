"""Fink's own science modules (fink-science 7.4.0) against Fink's stored outputs of the
night of 2024-01-15 (computed by fink-science 5.6.2), per alert and per batch."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fc_data import FINK_NIGHT
from fink_science.ztf.fast_transient_rate.processor import fast_transient_rate

from fink_core import files
from fink_core import fink_science as FS
from fink_core.annotate import ADDED_COLUMNS, output_schema, rule_versions
from fink_core.classify import classify


@pytest.fixture(scope="module")
def night(data_dir: Path, doctored: set[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The model of the 801 unedited alerts, and Fink's stored columns (same order)."""
    frame = files.read_alert_files([data_dir / FINK_NIGHT])
    frame = frame[~frame["alert_id"].isin(doctored)].reset_index(drop=True)
    cols = ["candid", "roid", "nalerthist", "mag_rate", "sigma_rate", "delta_time",
            "from_upper", "jd_first_real_det"]
    fink = pd.read_parquet(data_dir / FINK_NIGHT, columns=cols)
    fink["alert_id"] = fink["candid"].astype(str)
    fink = frame[["alert_id"]].merge(fink, on="alert_id", how="left", validate="1:1")
    assert len(frame) == 801 and fink["candid"].notna().all()
    return frame, fink


@pytest.fixture(scope="module")
def ours(night: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return FS.fink_modules(night[0])


def test_the_wheels_declare_no_dependencies_and_are_the_pinned_ones() -> None:
    """pip installs these wheels alone (as --no-deps would): what they need is pinned
    in pyproject.toml. A new pin that declares dependencies fails here."""
    for dist, version in (("fink-science", "7.4.0"), ("fink-utils", "0.79.0")):
        assert metadata.version(dist) == version
        assert not metadata.requires(dist)
    assert FS.FINK_SCIENCE_VERSION == "7.4.0" and FS.FINK_UTILS_VERSION == "0.79.0"
    assert {k: v for k, v in rule_versions().items() if k.startswith("fink_")} == FS.versions()


def test_columns_are_prefixed_and_typed() -> None:
    assert all(c.startswith("fink_") for c in FS.FINK_COLUMNS)
    assert set(FS.FINK_COLUMNS) <= set(ADDED_COLUMNS)
    schema = output_schema()
    assert str(schema.field("fink_roid").type) == "int32"
    assert str(schema.field("fink_from_upper").type) == "bool"
    assert str(schema.field("fink_mag_rate").type) == "double"


def test_roid_and_nalerthist_equal_finks_stored_values(
        night: tuple[pd.DataFrame, pd.DataFrame], ours: pd.DataFrame) -> None:
    _, fink = night
    roid = (ours["fink_roid"].to_numpy() == fink["roid"].to_numpy()).mean()
    nal = (ours["fink_nalerthist"].to_numpy() == fink["nalerthist"].to_numpy()).mean()
    # Measured: 801 / 801 for both.
    assert roid >= 0.99 and nal >= 0.99, (roid, nal)
    assert set(ours["fink_roid"].astype(int)) <= {0, 1, 2, 3}


def _last_alert_562(fid, cfid, cmagpsf, csigmapsf, cdiffmaglim, cjd):  # noqa: ANN001, ANN202
    """fink-science 5.6.2's choice of the point (``get_last_alert`` at tag 5.6.2): the
    *first* point of the history in the alert's band; the first epoch as
    ``jd_first_real_det``."""
    out = []
    for f, cf, cm, cs, cl, cj in zip(fid, cfid, cmagpsf, csigmapsf, cdiffmaglim, cjd,
                                     strict=True):
        hit = next((i for i in range(len(cf) - 1) if cf[i] == f), None)
        out.append([np.nan] * 4 + [cj[0]] if hit is None
                   else [cm[hit], cs[hit], cl[hit], cj[hit], cj[0]])
    return out


def test_rate_with_562s_point_reproduces_finks_stored_rate(
        night: tuple[pd.DataFrame, pd.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    """Our inputs are Fink's: with 5.6.2's choice of the point, the point-derived
    outputs equal the stored ones on every alert, and the rate agrees within Fink's
    own sigma_rate (7.4.0 shifts each flux sample set by its minimum, 5.6.2 did not)."""
    frame, fink = night
    monkeypatch.setattr(FS, "return_last_alerts", _last_alert_562)
    out = FS.fink_modules(frame)
    dt, fdt = out["fink_delta_time"].to_numpy(float), fink["delta_time"].to_numpy(float)
    assert np.array_equal(np.isnan(dt), np.isnan(fdt))
    assert np.allclose(dt[~np.isnan(dt)], fdt[~np.isnan(fdt)], rtol=0, atol=1e-9)
    assert np.allclose(out["fink_jd_first_real_det"], fink["jd_first_real_det"], rtol=0,
                       atol=1e-9)
    known = ~np.isnan(dt)
    assert (out["fink_from_upper"][known].astype(bool).to_numpy()
            == fink["from_upper"][known].astype(bool).to_numpy()).all()
    rate, frate = out["fink_mag_rate"].to_numpy(float), fink["mag_rate"].to_numpy(float)
    both = np.isfinite(rate) & np.isfinite(frate)
    # 5.6.2 left negative flux samples in place: log10 gave NaN for 6 faint rows
    # where 7.4.0 (shifted samples) gives a value.
    assert (np.isfinite(frate) & ~np.isfinite(rate)).sum() == 0
    assert (~np.isfinite(frate) & np.isfinite(rate)).sum() <= 8
    ratio = np.abs(rate - frate)[both] / fink["sigma_rate"].to_numpy(float)[both]
    assert both.sum() >= 790 and np.median(ratio) < 0.6 and ratio.max() < 2.0, ratio.max()


def test_rate_with_740s_point_where_the_rules_agree(
        night: tuple[pd.DataFrame, pd.DataFrame], ours: pd.DataFrame) -> None:
    """As run (7.4.0's rule: the *last* same-band point, the first detection):
    equal to the stored values where both rules pick the same point, a shorter
    delta_time and a later (or equal) first detection elsewhere."""
    _, fink = night
    dt, fdt = ours["fink_delta_time"].to_numpy(float), fink["delta_time"].to_numpy(float)
    same = np.isclose(dt, fdt, rtol=0, atol=1e-9)
    assert same.sum() >= 30  # measured 33 of 801
    fu = ours["fink_from_upper"].astype("boolean")
    assert (fu[same].astype(bool).to_numpy()
            == fink["from_upper"][same].astype(bool).to_numpy()).all()
    both = np.isfinite(dt) & np.isfinite(fdt)
    assert (dt[both] <= fdt[both] + 1e-9).all()
    first, ffirst = ours["fink_jd_first_real_det"], fink["jd_first_real_det"]
    assert (first >= ffirst - 1e-9).all()


def test_each_alert_gets_what_fink_gives_it_alone(
        night: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Row i of the per-alert rate is fink-science's fast_transient_rate called on
    that alert alone with its seed (same draws, same order)."""
    frame, _ = night
    sample = frame.iloc[::40]
    inputs = FS.fink_inputs(sample)
    seeds = np.array([FS.alert_seed(a) for a in sample["alert_id"]], dtype=np.uint64)
    mine = FS.fast_transient_rate_per_alert(inputs, seeds)
    for i in range(len(sample)):
        alone = fast_transient_rate(inputs.iloc[[i]], FS.RATE_SAMPLES, int(seeds[i]))
        # Same draws; the mean and percentiles are reduced along another axis layout
        # (Fink: rows of an (n, N) array), so equal to rounding, not to the last bit.
        assert np.allclose(mine.iloc[i].to_numpy(float), alone.iloc[0].to_numpy(float),
                           rtol=1e-12, atol=0, equal_nan=True), i


def test_values_do_not_depend_on_the_batch(night: tuple[pd.DataFrame, pd.DataFrame],
                                           ours: pd.DataFrame) -> None:
    frame, _ = night
    rng = np.random.default_rng(7)
    picks = rng.choice(len(frame), 25, replace=False)
    for i in picks[:10]:  # alone
        alone = FS.fink_modules(frame.iloc[[i]])
        pd.testing.assert_frame_equal(alone, ours.iloc[[i]])
    shuffled = rng.permutation(len(frame))[:300]  # inside another batch, another order
    inside = FS.fink_modules(frame.iloc[shuffled].reset_index(drop=True))
    pd.testing.assert_frame_equal(inside, ours.iloc[shuffled].reset_index(drop=True))


def test_lsst_rows_get_nulls_not_zeros(lsst_frame: pd.DataFrame) -> None:
    out = FS.fink_modules(lsst_frame)
    assert len(out) == len(lsst_frame) > 0
    assert out.isna().all().all()


def test_classification_reads_finks_flag_and_rate() -> None:
    """Rule 2 takes Fink's roid where it exists (our context flag elsewhere); rule 9
    Fink's rate where it exists (ours elsewhere)."""
    df = pd.DataFrame({
        "bad_coordinates": [False] * 4, "is_negative": [False] * 4,
        "ctx_is_sso_candidate": [False, True, True, False],
        "fink_roid": pd.array([3, 0, pd.NA, pd.NA], dtype="Int32"),
        "fink_mag_rate": [np.nan, np.nan, np.nan, -0.5],
        "ft_mag_rate": [np.nan, np.nan, np.nan, -0.1],
        "ctx_days_since_first_seen": [1.0, 1.0, 1.0, 1.0],
        "n_detections": [2, 2, 2, 2],
    })
    out = classify(df)
    assert out["classification_rule"].tolist() == [
        "known_solar_system_object", "young_positive_transient",
        "known_solar_system_object", "fast_rate"]


def test_a_garbled_error_gives_no_rate_not_an_exception(
        night: tuple[pd.DataFrame, pd.DataFrame], ours: pd.DataFrame) -> None:
    """A negative sigmapsf (fuzzing found it) makes numpy's sampler raise in Fink's
    function; here that alert gets no rate and the others keep theirs."""
    frame, _ = night
    rows = frame.iloc[:5].copy()
    rows.loc[rows.index[0], "mag_err"] = -0.1
    rows.loc[rows.index[1], "mag_err"] = -0.0  # numpy's check is on the sign bit
    out = FS.fink_modules(rows)
    assert np.isnan(out["fink_mag_rate"].iloc[:2]).all()
    assert out["fink_nalerthist"].iloc[0] == ours["fink_nalerthist"].iloc[0]
    pd.testing.assert_frame_equal(out.iloc[2:], ours.iloc[2:5])
