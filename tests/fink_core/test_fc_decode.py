"""Decoding and flattening of the real ZTF and LSST alerts."""

from __future__ import annotations

import io
import json
import math
import struct
from pathlib import Path

import erfa
import fastavro
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from fc_data import LSST_AVRO_COUNTS, PARQUET_COUNTS, ZTF_AVRO_COUNTS, RawAlert
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fink_core import decode, files, lsst, model, times
from mm_broker.core.errors import CorruptAlert, UnknownSchema

ZTF_VERSIONS = {
    "20180626_skyportal": {"1.8"},
    "20181129_fink-alert-simulator": {"3.2"},
    "20200101_fink-broker": {"3.3"},
    "20231018_fink-broker": {"4.02"},
    "fink-alert-simulator_templates": {"3.2", "3.3"},
    "ztf-avro-alert_samples": {"3.2", "3.3"},
}


def _strip_meta(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != decode.META_KEY} for r in records]


# --------------------------------------------------------------------------- #
# Every file decodes, counts per folder, identical to fastavro
# --------------------------------------------------------------------------- #


def test_every_ztf_avro_file_decodes_like_fastavro(raw_ztf: list[RawAlert]) -> None:
    per_folder: dict[str, int] = {}
    for raw in raw_ztf:
        records = decode.decode_avro(raw.payload)
        assert _strip_meta(records) == raw.records, raw.path
        folder = raw.path.parent.name
        per_folder[folder] = per_folder.get(folder, 0) + len(records)
        assert records[0][decode.META_KEY]["schema_version"] in ZTF_VERSIONS[folder]
    assert per_folder == ZTF_AVRO_COUNTS
    assert sum(per_folder.values()) == 728


def test_every_lsst_avro_file_decodes_like_fastavro(raw_lsst: list[RawAlert]) -> None:
    per_folder: dict[str, int] = {}
    for raw in raw_lsst:
        records = decode.decode_avro(raw.payload)
        assert _strip_meta(records) == raw.records, raw.path
        assert records[0][decode.META_KEY] == {"survey": "lsst", "schema_version": "9.0"}
        folder = raw.path.parent.name
        per_folder[folder] = per_folder.get(folder, 0) + len(records)
    assert per_folder == LSST_AVRO_COUNTS


def test_parquet_folders_read_with_their_counts(data_dir: Path) -> None:
    for folder, count in PARQUET_COUNTS.items():
        frame = files.read_alert_files([data_dir / "alerts/ztf/parquet" / folder])
        assert len(frame) == count, folder
        raw = pq.read_table(data_dir / "alerts/ztf/parquet" / folder, columns=["candid"])
        assert frame["alert_id"].tolist() == [str(c) for c in raw["candid"].to_pylist()]


def test_lsst_files_are_avro_containers(raw_lsst: list[RawAlert]) -> None:
    # Fink's re-serialisation: container files, record "topLevelRecord", version field.
    assert all(r.payload[:4] == b"Obj\x01" for r in raw_lsst)
    assert {r.writer_schema["name"] for r in raw_lsst} == {"topLevelRecord"}
    assert {r.records[0]["lsst_schema_version"] for r in raw_lsst} == {"lsst.v9_0"}


# --------------------------------------------------------------------------- #
# Flattened values against the raw fields
# --------------------------------------------------------------------------- #

FID = {1: "g", 2: "r", 3: "i"}


def test_ztf_flattened_values_match_the_raw_packets(
    raw_ztf: list[RawAlert], ztf_frame: pd.DataFrame
) -> None:
    assert list(ztf_frame.columns) == list(model.COLUMN_NAMES)
    assert len(ztf_frame) == len(raw_ztf)
    for raw, (_, row) in zip(raw_ztf, ztf_frame.iterrows(), strict=True):
        rec = raw.records[0]
        cand = rec["candidate"]
        assert row["alert_id"] == str(rec["candid"])
        assert row["object_id"] == rec["objectId"]
        assert row["survey"] == "ztf"
        assert row["ra"] == cand["ra"] and row["dec"] == cand["dec"]
        assert row["obs_jd"] == cand["jd"]
        assert row["mag"] == pytest.approx(cand["magpsf"])
        assert row["mag_err"] == pytest.approx(cand["sigmapsf"])
        assert row["band"] == FID[cand["fid"]]
        assert row["reliability"] == pytest.approx(cand["rb"])
        assert row["is_negative"] == (cand["isdiffpos"] in ("f", "0"))
        prv = rec.get("prv_candidates") or []
        detections = [p["jd"] for p in prv if p["candid"] is not None] + [cand["jd"]]
        limits = [p["jd"] for p in prv if p["candid"] is None and p["jd"] < cand["jd"]]
        assert row["n_detections"] == len(detections)
        assert row["first_detection_jd"] == min(detections)
        if limits:
            assert row["last_nondetection_jd"] == max(limits)
        else:
            assert math.isnan(row["last_nondetection_jd"])
        assert len(row["hist_jd"]) == len(prv) + 1
        assert list(row["hist_jd"]) == sorted(row["hist_jd"])
        # -999 "none" becomes null in our columns, is kept in survey_fields
        fields = json.loads(row["survey_fields"])
        assert fields["candidate"]["ssdistnr"] == cand["ssdistnr"]
        if cand["ssdistnr"] == -999.0:
            assert math.isnan(row["ztf_ssdistnr"])
        else:
            assert row["ztf_ssdistnr"] == pytest.approx(cand["ssdistnr"])
        assert "prv_candidates" not in fields and "cutoutScience" not in fields
    # observation time: the JD as a UTC timestamp
    first = ztf_frame.iloc[0]
    expected = pd.Timestamp("1858-11-17", tz="UTC") + pd.to_timedelta(
        first["obs_jd"] - 2400000.5, unit="D"
    )
    assert abs(first["obs_time"] - expected) < pd.Timedelta(microseconds=2)


