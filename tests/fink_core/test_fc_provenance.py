"""Provenance on every enriched alert: version, configuration hash, catalogue and rule
versions, on the real alerts (decode-error rows included), through the Parquet
archive, and with archives written before the columns existed."""

from __future__ import annotations

import ast
import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

import coincidence.rules
import fink_core.classify
import fink_core.fink_science
import fink_core.quality
import mm_broker
from fink_core import catalogues as C
from fink_core.pipeline import (
    PIPELINE_COLUMNS,
    enrich,
    enriched_arrow_schema,
    enriched_stream,
    start_archive,
    write_enriched_batch,
)
from mm_broker.app.provenance import rule_versions
from mm_broker.core import config
from mm_broker.core.provenance import PROVENANCE_COLUMNS, Provenance, catalogue_version

ALERT_FOLDERS = ("alerts/ztf/avro", "alerts/lsst/avro")


def _payloads(data_dir: Path, folders: tuple[str, ...] = ALERT_FOLDERS) -> list[bytes]:
    files = sorted(p for f in folders for p in (data_dir / f).rglob("*.avro"))
    return [p.read_bytes() for p in files]


@pytest.fixture(scope="module")
def run_settings() -> config.Settings:
    """Defaults with one override (not the session's environment)."""
    return config.load(environ={"MM_KAFKA__PORT": "19092"})


@pytest.fixture(scope="module")
def provenance(run_settings: config.Settings, catalogues: list[C.Catalogue]) -> Provenance:
    return Provenance.from_settings(run_settings, catalogues, rule_versions())


@pytest.fixture(scope="module")
def enriched(data_dir: Path, catalogues: list[C.Catalogue],
             provenance: Provenance) -> pd.DataFrame:
    """Every real ZTF and LSST Avro alert, plus a truncated and a garbage payload."""
    values = _payloads(data_dir)
    values += [values[0][:300], b"not an alert"]
    return enrich(values, catalogues, topics=["t"] * len(values),
                  partitions=[0] * len(values), offsets=list(range(len(values))),
                  provenance=provenance)


def test_every_enriched_row_carries_the_provenance(
        enriched: pd.DataFrame, run_settings: config.Settings, catalogues: list[C.Catalogue],
        data_dir: Path) -> None:
    good = enriched[enriched["decode_error"].isna()]
    bad = enriched[enriched["decode_error"].notna()]
    assert len(good) >= 828 and len(bad) == 2
    assert set(good["survey"]) == {"ztf", "lsst"}
    # Version: mm_broker's own, MAJOR.MINOR.PATCH.
    assert re.fullmatch(r"\d+\.\d+\.\d+", mm_broker.__version__)
    assert (enriched["prov_mm_broker_version"] == mm_broker.__version__).all()
    # Configuration: the hash of these settings (not of the defaults).
    assert run_settings.hash() != config.load(environ={}).hash()
    assert (enriched["prov_config_hash"] == run_settings.hash()).all()
    # Catalogues: one compact JSON per row, equal to the loaded catalogues' provenance.
    assert enriched["prov_catalogues"].nunique() == 1
    text = enriched["prov_catalogues"].iloc[0]
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    cats = json.loads(text)
    assert cats == {k: catalogue_version(v) for k, v in C.provenance(catalogues).items()}
    assert set(cats) == {c.key for c in catalogues}
    # ... and each version names the files' SHA-256 (checked here from the bytes on disk)
    # and the match radius.
    folder = data_dir / "catalogues"
    for spec in C.DEFAULT_CATALOGUES:
        for name in spec.files:
            digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()[:12]
            assert digest in cats[spec.key], (spec.key, name)
        assert cats[spec.key].endswith(f" r={spec.radius_arcsec:g}arcsec")
    assert cats["4lac"].startswith("v28 sha256:")  # FITS header VERSION of 4LAC-DR3
    # Rules: the rule-set versions of the code.
    assert enriched["prov_rules"].nunique() == 1
    assert json.loads(enriched["prov_rules"].iloc[0]) == {
        "quality": fink_core.quality.RULES_VERSION,
        "classification": fink_core.classify.RULES_VERSION,
        "coincidence": coincidence.rules.RULES_VERSION,
        **fink_core.fink_science.versions()}
    for column in PROVENANCE_COLUMNS:
        assert column in PIPELINE_COLUMNS
        assert bad[column].notna().all()  # decode-error rows too


