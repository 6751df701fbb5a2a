"""Fixtures of the fink_core tests: the real alerts and catalogues, read in place."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fc_data import FINK_NIGHT, RawAlert, read_raw

from fink_core import catalogues as cat_mod
from fink_core import files
from fink_core.annotate import annotate


@pytest.fixture(scope="session")
def raw_ztf(data_dir: Path) -> list[RawAlert]:
    """Every ZTF Avro file, read by fastavro directly."""
    files = sorted((data_dir / "alerts/ztf/avro").rglob("*.avro"))
    return [read_raw(p) for p in files]


@pytest.fixture(scope="session")
def raw_lsst(data_dir: Path) -> list[RawAlert]:
    """Every LSST Avro file, read by fastavro directly."""
    files = sorted((data_dir / "alerts/lsst/avro").rglob("*.avro"))
    return [read_raw(p) for p in files]


@pytest.fixture(scope="session")
def ztf_frame(data_dir: Path) -> pd.DataFrame:
    """All ZTF Avro alerts flattened by fink_core (file order)."""
    return files.read_alert_files([data_dir / "alerts/ztf/avro"])


@pytest.fixture(scope="session")
def lsst_frame(data_dir: Path) -> pd.DataFrame:
    """All LSST Avro alerts flattened by fink_core (file order)."""
    return files.read_alert_files([data_dir / "alerts/lsst/avro"])


@pytest.fixture(scope="session")
def catalogues(data_dir: Path) -> list[cat_mod.Catalogue]:
    """The default catalogues, loaded once."""
    return cat_mod.load_default_catalogues(data_dir / "catalogues")


@pytest.fixture(scope="session")
def doctored(data_dir: Path) -> set[str]:
    """candids of the 48 rows fink-mm moved into GRB error boxes (never background)."""
    table = pd.read_csv(data_dir / "alerts/ztf/parquet/20240115_fink-mm.doctored_rows.csv")
    return {str(c) for c in table["candid"]}


@pytest.fixture(scope="session")
def fink_night(
    data_dir: Path, catalogues: list[cat_mod.Catalogue], doctored: set[str]
) -> pd.DataFrame:
    """The Fink-processed night of 2024-01-15: our annotation joined with Fink's columns.

    The 48 doctored rows are excluded (their positions were overwritten).
    """
    ours = annotate(files.read_alert_files([data_dir / FINK_NIGHT]), catalogues)
    fink_cols = [
        "candid",
        "roid",
        "gcvs",
        "x4lac",
        "x3hsp",
        "cdsxmatch",
        "nalerthist",
        "mag_rate",
        "sigma_rate",
        "delta_time",
        "from_upper",
        "jd_first_real_det",
        "snn_sn_vs_all",
        "mulens",
        "rf_snia_vs_nonia",
    ]
    fink = pd.read_parquet(data_dir / FINK_NIGHT, columns=fink_cols)
    fink["alert_id"] = fink["candid"].astype(str)
    merged = ours.merge(fink.drop(columns="candid"), on="alert_id", how="inner", validate="1:1")
    return merged[~merged["alert_id"].isin(doctored)].reset_index(drop=True)
