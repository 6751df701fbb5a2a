"""Quality flags on the real alerts, against values derived here from the raw fields."""

from __future__ import annotations

import pandas as pd
from fc_data import RawAlert

from fink_core.quality import QUALITY_COLUMNS, quality_flags

# Fink's cuts, restated here from their sources (not imported from the module).
FINK_LSST_FLAGS = (
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
)


def test_ztf_flags_match_fink_cuts_on_raw_fields(
    raw_ztf: list[RawAlert], ztf_frame: pd.DataFrame
) -> None:
    flags = quality_flags(ztf_frame)
    assert list(flags.columns) == list(QUALITY_COLUMNS)
    expected = pd.DataFrame(
        [
            {
                "flag_nbad": r.records[0]["candidate"]["nbad"] == 0,
                "flag_rb": r.records[0]["candidate"]["rb"] >= 0.55,
                "flag_band": r.records[0]["candidate"]["fid"] != 3,
                "flag_magdiff": abs(r.records[0]["candidate"]["magdiff"]) <= 0.1,
            }
            for r in raw_ztf
        ]
    )
    for col in expected.columns:
        assert flags[col].astype(bool).tolist() == expected[col].tolist(), col
    ok = expected["flag_nbad"] & expected["flag_rb"] & expected["flag_band"]
    assert flags["quality_ok"].tolist() == ok.tolist()
    # the real data exercise both outcomes of the cuts
    assert expected["flag_nbad"].value_counts().to_dict() == {True: 727, False: 1}
    assert 0 < (~expected["flag_rb"]).sum() < len(expected)
    assert 0 < ok.sum() < len(expected)
    assert flags["flag_lsst_reliability"].isna().all()
    assert flags["flag_lsst_pixel_flags"].isna().all()


def test_lsst_flags_on_raw_fields(raw_lsst: list[RawAlert], lsst_frame: pd.DataFrame) -> None:
    flags = quality_flags(lsst_frame)
    rel = [r.records[0]["diaSource"]["reliability"] >= 0.5 for r in raw_lsst]
    pix = [not any(r.records[0]["diaSource"][f] for f in FINK_LSST_FLAGS) for r in raw_lsst]
    assert flags["flag_lsst_reliability"].astype(bool).tolist() == rel
    assert flags["flag_lsst_pixel_flags"].astype(bool).tolist() == pix
    assert flags["quality_ok"].tolist() == [a and b for a, b in zip(rel, pix, strict=True)]
    assert sum(rel) == 34
    assert flags[["flag_nbad", "flag_rb", "flag_band", "flag_magdiff"]].isna().all().all()


def test_flags_never_drop_rows(ztf_frame: pd.DataFrame, lsst_frame: pd.DataFrame) -> None:
    both = pd.concat([ztf_frame, lsst_frame], ignore_index=True)
    flags = quality_flags(both)
    assert len(flags) == len(both)
    assert flags["quality_ok"].notna().all()


def test_i_band_fails_the_band_flag(ztf_frame: pd.DataFrame) -> None:
    # No real i-band alert in the set (ZTF i band is private): edit a copy of a real row.
    row = ztf_frame.iloc[[0]].copy()
    row["ztf_fid"] = pd.array([3], dtype="Int32")
    row["band"] = "i"
    flags = quality_flags(row)
    assert not flags["flag_band"].iloc[0]
    assert not flags["quality_ok"].iloc[0]
