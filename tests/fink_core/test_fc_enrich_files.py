"""``mm-broker alerts enrich PATH... --out DIR``: Avro folders and Fink Parquet tables
into enriched Parquet files, every row with its alert_id, Fink's own columns kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from fc_data import FINK_NIGHT, PARQUET_COUNTS

from fink_core import catalogues as C
from fink_core.fink_science import FINK_COLUMNS
from fink_core.pipeline import enriched_arrow_schema
from mm_broker.app.cli import main
from mm_broker.app.enrich import enrich_files
from mm_broker.app.provenance import rule_versions
from mm_broker.core.provenance import Provenance

AVRO = "alerts/ztf/avro/20200101_fink-broker"


def test_enrich_files_avro_and_parquet(data_dir: Path, catalogues: list[C.Catalogue],
                                       tmp_path: Path) -> None:
    avro = tmp_path / "avro"
    shutil.copytree(data_dir / AVRO, avro)
    (avro / "garbage.avro").write_bytes(b"not an alert")
    provenance = Provenance.build("h", catalogues, rule_versions())
    out = tmp_path / "out"
    summary = enrich_files([data_dir / FINK_NIGHT, avro], out, catalogues, provenance)
    n_avro = len(list((data_dir / AVRO).glob("*.avro")))
    assert summary["rows"] == PARQUET_COUNTS["20240115_fink-mm"] + n_avro
    assert summary["decode_errors"] == 1
    errors = [json.loads(line) for line in (out / "decode_errors.jsonl").read_text().splitlines()]
    assert errors[0]["path"].endswith("garbage.avro") and errors[0]["reason"]
    schema = enriched_arrow_schema([c.key for c in catalogues])
    frames = []
    for name in summary["files"]:
        table = pq.read_table(out / name)
        assert table.schema.names == schema.names
        frames.append(table.to_pandas())
    rows = pd.concat(frames, ignore_index=True)
    assert len(rows) == summary["rows"] and rows["alert_id"].notna().all()
    assert rows["alert_id"].is_unique
    assert (rows["prov_rules"] == provenance.columns()["prov_rules"]).all()
    # Fink's own columns of the Parquet night stay in survey_fields, untouched; ours
    # are beside them.
    fink = pd.read_parquet(data_dir / FINK_NIGHT, columns=["candid", "roid"])
    night = rows[rows["alert_id"].isin(fink["candid"].astype(str))]
    assert len(night) == len(fink)
    stored = {str(c): int(r) for c, r in zip(fink["candid"], fink["roid"], strict=True)}
    assert all(json.loads(s)["roid"] == stored[a]
               for a, s in zip(night["alert_id"], night["survey_fields"], strict=True))
    assert set(FINK_COLUMNS) <= set(rows.columns)
    assert rows["fink_nalerthist"].notna().all()  # every row here is ZTF


def test_the_command(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["alerts", "enrich", str(data_dir / AVRO), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rows"] == len(list((data_dir / AVRO).glob("*.avro")))
    assert [p.name for p in sorted(out.glob("*.parquet"))] == summary["files"]
    assert main(["alerts", "enrich", str(tmp_path / "missing"), "--out", str(out)]) == 1
    assert main(["alerts", "enrich", "--out", str(out)]) == 2