def test_provenance_survives_the_archive(enriched: pd.DataFrame, provenance: Provenance,
                                         catalogues: list[C.Catalogue],
                                         tmp_path: Path) -> None:
    keys = [c.key for c in catalogues]
    assert write_enriched_batch(enriched, tmp_path.as_uri(), 7, keys) == len(enriched)
    back = ds.dataset(str(tmp_path / "enriched"), format="parquet",
                      partitioning="hive").to_table().to_pandas()
    assert len(back) == len(enriched)
    for column, value in provenance.columns().items():
        assert back[column].tolist() == [value] * len(back)
    schema = enriched_arrow_schema(keys)
    assert all(schema.field(c).type == pa.string() for c in PROVENANCE_COLUMNS)
    with pytest.raises(ValueError, match="without provenance columns"):
        write_enriched_batch(enriched.drop(columns=["prov_rules"]), tmp_path.as_uri(), 8, keys)


def test_changing_a_setting_changes_the_recorded_hash(
        data_dir: Path, run_settings: config.Settings, catalogues: list[C.Catalogue]) -> None:
    values = _payloads(data_dir, ("alerts/ztf/avro/20180626_skyportal",))
    other = run_settings.with_values({"coincidence.window_before_s": 900.0})
    same = config.load(environ={"MM_KAFKA__PORT": "19092"})
    hashes = {}
    for name, s in (("settings", run_settings), ("other", other), ("same", same)):
        out = enrich(values, catalogues, provenance=Provenance.from_settings(s, catalogues,
                                                                         rule_versions()))
        assert out["prov_config_hash"].nunique() == 1
        hashes[name] = out["prov_config_hash"].iloc[0]
    assert hashes["other"] == other.hash() != hashes["settings"]
    assert hashes["same"] == hashes["settings"]  # stable for equal settings


def test_catalogues_change_the_recorded_versions(data_dir: Path,
                                                 catalogues: list[C.Catalogue]) -> None:
    values = _payloads(data_dir, ("alerts/ztf/avro/20180626_skyportal",))
    gcvs = [c for c in catalogues if c.key == "gcvs"]
    wider = [C.load_catalogue(data_dir / "catalogues/gcvs.parquet", "gcvs", 3.0)]
    rows = [json.loads(enrich(values, cats, provenance=Provenance.build("h", cats, rule_versions()))
                       ["prov_catalogues"].iloc[0]) for cats in (gcvs, wider, [])]
    assert rows[0]["gcvs"].endswith("r=1.5arcsec") and rows[1]["gcvs"].endswith("r=3arcsec")
    assert rows[0]["gcvs"].split()[0] == rows[1]["gcvs"].split()[0]  # same file
    assert rows[2] == {}


def test_enrich_without_a_provenance_says_default_configuration(
        data_dir: Path, catalogues: list[C.Catalogue]) -> None:
    values = _payloads(data_dir, ("alerts/ztf/avro/20180626_skyportal",))
    out = enrich(values, catalogues)
    assert (out["prov_config_hash"] == config.load(environ={}).hash()).all()
    assert (out["prov_mm_broker_version"] == mm_broker.__version__).all()


def test_enrich_without_a_provenance_names_the_rule_sets_it_applies(
        data_dir: Path, catalogues: list[C.Catalogue]) -> None:
    """Direct enrichment applies the quality cuts and the classification, not the
    coincidence rules: it says so (a run names all three, see below)."""
    from fink_core.annotate import rule_versions as pipeline_rule_versions

    values = _payloads(data_dir, ("alerts/ztf/avro/20180626_skyportal",))
    out = enrich(values, catalogues)
    assert json.loads(out["prov_rules"].iloc[0]) == pipeline_rule_versions() == {
        "quality": fink_core.quality.RULES_VERSION,
        "classification": fink_core.classify.RULES_VERSION,
        **fink_core.fink_science.versions()}
    assert out["prov_rules"].nunique() == 1


def test_a_run_names_the_three_rule_sets(run_settings: config.Settings) -> None:
    """The one place the application assembles them; a provenance takes them as given."""
    expected = {"quality": fink_core.quality.RULES_VERSION,
                "classification": fink_core.classify.RULES_VERSION,
                "coincidence": coincidence.rules.RULES_VERSION,
                **fink_core.fink_science.versions()}
    assert rule_versions() == expected
    p = Provenance.from_settings(run_settings, [], rule_versions())
    assert p.rule_versions() == expected
    assert p.record_fields()["rule_versions"] == expected
    assert json.loads(p.columns()["prov_rules"]) == expected
    with pytest.raises(ValueError, match="versions of the rule sets"):
        Provenance.from_settings(run_settings, [], {})
    with pytest.raises(ValueError, match="non-empty strings"):
        Provenance.build("h", [], {"quality": ""})