def test_lsst_flattened_values_match_the_raw_packets(
    raw_lsst: list[RawAlert], lsst_frame: pd.DataFrame
) -> None:
    for raw, (_, row) in zip(raw_lsst, lsst_frame.iterrows(), strict=True):
        rec = raw.records[0]
        src = rec["diaSource"]
        assert row["alert_id"] == str(src["diaSourceId"])
        assert row["schema_version"] == "9.0"
        # TAI -> UTC: 37 s since 2017
        assert row["obs_jd"] == pytest.approx(
            src["midpointMjdTai"] + 2400000.5 - 37 / 86400, abs=1e-9
        )
        if src["psfFlux"] > 0:
            assert row["mag"] == pytest.approx(31.4 - 2.5 * np.log10(src["psfFlux"]))
            assert row["mag_err"] == pytest.approx(1.0857362 * src["psfFluxErr"] / src["psfFlux"])
        else:
            assert math.isnan(row["mag"]) and row["is_negative"]
        assert row["band"] == src["band"]
        assert row["reliability"] == pytest.approx(src["reliability"])
        if src["diaObjectId"] == 0:
            assert row["object_id"] is None
            assert row["lsst_ss_object_id"] == str(src["ssObjectId"])
        else:
            assert row["object_id"] == str(src["diaObjectId"])
            assert row["lsst_ss_object_id"] is None
        assert row["n_detections"] == 1 + len(rec["prvDiaSources"] or [])
        assert set(row["lsst_flags_set"]) == {k for k, v in src.items() if v is True}
    # 4 alerts of the set are asteroids (ssSource, no diaObject)
    assert lsst_frame["lsst_ss_object_id"].notna().sum() == 4


def test_leap_second_table_matches_erfa() -> None:
    for year in range(1972, 2025):
        for month in (1, 7):
            mjd = erfa.cal2jd(year, month, 1)[1] + 0.5
            dat = erfa.dat(year, month, 1, 0.5)
            tai = mjd + dat / 86400
            offset = (tai + 2400000.5 - times.tai_mjd_to_utc_jd(tai)) * 86400
            assert offset == pytest.approx(dat, abs=1e-3), (year, month)


# --------------------------------------------------------------------------- #
# Errors: corrupt bytes, unknown versions
# --------------------------------------------------------------------------- #


