"""Every real VOEvent of the shared data gets a definite, expected outcome."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from voevent_cases import expected_outcomes, outcome, xml_files

from listeners.parsers.voevent_registry import parse_voevent
from mm_broker.core.errors import NoticeError, UnsupportedFormat
from mm_broker.core.models import Circle, Messenger, Notice, Role, SkyMap

EXPECTED = expected_outcomes()


def test_table_covers_every_xml_file(data_dir: Path) -> None:
    """The table lists exactly the XML files found by walking notices/ and triggers/."""
    found = xml_files(data_dir)
    assert len(found) == 244
    assert set(found) == set(EXPECTED)


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_outcome_matches_table(data_dir: Path, rel: str) -> None:
    """A Notice with the expected event id, or the expected named error and message."""
    row = EXPECTED[rel]
    result = outcome((data_dir / rel).read_bytes())  # anything but NoticeError escapes
    if row.outcome == "notice":
        assert isinstance(result, Notice), f"{rel}: {result}"
        assert result.event_id == row.expect
    else:
        assert isinstance(result, NoticeError), f"{rel}: parsed to {result}"
        assert result.reason == row.outcome
        assert result.message.startswith(row.expect)


def test_outcome_counts_per_folder(data_dir: Path) -> None:
    """Per-folder counts, so that a changed decision shows up as a changed number."""
    counts: dict[str, Counter[str]] = {}
    for rel, row in EXPECTED.items():
        counts.setdefault(str(Path(rel).parent), Counter())[row.outcome] += 1
    assert counts["triggers/voevents/fink-mm_2024-01"] == Counter(notice=31, no_position=1)
    assert counts["notices/svom"] == Counter(notice=41, no_position=32)
    assert counts["notices/lvk"] == Counter(notice=23)
    assert counts["notices/other"] == Counter(unsupported_format=2, unsupported_type=1)
    total = sum((c for c in counts.values()), Counter())
    assert total == Counter(notice=189, no_position=48, unsupported_format=6, unsupported_type=1)


def _walk(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _walk(v)]
    if isinstance(value, list | tuple):
        return [x for v in value for x in _walk(v)]
    return [value]


@pytest.mark.parametrize("rel", sorted(r for r, e in EXPECTED.items() if e.outcome == "notice"))
def test_notice_invariants(data_dir: Path, rel: str) -> None:
    """UTC-aware times, valid geometry, no sentinels, JSON-ready extra/significance."""
    notice = parse_voevent((data_dir / rel).read_bytes())
    for when in (notice.trigger_time, notice.issue_time):
        assert when.tzinfo is not None and when.utcoffset() == UTC.utcoffset(None)
    assert notice.version >= 0
    assert notice.ivorn and notice.ivorn.startswith("ivo://")
    if notice.retraction:
        assert notice.localisation is None
    else:
        assert notice.localisation is not None
    if isinstance(notice.localisation, Circle):
        c = notice.localisation
        assert 0.0 <= c.ra < 360.0 and -90.0 <= c.dec <= 90.0
        assert 0.0 < c.radius_deg < 180.0 and 0.0 < c.containment < 1.0
    json.dumps(notice.significance)
    json.dumps(notice.extra)
    for value in _walk(notice.significance) + _walk(notice.extra):
        if isinstance(value, int | float) and not isinstance(value, bool):
            assert math.isfinite(value)
            assert value not in (-1, -999, -9999), f"sentinel {value} in {rel}"


# --------------------------------------------------------------------------- #
# A sample of files with every field checked.
# --------------------------------------------------------------------------- #


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# fmt: off
# path: (event_id, messenger, notice_type, version, role, trigger time, (ra, dec, r),
#        containment, convention)
CIRCLES: dict[str, tuple[Any, ...]] = {
    "triggers/voevents/fink-mm/voevent_number=9897.xml": (
        "Fermi-GBM:683571622", Messenger.GRB, "FERMI_GBM_FIN_POS", 3_000_041, Role.OBSERVATION,
        "2022-08-30T17:00:17.49", (220.46, 17.23, 18.24), 0.6827, "fermi_gbm_final",
    ),
    "notices/fermi_gbm/fermi_gbm_flt_pos_8132.xml": (
        "Fermi-GBM:792220053", Messenger.GRB, "FERMI_GBM_FLT_POS", 1_000_011, Role.OBSERVATION,
        "2026-02-08T05:07:28.24", (214.2167, 48.1833, 15.8167), 0.6827, "fermi_gbm_flight",
    ),
    "notices/fermi_gbm/fermi_gbm_gnd_pos_1706.xml": (
        "Fermi-GBM:792220053", Messenger.GRB, "FERMI_GBM_GND_POS", 2_000_006, Role.OBSERVATION,
        "2026-02-08T05:07:28.24", (202.97, 35.31, 1.7), 0.6827, "fermi_gbm_ground",
    ),
    "notices/fermi_gbm/externaltrigger_original_data.xml": (
        "Fermi-GBM:524666471", Messenger.GRB, "FERMI_GBM_GND_POS", 2_000_001, Role.OBSERVATION,
        "2017-08-17T12:41:06.47", (186.62, -48.84, 17.45), 0.6827, "fermi_gbm_ground",
    ),
    "notices/fermi_gbm/fermi_subthresh_grb_gcn.xml": (
        "Fermi-GBM-subthreshold:578679123", Messenger.GRB, "FERMI_GBM_SUBTHRESH", 2,
        Role.OBSERVATION, "2019-05-04T16:16:28.22", (143.53, 38.0799, 10.49), 0.6827, "generic",
    ),
    "notices/fermi_lat/fermi_lat_offline_29.xml": (
        "Fermi-LAT:793795080", Messenger.GRB, "FERMI_LAT_OFFLINE", 5_000_003, Role.OBSERVATION,
        "2026-02-26T10:38:18.84", (41.9209, 7.7199, 0.1059), 0.9, "generic",
    ),
    "notices/swift/BAT_GRB_Pos_655721-214.xml": (
        "Swift:655721", Messenger.GRB, "SWIFT_BAT_GRB_POS_ACK", 2_000_001, Role.OBSERVATION,
        "2015-09-15T21:18:24.86", (319.7309, -34.8537, 0.05), 0.9, "swift_bat",
    ),
    "notices/swift/XRT_Pos_655721-326.xml": (
        "Swift:655721", Messenger.GRB, "SWIFT_XRT_POSITION", 3_000_002, Role.OBSERVATION,
        "2015-09-15T21:24:37", (319.6588, -34.9131, 0.001), 0.9, "swift_xrt",
    ),
    "triggers/voevents/fink-mm/swift/voevent_number=8582.xml": (
        "Swift:1121751", Messenger.GRB, "SWIFT_UVOT_POS", 4_000_002, Role.OBSERVATION,
        "2022-08-26T11:56:49", (206.4104, -44.0386, 0.0001), 0.9, "swift_uvot",
    ),
    "notices/swift/swift_bat_grb_pos_test_9264.xml": (
        "Swift:99999", Messenger.GRB, "SWIFT_BAT_GRB_POS_TEST", 2_000_012, Role.TEST,
        "2026-02-07T09:52:30", (36.0, -35.0, 0.05), 0.9, "swift_bat",
    ),
    "triggers/voevents/fink-mm/swift/voevent_number=17834.xml": (
        "Swift:1125106", Messenger.X, "SWIFT_BAT_TRANS", 2_000_001, Role.OBSERVATION,
        "2022-09-23T11:09:46.08", (135.7205, -40.707, 0.05), 0.9, "swift_bat",
    ),
    "triggers/voevents/fink-mm_2024-01/Wakeup_Pos_010472-0-924.xml": (
        "INTEGRAL:10472", Messenger.GRB, "INTEGRAL_WAKEUP", 1_068_920, Role.OBSERVATION,
        "2024-01-15T16:45:55.09", (191.8174, -35.5582, 0.0531), 0.9, "integral_ibas",
    ),
    "triggers/voevents/fink-mm_2024-01/Refined_Pos_010472-1-937.xml": (
        "INTEGRAL:10472", Messenger.GRB, "INTEGRAL_REFINED", 2_068_923, Role.OBSERVATION,
        "2024-01-15T16:46:05.09", (191.8481, -35.5295, 0.05), 0.9, "integral_ibas",
    ),
    "notices/integral/integral_grb_gcn.xml": (
        "INTEGRAL:0", Messenger.GRB, "INTEGRAL_WAKEUP", 1_002_959, Role.TEST,
        "2017-05-23T12:03:23.68", (1.2343, 2.3455, 0.0169), 0.9, "integral_ibas",
    ),
    "notices/icecube/voevent_number=45412.xml": (
        "IceCube:137467_64735045", Messenger.NU, "ICECUBE_ASTROTRACK_GOLD", 0, Role.OBSERVATION,
        "2022-12-23T07:43:00.52", (350.5486, 34.711, 0.6596), 0.9, "icecube_track",
    ),
    "notices/icecube/voevent_number=825.xml": (
        "IceCube:136889_25590129", Messenger.NU, "ICECUBE_CASCADE", 0, Role.OBSERVATION,
        "2022-08-01T04:08:34.26", (150.1126, -9.1693, 12.8963), 0.9, "icecube_cascade",
    ),
    "triggers/voevents/growth-too-marshal/AMON_151115.xml": (
        "AMON-ICECUBE_HESE:2015-11-15T11:53:44.00", Messenger.NU, "AMON_ICECUBE_HESE", 0,
        Role.OBSERVATION, "2015-11-15T11:53:44", (144.8915, -27.9826, 1.0), 0.9, "generic",
    ),
    "notices/svom/eclairs_296.xml": (
        "SVOM:sb26021102", Messenger.GRB, "SVOM_ECLAIRS_WAKEUP", 1_000_001, Role.OBSERVATION,
        "2026-02-11T19:24:23.604", (86.9755, -0.4379, 0.1057), 0.9, "svom_eclairs",
    ),
    "notices/svom/mxt_42.xml": (
        "SVOM:sb26022802", Messenger.GRB, "SVOM_MXT_UPDATE", 4_000_001, Role.OBSERVATION,
        "2026-02-28T21:48:46.626", (237.4077, 26.0255, 0.034), 0.9, "svom_mxt",
    ),
    "notices/svom/svom_voevent_sb25091702_eclairs-catalog.xml": (
        "SVOM:sb25091702", Messenger.X, "SVOM_ECLAIRS_CATALOG", 1_000_001, Role.OBSERVATION,
        "2025-09-17T12:00:45.86", (256.5645, -43.0392, 0.0613), 0.9, "svom_eclairs",
    ),
    "notices/km3net/km3net_voevent_single_HE_event.example.xml": (
        "KM3NeT:KM3-240901A", Messenger.NU, "KM3NET_INITIAL", 1, Role.OBSERVATION,
        "2024-09-01T01:16:47", (10.82, 20.01, 0.9), 0.9, "generic",
    ),
}
# fmt: on


@pytest.mark.parametrize("rel", sorted(CIRCLES))
def test_sample_circle_notices(data_dir: Path, rel: str) -> None:
    """Every field of a sample of circle notices, against the values in the files."""
    event_id, messenger, kind, version, role, t0, (ra, dec, r), containment, conv = CIRCLES[rel]
    n = parse_voevent((data_dir / rel).read_bytes())
    assert (n.event_id, n.messenger, n.notice_type, n.version, n.role) == (
        event_id,
        messenger,
        kind,
        version,
        role,
    )
    assert n.trigger_time == _t(t0)
    assert n.retraction is False
    assert isinstance(n.localisation, Circle)
    c = n.localisation
    assert (c.ra, c.dec, c.radius_deg) == pytest.approx((ra, dec, r), abs=1e-9)
    assert (c.containment, c.convention, c.systematic_deg) == (containment, conv, None)


# fmt: off
# path: (event_id, notice_type, version, role, retraction, trigger time, sky-map URL)
SKYMAPS: dict[str, tuple[Any, ...]] = {
    "notices/lvk/MS181101ab-6-Update.xml": (
        "LVK:MS181101ab", "UPDATE", 6, Role.TEST, False, "2018-11-01T22:22:46.654437",
        "https://emfollow.docs.ligo.org/userguide/_static/bayestar.multiorder.fits,0",
    ),
    "notices/lvk/MS181101ab-5-Retraction.xml": (
        "LVK:MS181101ab", "RETRACTION", 5, Role.TEST, True, "2018-11-01T22:22:46.654437", None,
    ),
    "triggers/voevents/skyportal/GW190425_initial.xml": (
        "LVK:S190425z", "INITIAL", 1, Role.OBSERVATION, False, "2019-04-25T08:18:05.017147",
        "skyportal/tests/data/bayestar.fits.gz",
    ),
    "notices/lvk/G298048-1-Initial.xml": (
        "LVK:G298048", "INITIAL", 1, Role.OBSERVATION, False, "2017-08-17T12:41:04.445710",
        "https://gracedb.ligo.org/apibasic/events/G298048/files/bayestar.fits.gz",
    ),
    "notices/lvk/lvc_preliminary_73129.xml": (
        "LVK:MS260207a", "PRELIMINARY", 2, Role.TEST, False, "2026-02-07T00:55:47.933189",
        "https://gracedb.ligo.org/api/superevents/MS260207a/files/bayestar.multiorder.fits,1",
    ),
}
# fmt: on


@pytest.mark.parametrize("rel", sorted(SKYMAPS))
def test_sample_lvk_notices(data_dir: Path, rel: str) -> None:
    """LVK VOEvents: sky map by URL, mock ids are TEST, retractions have no region."""
    event_id, kind, version, role, retraction, t0, url = SKYMAPS[rel]
    n = parse_voevent((data_dir / rel).read_bytes())
    assert (n.event_id, n.messenger, n.notice_type, n.version, n.role, n.retraction) == (
        event_id,
        Messenger.GW,
        kind,
        version,
        role,
        retraction,
    )
    assert n.trigger_time == _t(t0)
    if url is None:
        assert n.localisation is None
    else:
        assert n.localisation == SkyMap(data=None, url=url, convention="lvk_gw_skymap")


def test_lvk_significance_and_external_coincidence(data_dir: Path) -> None:
    n = parse_voevent((data_dir / "notices/lvk/MS181101ab-6-Update.xml").read_bytes())
    assert n.significance["far_hz"] == pytest.approx(9.11069936486e-14)
    assert n.significance["significant"] is True
    assert n.significance["classification"] == {
        "BNS": 0.95,
        "NSBH": 0.01,
        "BBH": 0.03,
        "Terrestrial": 0.01,
    }
    assert n.significance["instruments"] == ["H1", "L1", "V1"]
    assert n.instrument == "H1,L1,V1"
    assert n.extra["joint_skymap_url"].endswith("combined-ext.multiorder.fits")
    assert n.extra["external_coincidence"]["External_Observatory"] == "Fermi"
    assert n.extra["mock_or_test_id"] is True


def test_svom_retraction_lists_retracted_ivorns(data_dir: Path) -> None:
    n = parse_voevent((data_dir / "notices/svom/grm_286.xml").read_bytes())
    assert (n.event_id, n.retraction, n.localisation) == ("SVOM:sb26020402", True, None)
    assert n.extra["retracted_ivorns"] == [
        "ivo://org.svom/fsc#sb26020402_grm-trigger",
        "ivo://org.svom/fsc#sb26020402_eclairs-preliminary",
        "ivo://org.svom/fsc#sb26020402_not-slewing",
    ]
    assert n.extra["retraction_reason"] == "Determined to not be a viable GRB candidate"
    # The retraction is about the same burst as the GRM trigger it cites.
    grm = outcome((data_dir / "notices/svom/grm_285.xml").read_bytes())
    assert isinstance(grm, NoticeError) and grm.message.startswith("SVOM:sb26020402 ")


def test_icecube_significance(data_dir: Path) -> None:
    n = parse_voevent((data_dir / "notices/icecube/voevent_number=45412.xml").read_bytes())
    assert n.significance["signalness"] == pytest.approx(0.7949)
    assert n.significance["far_per_year"] == pytest.approx(0.2464)
    assert n.significance["far_hz"] == pytest.approx(0.2464 / (365.25 * 86400))
    assert n.extra["src_error_50_deg"] == pytest.approx(0.2569)


def test_swift_xrt_time_is_flagged_as_observation_time(data_dir: Path) -> None:
    n = parse_voevent((data_dir / "notices/swift/XRT_Pos_655721-326.xml").read_bytes())
    bat = parse_voevent((data_dir / "notices/swift/BAT_GRB_Pos_655721-214.xml").read_bytes())
    assert n.event_id == bat.event_id and n.version > bat.version
    assert n.extra["isotime_meaning"] == "observation"
    assert "isotime_meaning" not in bat.extra


def test_namespace_less_archive_form_is_refused_in_strict_mode(data_dir: Path) -> None:
    """fink-mm's archived VOEvents lack the namespace: accepted by default, refused strictly."""
    folder = data_dir / "triggers/voevents/fink-mm_2024-01"
    files = sorted(folder.glob("*.xml"))
    assert len(files) == 32
    for path in files:
        payload = path.read_bytes()
        assert b"<original_prefix>voe</original_prefix>" in payload
        with pytest.raises(UnsupportedFormat, match="no namespace"):
            parse_voevent(payload, strict_namespace=True)
    lenient = outcome((folder / "GBM_Fin_Pos2024-01-15T164537.62_727029942_0-958.xml").read_bytes())
    assert isinstance(lenient, Notice)
    assert "voevent-parse" in lenient.extra["namespace_note"]


def test_topic_is_recorded(data_dir: Path) -> None:
    payload = (data_dir / "triggers/voevents/fink-mm/voevent_number=9897.xml").read_bytes()
    n = parse_voevent(payload, "gcn.classic.voevent.FERMI_GBM_FIN_POS")
    assert n.extra["topic"] == "gcn.classic.voevent.FERMI_GBM_FIN_POS"
    assert n.notice_type == "FERMI_GBM_FIN_POS"