def test_the_pipeline_refuses_a_missing_or_foreign_provenance(
        catalogues: list[C.Catalogue]) -> None:
    # Checked before Spark is touched (hence no session here).
    other = Provenance.build("h", catalogues[:2], rule_versions())
    with pytest.raises(ValueError, match="provenance names catalogues"):
        enriched_stream(None, None, catalogues, other)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Provenance"):
        enriched_stream(None, None, catalogues, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs the run's provenance"):
        start_archive(None, None, catalogues, "file:///x", "file:///y")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hash"):
        Provenance.build("", catalogues, rule_versions())


def test_archives_without_the_columns_still_read(
        data_dir: Path, catalogues: list[C.Catalogue], provenance: Provenance,
        tmp_path: Path) -> None:
    """An archive night written before the provenance columns, next to a new one."""
    from coincidence.archive_store import ArchiveAlertStore

    keys = [c.key for c in catalogues]
    schema = enriched_arrow_schema(keys)
    old = enrich(_payloads(data_dir, ("alerts/ztf/avro/20180626_skyportal",)), catalogues,
                 provenance=provenance).drop(columns=list(PROVENANCE_COLUMNS))
    old_schema = pa.schema([f for f in schema if f.name not in PROVENANCE_COLUMNS])
    ds.write_dataset(pa.Table.from_pandas(old, schema=old_schema, preserve_index=False),
                     str(tmp_path / "enriched"), format="parquet",
                     partitioning=["night", "hpx1"], partitioning_flavor="hive",
                     basename_template="old-{i}.parquet")
    new = enrich(_payloads(data_dir, ("alerts/ztf/avro/20200101_fink-broker",)), catalogues,
                 provenance=provenance)
    write_enriched_batch(new, tmp_path.as_uri(), 0, keys)
    # The coincidence store reads both (it selects its own columns).
    store = ArchiveAlertStore(tmp_path.as_uri())
    start = int(datetime(2018, 1, 1, tzinfo=UTC).timestamp() * 1e9)
    end = int(datetime(2020, 12, 31, tzinfo=UTC).timestamp() * 1e9)
    batch = store.query(start, end, [[0, 12 * 4**29]])
    expected = set(old["alert_id"].astype(str)) | set(new["alert_id"].astype(str))
    assert len(old) == 3 and len(new) == 50
    assert set(batch.alert_id.tolist()) == expected
    # A dataset read with the current schema: old rows have null provenance.
    table = ds.dataset(str(tmp_path / "enriched"), format="parquet", schema=schema,
                       partitioning=ds.partitioning(pa.schema([("night", pa.string()),
                                                               ("hpx1", pa.int32())]),
                                                    flavor="hive")).to_table()
    frame = table.to_pandas()
    is_old = frame["alert_id"].astype(str).isin(set(old["alert_id"].astype(str)))
    assert frame.loc[is_old, "prov_config_hash"].isna().all()
    assert (frame.loc[~is_old, "prov_config_hash"] == provenance.config_hash).all()


# --------------------------------------------------------------------------- #
# Rule versions follow the rules
# --------------------------------------------------------------------------- #


def _rule_fingerprint(module: ModuleType) -> str:
    """Hash of a rule module's code: docstrings, comments, formatting, imports (where
    a name comes from is not a rule) and the ``RULES_VERSION`` line left out, so only
    a change of the rules changes it."""
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text("utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        node.body = [  # type: ignore[attr-defined]
            n for n in body
            if not isinstance(n, ast.Import | ast.ImportFrom)
            and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
                    and isinstance(n.value.value, str))
            and not (isinstance(n, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "RULES_VERSION" for t in n.targets))
        ] or [ast.Pass()]
    return hashlib.sha256(ast.unparse(tree).encode()).hexdigest()[:16]


#: Fingerprint of each rule module at each of its versions. When a test below fails:
#: a rule changed, so bump the module's RULES_VERSION, list the change in
#: CHANGELOG.md, and add the new (version, fingerprint) here; never edit an old line.
RULE_FINGERPRINTS = {
    ("fink_core.quality", "1.0.0"): "ef6d47ff514decc9",
    ("fink_core.classify", "1.0.0"): "c9bcddde4b61c132",
    ("fink_core.classify", "1.1.0"): "fce91bb1481b10b8",
    ("coincidence.rules", "1.0.0"): "21e84e5a38e417a0",
    ("coincidence.rules", "1.0.1"): "d2143638ece59998",
}


@pytest.mark.parametrize("module", [fink_core.quality, fink_core.classify, coincidence.rules],
                         ids=lambda m: m.__name__)
def test_rule_versions_are_bumped_when_the_rules_change(module: ModuleType) -> None:
    version = module.RULES_VERSION
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    key = (module.__name__, version)
    assert key in RULE_FINGERPRINTS, f"record the fingerprint of {key}"
    assert _rule_fingerprint(module) == RULE_FINGERPRINTS[key], (
        f"{module.__name__} changed but RULES_VERSION is still {version}: bump it")


def test_doctests() -> None:
    import doctest

    import mm_broker.core.provenance

    result = doctest.testmod(mm_broker.core.provenance)
    assert result.failed == 0 and result.attempted > 0
