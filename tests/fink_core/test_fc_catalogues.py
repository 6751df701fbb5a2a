"""Catalogue loading, provenance and cross-matching."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord, match_coordinates_sky
from astropy.io.votable import from_table, writeto
from astropy.table import Table

from fink_core import catalogues as C
from fink_core import crossmatch as X
from mm_broker.core.errors import CatalogueFormatError

ROWS = {
    "gcvs": 59099,
    "spicy": 117446,
    "4lac": 3407 + 407,
    "3hsp": 2013,
    "4fgl": 3637,
    "tns": 3,
    "clu": 92,
    "glade": 2000,
}


def test_default_catalogues_load_with_provenance(
    catalogues: list[C.Catalogue], data_dir: Path
) -> None:
    manifest = pd.read_csv(data_dir / "MANIFEST.tsv", sep="\t")
    sha = dict(zip(manifest["dest"], manifest["sha256"], strict=True))
    assert {c.key: len(c) for c in catalogues} == ROWS
    for cat in catalogues:
        assert cat.provenance["n_dropped"] == 0
        for entry in cat.provenance["files"]:
            assert entry["sha256"] == sha[f"catalogues/{entry['name']}"]
        assert np.all((cat.ra >= 0) & (cat.ra < 360)) and np.all(np.abs(cat.dec) <= 90)
        assert all(isinstance(n, str) and n for n in cat.names)
    by_key = {c.key: c for c in catalogues}
    # header versions recorded where the file has one
    assert by_key["4lac"].provenance["header_version"]["table-4LAC-DR3-h.fits"]["VERSION"] == "v28"
    assert by_key["clu"].provenance["header_version"]["CLU_mini.hdf5"]["DATE"] == "20190816"
    # GCVS extract has no designation: positional names from the catalogue position
    assert by_key["gcvs"].names[0] == "GCVS J004243.10+411605.0"
    assert by_key["gcvs"].types is not None and by_key["gcvs"].types[0] == "SNI"
    # the catalogue object pickles (Spark broadcast)
    again = pickle.loads(pickle.dumps(by_key["tns"]))
    assert again.names.tolist() == by_key["tns"].names.tolist()


def test_3hsp_sexagesimal_positions(catalogues: list[C.Catalogue]) -> None:
    hsp = next(c for c in catalogues if c.key == "3hsp")
    # first row: "00 01 16.37" "+29 35 34.0"
    assert hsp.names[0] == "3HSPJ000116.4+293534"
    assert hsp.ra[0] == pytest.approx((16.37 / 3600 + 1 / 60) * 15, abs=1e-9)
    assert hsp.dec[0] == pytest.approx(29 + 35 / 60 + 34.0 / 3600, abs=1e-9)


def test_fink_doctest_positions(catalogues: list[C.Catalogue], data_dir: Path) -> None:
    # fink-science ztf/xmatch/processor.py crossmatch_other_catalog doctest
    ra = np.array([26.8566983, 101.3520545, 0.3126, 0.31820833])
    dec = np.array([-26.9677112, 24.5421872, 47.6859, 29.59277778])
    by_key = {c.key: c for c in catalogues}
    gcvs = X.crossmatch(ra, dec, by_key["gcvs"])
    assert gcvs["xm_gcvs_type"].tolist() == [None, "RR", None, None]
    hsp = X.crossmatch(ra, dec, by_key["3hsp"])
    assert hsp["xm_3hsp_name"].tolist() == [None, None, None, "3HSPJ000116.4+293534"]
    # Fink matches 4LAC at the LAT position within 60"; the same loader does it
    lat = C.load_catalogue(
        [
            data_dir / "catalogues/table-4LAC-DR3-h.fits",
            data_dir / "catalogues/table-4LAC-DR3-l.fits",
        ],
        "4lac_lat",
        60.0,
        ra_col="RAJ2000",
        dec_col="DEJ2000",
        name_col="Source_Name",
    )
    assert X.crossmatch(ra, dec, lat)["xm_4lac_lat_name"].tolist() == [
        None,
        None,
        "4FGL J0001.2+4741",
        None,
    ]


def test_all_formats_load(data_dir: Path, tmp_path: Path) -> None:
    folder = data_dir / "catalogues"
    csv = C.load_catalogue(folder / "CLU_mini.csv", "clu_csv", 30.0)
    hdf = C.load_catalogue(folder / "CLU_growth-too-marshal.hdf5", "clu_h5", 30.0)
    assert len(csv) == len(hdf) == 10
    assert csv.names.tolist() == hdf.names.tolist()
    np.testing.assert_allclose(csv.ra, hdf.ra, atol=1e-5)
    # VOTable: write a small one from a real catalogue (generated here, not stored)
    table = Table.read(folder / "table-4LAC-DR3-l.fits")[
        "Source_Name", "RAJ2000", "DEJ2000", "CLASS"
    ][:25]
    votable = tmp_path / "4lac.vot"
    writeto(from_table(table), str(votable))
    vot = C.load_catalogue(votable, "vot", 1.0)
    assert len(vot) == 25 and vot.provenance["ra_col"] == "RAJ2000"
    assert vot.types is not None and vot.types[0] == table["CLASS"][0].strip()
    with pytest.raises(CatalogueFormatError):
        C.load_catalogue(folder / "CLU_mini.csv", "x", 1.0, ra_col="nope")
    bad = tmp_path / "nopos.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(CatalogueFormatError, match="no ra/dec"):
        C.load_catalogue(bad, "x", 1.0)


def test_crossmatch_agrees_with_astropy_and_is_fast() -> None:
    rng = np.random.default_rng(2026)
    n = 100_000
    cat_ra, cat_dec = rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    cat = C.Catalogue("rand", 30.0, cat_ra, cat_dec, np.arange(n).astype(str).astype(object), None)
    # alerts: half near a source (within 0-40"), half random
    pick = rng.integers(0, n, n // 2)
    offset = rng.uniform(0, 40, n // 2) / 3600
    ra = np.concatenate([cat_ra[pick], rng.uniform(0, 360, n // 2)])
    dec = np.concatenate(
        [
            np.clip(cat_dec[pick] + offset, -90, 90),
            np.degrees(np.arcsin(rng.uniform(-1, 1, n // 2))),
        ]
    )
    start = time.perf_counter()
    out = X.crossmatch(ra, dec, cat)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0  # ~0.1 s measured on one core
    idx, sep, _ = match_coordinates_sky(
        SkyCoord(ra * u.deg, dec * u.deg), SkyCoord(cat_ra * u.deg, cat_dec * u.deg)
    )
    within = sep.arcsec < 30.0
    assert out["xm_rand_sep_arcsec"].notna().to_numpy().tolist() == within.tolist()
    np.testing.assert_allclose(out["xm_rand_sep_arcsec"][within], sep.arcsec[within], atol=1e-6)
    assert out["xm_rand_name"][within].tolist() == [str(i) for i in idx[within]]


def test_crossmatch_edges() -> None:
    cat = C.Catalogue(
        "edge",
        2.0,
        np.array([359.9999, 45.0, 10.0]),
        np.array([0.0, 89.9999, 10.0]),
        np.array(["wrap", "pole", "plain"], dtype=object),
        np.array(["a", "b", None], dtype=object),
    )
    ra = np.array([0.0001, 225.0, np.nan, 10.0, 10.0])
    dec = np.array([0.0, 89.9999, 10.0, 10.0 + 1.9 / 3600, 10.0 + 2.1 / 3600])
    out = X.crossmatch(ra, dec, cat)
    assert out["xm_edge_name"].tolist() == ["wrap", "pole", None, "plain", None]
    assert out["xm_edge_type"].tolist() == ["a", "b", None, None, None]
    assert out["xm_edge_sep_arcsec"][0] == pytest.approx(0.72, abs=1e-6)
    assert out["xm_edge_sep_arcsec"][1] == pytest.approx(0.72, abs=1e-3)
    assert out["xm_edge_sep_arcsec"][3] == pytest.approx(1.9, abs=1e-6)


def test_real_gcvs_star_found_and_fink_agreement(fink_night: pd.DataFrame) -> None:
    """Alerts of the 2024-01-15 night with a GCVS star within 1.5": ours vs Fink's ``gcvs``."""
    fink_hit = fink_night["gcvs"] != "Unknown"
    ours_hit = fink_night["xm_gcvs_sep_arcsec"].notna()
    assert fink_hit.sum() == 18
    both = fink_night[fink_hit & ours_hit]
    assert (both["xm_gcvs_type"] == both["gcvs"]).all()
    assert (both["xm_gcvs_sep_arcsec"] < 1.5).all()
    assert not (fink_hit & ~ours_hit).any()
    # A named real case, where Fink agrees: ZTF18abeepfo, 0.106" from an EW star.
    case = fink_night.set_index("object_id").loc["ZTF18abeepfo"]
    assert case["gcvs"] == "EW" and case["xm_gcvs_type"] == "EW"
    assert case["xm_gcvs_name"] == "GCVS J180434.12+044320.4"
    assert case["xm_gcvs_sep_arcsec"] == pytest.approx(0.106, abs=1e-3)
    assert case["classification"] == "variable_star"
    assert case["classification_rule"] == "gcvs_variable_star"
    # Disagreements: we match 2 alerts Fink left "Unknown", 0.09" (ZTF18abshvyx, RRAB) and
    # 0.20" (ZTF19aackzmg) from a GCVS star, both in exposure 2570564690315. Not explained
    # by the stored data (possibly a GCVS file other than the one Fink ran with in January
    # 2024).
    extra = fink_night[ours_hit & ~fink_hit]
    assert sorted(extra["alert_id"]) == ["2570564690315010006", "2570564690315015009"]
    assert (extra["xm_gcvs_sep_arcsec"] < 0.25).all()


def test_doctests() -> None:
    import doctest

    result = doctest.testmod(X)
    assert result.failed == 0 and result.attempted > 0
