"""The annotation chain and the model's Arrow schema (the benchmark: tests/benchmarks)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fink_core import model
from fink_core.annotate import ADDED_COLUMNS, added_columns, annotate, output_schema
from fink_core.catalogues import Catalogue


@pytest.fixture(scope="module")
def both(ztf_frame: pd.DataFrame, lsst_frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([ztf_frame, lsst_frame], ignore_index=True)


def test_annotate_only_adds_columns(both: pd.DataFrame, catalogues: list[Catalogue]) -> None:
    before = both.copy(deep=True)
    out = annotate(both, catalogues)
    assert list(out.columns) == [*both.columns, *ADDED_COLUMNS]
    assert len(out) == len(both)
    pd.testing.assert_frame_equal(out[list(both.columns)], before)
    pd.testing.assert_frame_equal(both, before)  # input untouched
    with pytest.raises(ValueError, match="overwrite"):
        annotate(out, catalogues)


def test_added_column_names_are_stable(catalogues: list[Catalogue]) -> None:
    assert ADDED_COLUMNS[:7] == (
        "flag_nbad",
        "flag_rb",
        "flag_band",
        "flag_magdiff",
        "flag_lsst_reliability",
        "flag_lsst_pixel_flags",
        "quality_ok",
    )
    assert ADDED_COLUMNS[-2:] == ("classification", "classification_rule")
    assert "xm_gcvs_name" in ADDED_COLUMNS and "xm_gcvs_sep_arcsec" in ADDED_COLUMNS
    assert added_columns([c.key for c in catalogues]) == list(ADDED_COLUMNS)
    assert len(set(ADDED_COLUMNS)) == len(ADDED_COLUMNS)
    assert not set(ADDED_COLUMNS) & set(model.COLUMN_NAMES)


def test_output_converts_to_arrow_and_parquet(
    both: pd.DataFrame, catalogues: list[Catalogue], tmp_path: Path
) -> None:
    flat = model.to_arrow(both)
    assert flat.schema.equals(model.arrow_schema(), check_metadata=True)
    out = annotate(both, catalogues)
    table = model.to_arrow(out, output_schema())
    assert table.num_rows == len(both)
    assert table.schema.field("obs_time").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("hist_mag").type == pa.list_(pa.float64())
    path = tmp_path / "alerts.parquet"
    pq.write_table(table, path)
    back = pq.read_table(path)
    assert back.schema.equals(table.schema)
    assert back.column("alert_id").to_pylist() == both["alert_id"].tolist()
    assert back.column("classification").null_count == 0
    # nullable flags: null for the other survey
    flags = back.column("flag_rb").to_pylist()
    surveys = back.column("survey").to_pylist()
    assert all((f is None) == (s == "lsst") for f, s in zip(flags, surveys, strict=True))