def test_truncated_payloads_raise_corrupt_alert(
    raw_ztf: list[RawAlert], raw_lsst: list[RawAlert]
) -> None:
    for raw in (raw_ztf[0], raw_ztf[-1], raw_lsst[0]):
        payload = raw.payload
        cuts = list(range(0, len(payload), max(1, len(payload) // 150))) + [len(payload) - 1]
        for cut in cuts:
            with pytest.raises(CorruptAlert):
                decode.decode_avro(payload[:cut])


def test_garbage_and_trailing_bytes_raise_corrupt_alert(raw_ztf: list[RawAlert]) -> None:
    for bad in (b"", b"Obj", b"hello world", raw_ztf[0].payload + b"\x02\x02xx"):
        with pytest.raises(CorruptAlert):
            decode.decode_avro(bad)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_flipped_bytes_never_escape_as_other_errors(
    data: st.DataObject, raw_lsst: list[RawAlert]
) -> None:
    payload = bytearray(raw_lsst[3].payload)
    for _ in range(data.draw(st.integers(1, 4))):
        payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    try:
        records = decode.decode_avro(bytes(payload))
    except (CorruptAlert, UnknownSchema):
        return
    assert len(records) == 1


def _reserialise(
    raw: RawAlert, edit: dict[str, object], candidate_edit: dict[str, object]
) -> bytes:
    record = dict(raw.records[0])
    record.update(edit)
    if candidate_edit:
        record["candidate"] = {**record["candidate"], **candidate_edit}
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(raw.writer_schema), [record])
    return out.getvalue()


def test_unknown_ztf_version_raises_unknown_schema_naming_it(raw_ztf: list[RawAlert]) -> None:
    raw = next(r for r in raw_ztf if r.records[0].get("schemavsn") == "3.3")
    payload = _reserialise(raw, {"schemavsn": "9.99"}, {})
    with pytest.raises(UnknownSchema, match=r"ztf, version 9\.99") as info:
        decode.decode_avro(payload)
    assert info.value.version == "9.99" and info.value.survey == "ztf"


def test_official_lsst_samples_known_and_unknown_versions(data_dir: Path) -> None:
    root = data_dir / "alerts/lsst/schema"
    known = []
    for path in sorted(root.glob("*/*/sample_data/fakeAlert.avro")):
        major, minor = path.parts[-4], path.parts[-3]
        version = f"{major}.{minor}"
        if version in lsst.LSST_SCHEMA_VERSIONS:
            frame = decode.flatten(decode.decode_avro(path.read_bytes()), "lsst")
            assert frame["schema_version"].tolist() == [version]
            known.append(version)
        else:
            with pytest.raises(UnknownSchema, match=f"lsst, version {version}"):
                decode.decode_avro(path.read_bytes())
    assert known == ["10.0", "11.0", "8.0", "9.0"]


def test_confluent_framing_needs_the_registry_schema(raw_lsst: list[RawAlert]) -> None:
    raw = raw_lsst[0]
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(raw.writer_schema), raw.records[0])
    framed = b"\x00" + struct.pack(">I", 900) + body.getvalue()
    records = decode.decode_avro(framed, writer_schemas={900: raw.writer_schema})
    assert _strip_meta(records) == raw.records
    with pytest.raises(UnknownSchema, match="Confluent schema id 900"):
        decode.decode_avro(framed)
    with pytest.raises(CorruptAlert):
        decode.decode_avro(framed[:-10], writer_schemas={900: raw.writer_schema})


# --------------------------------------------------------------------------- #
# Bad coordinates are flagged, never dropped
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("ra", "dec"), [(float("nan"), 10.0), (12.0, float("nan")), (361.0, 0.0), (10.0, -95.0)]
)
def test_bad_coordinates_keep_the_row_with_a_flag(
    raw_ztf: list[RawAlert], ra: float, dec: float
) -> None:
    raw = raw_ztf[10]
    payload = _reserialise(raw, {}, {"ra": ra, "dec": dec})
    frame, failures = decode.decode_payloads([raw_ztf[11].payload, payload])
    assert failures == []
    assert len(frame) == 2
    assert frame["bad_coordinates"].tolist() == [False, True]
    row = frame.iloc[1]
    assert row["alert_id"] == str(raw.records[0]["candid"])
    assert (math.isnan(row["ra"]) and math.isnan(ra)) or row["ra"] == ra
    json.loads(row["survey_fields"])  # NaN became null: strict JSON


def test_decode_payloads_keeps_failures_with_reasons(
    raw_ztf: list[RawAlert], raw_lsst: list[RawAlert]
) -> None:
    payloads = [raw_ztf[0].payload, b"junk", raw_lsst[0].payload, raw_ztf[1].payload[:500]]
    frame, failures = decode.decode_payloads(payloads)
    assert frame["survey"].tolist() == ["ztf", "lsst"]
    assert [(f.index, f.error) for f in failures] == [(1, "CorruptAlert"), (3, "CorruptAlert")]


def test_flatten_refuses_the_wrong_survey(raw_lsst: list[RawAlert]) -> None:
    records = decode.decode_avro(raw_lsst[0].payload)
    with pytest.raises(ValueError, match="lsst alert"):
        decode.flatten(records, "ztf")


# --------------------------------------------------------------------------- #
# Fink Parquet mapped to the model
# --------------------------------------------------------------------------- #


def test_fink_parquet_maps_to_the_model(data_dir: Path) -> None:
    path = data_dir / "alerts/ztf/parquet/20240115_fink-mm"
    frame = files.read_alert_files([path])
    raw = pq.read_table(path, columns=["candid", "objectId", "candidate", "roid", "cdsxmatch"])
    rows = raw.to_pylist()
    assert frame["schema_version"].unique().tolist() == ["4.02"]
    for rec, (_, row) in zip(rows[:50], frame.head(50).iterrows(), strict=True):
        assert row["alert_id"] == str(rec["candid"])
        assert row["object_id"] == rec["objectId"]
        assert row["ra"] == rec["candidate"]["ra"]
        assert row["obs_jd"] == rec["candidate"]["jd"]
        fields = json.loads(row["survey_fields"])
        # Fink's own columns travel in survey_fields
        assert fields["roid"] == rec["roid"] and fields["cdsxmatch"] == rec["cdsxmatch"]
        assert "cutoutScience" not in fields


def test_model_has_no_sentinels(ztf_frame: pd.DataFrame, lsst_frame: pd.DataFrame) -> None:
    for frame in (ztf_frame, lsst_frame):
        numeric = frame.select_dtypes(include=["number"])
        assert not (numeric == -999).any().any()
        assert not (numeric == -1).any().any()


@pytest.mark.parametrize("module", ["decode", "wire", "rows", "ztf", "lsst", "times"])
def test_doctests_of_the_decoding_modules(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"fink_core.{module}"))
    assert result.failed == 0 and result.attempted > 0
