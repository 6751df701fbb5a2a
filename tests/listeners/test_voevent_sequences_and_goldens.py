"""GBM trigger sequences (one event id, increasing versions) and the fink-mm goldens."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from voevent_cases import expected_outcomes, outcome

from listeners.parsers.voevent_common import VERSION_STRIDE
from listeners.parsers.voevent_registry import parse_voevent
from mm_broker.core.errors import NoPosition
from mm_broker.core.models import Circle, Notice

# TrigID -> (number of Flight, Ground, Final positions) in notices/fermi_gbm/.
SEQUENCES = {792220053: (3, 3, 2), 797587480: (3, 5, 1), 797921044: (4, 3, 1)}
STAGE = {"FERMI_GBM_FLT_POS": 1, "FERMI_GBM_GND_POS": 2, "FERMI_GBM_FIN_POS": 3}


def _gbm_sequence(data_dir: Path, trig_id: int) -> tuple[list[Notice], list[NoPosition]]:
    notices, alerts = [], []
    for path in sorted((data_dir / "notices/fermi_gbm").glob("fermi_gbm_*.xml")):
        result = outcome(path.read_bytes())
        if isinstance(result, Notice) and result.event_id == f"Fermi-GBM:{trig_id}":
            notices.append(result)
        elif isinstance(result, NoPosition) and f"Fermi-GBM:{trig_id} " in result.message:
            alerts.append(result)
    return notices, alerts


@pytest.mark.parametrize("trig_id", sorted(SEQUENCES))
def test_gbm_sequence_one_event_increasing_versions(data_dir: Path, trig_id: int) -> None:
    notices, alerts = _gbm_sequence(data_dir, trig_id)
    n_flt, n_gnd, n_fin = SEQUENCES[trig_id]
    kinds = [n.notice_type for n in notices]
    assert (kinds.count("FERMI_GBM_FLT_POS"), kinds.count("FERMI_GBM_GND_POS")) == (n_flt, n_gnd)
    assert kinds.count("FERMI_GBM_FIN_POS") == n_fin
    # The Alert has no position, but its rejection names the same event.
    assert len(alerts) == 1 and "FERMI_GBM_ALERT" in alerts[0].message
    assert {n.event_id for n in notices} == {f"Fermi-GBM:{trig_id}"}
    assert len({n.trigger_time for n in notices}) == 1

    versions = [n.version for n in notices]
    assert len(set(versions)) == len(versions)
    by_version = sorted(notices, key=lambda n: n.version)
    # Stages in order: every Flight < every Ground < every Final.
    assert [STAGE[n.notice_type] for n in by_version] == sorted(STAGE[k] for k in kinds)
    # Within a stage, versions follow the issue order of the packets.
    for kind in STAGE:
        stage = [n for n in by_version if n.notice_type == kind]
        assert [n.issue_time for n in stage] == sorted(n.issue_time for n in stage)
        assert all(n.version // VERSION_STRIDE == STAGE[kind] for n in stage)
    # The final position is last: highest version and the last one issued.
    last = by_version[-1]
    assert last.notice_type == "FERMI_GBM_FIN_POS"
    assert last.issue_time == max(n.issue_time for n in notices)


def test_gbm_792220053_final_position(data_dir: Path) -> None:
    notices, _ = _gbm_sequence(data_dir, 792220053)
    last = max(notices, key=lambda n: n.version)
    assert last.ivorn is not None and last.ivorn.endswith(
        "792220053_0-320"
    )  # the Final re-issued at 13:40:45
    assert last.issue_time == datetime(2026, 2, 8, 13, 40, 45, tzinfo=UTC)
    assert last.localisation == Circle(204.38, 33.04, 1.0, 0.6827, None, "fermi_gbm_final")


def test_finkmm_golden_683571622(data_dir: Path) -> None:
    """fink-mm's expected parse of GBM Fin_Pos 683571622 agrees on time and position."""
    golden = pd.read_parquet(data_dir / "fink-mm/FusRoman-fink-mm/test_data/683571622_0_test")
    row = golden.iloc[0]
    payload = (data_dir / "triggers/voevents/fink-mm/voevent_number=9897.xml").read_bytes()
    n = parse_voevent(payload)
    assert n.event_id == f"Fermi-GBM:{row['triggerId']}"
    assert n.ivorn == row["ivorn"]
    expected_t0 = datetime.fromisoformat(str(row["triggerTimeUTC"])).replace(tzinfo=UTC)
    assert n.trigger_time == expected_t0
    assert isinstance(n.localisation, Circle)
    assert n.localisation.ra == pytest.approx(row["ra"], abs=1e-9)
    assert n.localisation.dec == pytest.approx(row["dec"], abs=1e-9)
    assert n.localisation.radius_deg * 60.0 == pytest.approx(row["err_arcmin"], rel=1e-12)


def _store_rows(data_dir: Path) -> list[dict[str, str]]:
    index = data_dir / "fink-mm/derived/finkmm_gcn_store_2024-01_index.csv"
    with index.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r for r in rows if r["shared_data_copies"].split(";")[0].endswith(".xml")]


def test_finkmm_store_index_agrees(data_dir: Path) -> None:
    """The 32 VOEvents of fink-mm's January 2024 store: same trigger time and position.

    fink-mm stores GBM radii in arcmin but Swift/INTEGRAL radii in degrees under the
    same ``err_arcmin`` column (a known peer defect); both are checked as stored.
    fink-mm kept the Swift FOM notice, which we reject (no error radius of its own).
    """
    rows = _store_rows(data_dir)
    assert len(rows) == 32
    expected = expected_outcomes()
    compared = 0
    for row in rows:
        rel = row["shared_data_copies"].split(";")[0]
        result = outcome((data_dir / rel).read_bytes())
        if expected[rel].outcome != "notice":
            assert isinstance(result, NoPosition) and row["instrument"] == "FOM"
            continue
        assert isinstance(result, Notice), rel
        assert result.ivorn == row["ivorn"]
        t0 = datetime.fromisoformat(row["triggerTimeUTC"]).astimezone(UTC)
        assert result.trigger_time == t0, rel
        circle = result.localisation
        assert isinstance(circle, Circle)
        assert (circle.ra, circle.dec) == pytest.approx(
            (float(row["ra"]), float(row["dec"])), abs=1e-9
        )
        scale = 60.0 if row["observatory"] == "Fermi" else 1.0
        assert circle.radius_deg * scale == pytest.approx(
            float(row["err_arcmin_as_stored"]), rel=1e-9
        )
        compared += 1
    assert compared == 31
