"""GCN unified-schema parsers: mission rules, on the real files and mutations of them."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from listeners.parsers import (
    json_einstein_probe,
    json_gcn_unified,
    json_icecube,
    json_km3net,
    json_superk,
    json_swift,
)
from listeners.parsers.json_registry import parse_json
from mm_broker.core.errors import (
    BadCoordinates,
    BadSkyMap,
    NoPosition,
    NoticeError,
    SchemaError,
)
from mm_broker.core.models import Box, Circle, Ellipse, Messenger, Notice, Role, SkyMap

pytestmark = pytest.mark.filterwarnings("error")

EP_247 = "notices/einstein_probe/alert_247.json"
EP240508 = "triggers/voevents/skyportal/EP240508.json"
ICECUBE_TRACK = "notices/icecube/single_neutrino_alerts.gold_bronze_track_alerts.example.json"
ICECUBE_LVK = "notices/icecube/lvk_nu_track_search.example.json"
GUANO_ARC = "notices/swift/guano.loc_arc_min.example.json"
GUANO_MAP = "notices/swift/guano.loc_map.example.json"
GBM_MAP = "skymaps/grb/GRB180116A_glg_healpix_all_bn180116026.fit"
CORE = "notices/gcn_schema_core/{}.example.json"


def _doc(read_notice: Callable[[str], bytes], rel: str) -> dict[str, Any]:
    doc = json.loads(read_notice(rel))
    assert isinstance(doc, dict)
    return doc


def _bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode("utf-8")


# --------------------------------------------------------------------------- #
# Einstein Probe
# --------------------------------------------------------------------------- #


def test_einstein_probe_alert(
    read_notice: Callable[[str], bytes], notice_invariants: Callable[[Notice], None]
) -> None:
    notice = json_einstein_probe.parse(read_notice(EP_247))
    notice_invariants(notice)
    assert notice.event_id == "EP:01709259773"
    assert (notice.messenger, notice.mission, notice.instrument) == (
        Messenger.X,
        "Einstein Probe",
        "WXT",
    )
    assert notice.localisation == Circle(
        184.664, -6.146, 0.05174976, 0.9, None, "einstein_probe_wxt_90"
    )
    # No alert_datetime in real WXT alerts: issued "at" the trigger, and said so.
    assert notice.issue_time == notice.trigger_time
    assert notice.extra["issue_time_source"].startswith("trigger_time")
    assert notice.significance == {"image_snr": 7.0}
    assert notice.extra["net_count_rate"] == 0.07


def test_einstein_probe_without_id_gets_a_time_based_id(
    read_notice: Callable[[str], bytes],
) -> None:
    notice = json_einstein_probe.parse(read_notice(EP240508))
    assert notice.event_id == "EP:WXT-20240508T073801.151Z"
    assert notice.extra["event_id_source"].startswith("instrument and trigger_time")
    assert notice.trigger_time == datetime(2024, 5, 8, 7, 38, 1, 151000, tzinfo=UTC)


def test_einstein_probe_stated_systematic_flag_wins(read_notice: Callable[[str], bytes]) -> None:
    doc = _doc(read_notice, EP_247)
    doc["systematic_included"] = False
    doc["containment_probability"] = 0.68
    loc = json_einstein_probe.parse(_bytes(doc)).localisation
    assert isinstance(loc, Circle)
    assert (loc.containment, loc.systematic_deg) == (0.68, None)


def test_unified_without_trigger_time(read_notice: Callable[[str], bytes]) -> None:
    for rel in (EP_247, EP240508):
        doc = _doc(read_notice, rel)
        del doc["trigger_time"]
        with pytest.raises(SchemaError, match=r"missing required key 'trigger_time'"):
            parse_json(_bytes(doc))


# --------------------------------------------------------------------------- #
# IceCube
# --------------------------------------------------------------------------- #


def test_icecube_track_alert(read_notice: Callable[[str], bytes]) -> None:
    notice = json_icecube.parse_gold_bronze(read_notice(ICECUBE_TRACK))
    assert notice.event_id == "IceCube:137840_57034692"
    assert notice.notice_type == "ICECUBE_ASTROTRACK_BRONZE_INITIAL"
    assert notice.localisation == Circle(345.82, 9.01, 0.5, 0.9, None, "icecube_90")
    assert notice.significance == {"far_hz": 8.029e-8, "p_astro": 0.34064}
    assert notice.extra["healpix_url"].endswith(".fits.gz")
    assert notice.extra["systematic_included"] is False
    assert notice.extra["nu_energy"] == 127.29


def test_icecube_split_ids_give_the_same_event(read_notice: Callable[[str], bytes]) -> None:
    doc = _doc(read_notice, ICECUBE_TRACK)
    doc["id"] = ["137840", "57034692"]
    doc["alert_type"] = "update"
    doc["record_number"] = 2
    notice = json_icecube.parse_gold_bronze(_bytes(doc))
    assert notice.event_id == "IceCube:137840_57034692"
    assert (notice.notice_type, notice.version) == ("ICECUBE_ASTROTRACK_BRONZE_UPDATE", 2)


def test_icecube_earlier_array_errors(read_notice: Callable[[str], bytes]) -> None:
    doc = _doc(read_notice, ICECUBE_TRACK)
    del doc["ra_dec_error"]
    doc.update(uncertainty_shape="circle", ra_uncertainty=[0.43])
    loc = json_icecube.parse_gold_bronze(_bytes(doc)).localisation
    assert loc == Circle(345.82, 9.01, 0.43, 0.9, None, "icecube_90")


def test_icecube_asymmetric_errors_give_a_box(read_notice: Callable[[str], bytes]) -> None:
    doc = _doc(read_notice, ICECUBE_TRACK)
    del doc["ra_dec_error"]
    doc.update(ra_uncertainty=[-1.20, 0.97], dec_uncertainty=[-0.55, 0.61])
    loc = json_icecube.parse_gold_bronze(_bytes(doc)).localisation
    assert loc == Box(345.82, 9.01, 1.20, 0.97, 0.55, 0.61, 0.9, "icecube_90")
    doc["dec_uncertainty"] = [0.5]
    with pytest.raises(SchemaError, match=r"must be \[radius\] or two \[minus, plus\] pairs"):
        json_icecube.parse_gold_bronze(_bytes(doc))


def test_icecube_lvk_nu_track_search(read_notice: Callable[[str], bytes]) -> None:
    notice = json_icecube.parse_lvk_nu_track_search(read_notice(ICECUBE_LVK))
    assert notice.event_id == "IceCube-LVK:S230914ak"
    assert notice.version == 2  # S230914ak-2-Preliminary
    assert notice.messenger is Messenger.NU
    # The neutrino with the smallest generic p-value (0.0191, the first).
    assert notice.localisation == Circle(17.48, 16.15, 0.5, 0.9, None, "icecube_90")
    assert notice.significance == {
        "pval_generic": 0.0191,
        "pval_bayesian": 0.0549,
        "n_events_coincident": 2,
        "event_pval_generic": 0.0191,
        "event_dt_s": 12.91,
    }
    assert len(notice.extra["coincident_events"]) == 2


def test_icecube_lvk_earlier_shape(read_notice: Callable[[str], bytes]) -> None:
    """The schema's earlier example: ref_ID and reference swapped, array errors."""
    doc = _doc(read_notice, ICECUBE_LVK)
    doc["ref_ID"], doc["reference"] = (
        "S230914ak-2-Preliminary",
        {"gcn.notices.LVK.alert": "S230914ak"},
    )
    for event, radius in zip(doc["coincident_events"], (0.43, 0.88), strict=True):
        loc = event["localization"]
        del loc["ra_dec_error"]
        loc.update(uncertainty_shape="circle", ra_uncertainty=[radius])
    doc["coincident_events"][0]["event_pval_bayesian"] = "null"
    doc["coincident_events"][1]["event_pval_generic"] = 0.001
    notice = json_icecube.parse_lvk_nu_track_search(_bytes(doc))
    assert (notice.event_id, notice.version) == ("IceCube-LVK:S230914ak", 2)
    assert notice.localisation == Circle(13.82, 18.66, 0.88, 0.9, None, "icecube_90")
    assert notice.significance["event_pval_bayesian"] == 0.0656


def test_icecube_lvk_upper_limit_has_no_position(read_notice: Callable[[str], bytes]) -> None:
    doc = _doc(read_notice, ICECUBE_LVK)
    doc["n_events_coincident"] = 0
    del doc["coincident_events"]
    with pytest.raises(NoPosition, match=r"no coincident neutrino for S230914ak .*upper limits"):
        parse_json(_bytes(doc))


def test_icecube_lvk_mock_superevent_is_test(read_notice: Callable[[str], bytes]) -> None:
    doc = _doc(read_notice, ICECUBE_LVK)
    doc["ref_ID"] = "MS230914ak"
    doc["reference"] = {"gcn.notices.LVK.alert": "MS230914ak-3-Update"}
    notice = parse_json(_bytes(doc))
    assert (notice.event_id, notice.role, notice.version) == (
        "IceCube-LVK:MS230914ak",
        Role.TEST,
        3,
    )


def test_icecube_lvk_without_reference(read_notice: Callable[[str], bytes]) -> None:
    doc = _doc(read_notice, ICECUBE_LVK)
    del doc["ref_ID"], doc["reference"]
    with pytest.raises(SchemaError, match=r"missing LVK superevent id in 'ref_ID' or 'reference'"):
        parse_json(_bytes(doc))


# --------------------------------------------------------------------------- #
# Swift GUANO, KM3NeT, Super-K, MAXI, Fermi GBM, SVOM
# --------------------------------------------------------------------------- #


def test_guano_arcminute_position(read_notice: Callable[[str], bytes]) -> None:
    notice = json_swift.parse_guano(read_notice(GUANO_ARC))
    assert notice.localisation == Circle(336.26, 25.139, 0.5, 0.9, None, "gcn_unified_containment")
    assert notice.significance == {
        "far_hz": 1e-5,
        "rate_snr": 15.8,
        "image_snr": 13.94,
        "classification": {"GRB": 1.0},
    }
    assert notice.extra["follow_up_event"] == "Fermi 694215970"
    assert notice.issue_time == datetime(2023, 1, 1, 5, 33, 1, tzinfo=UTC)


def test_guano_embedded_healpix_map(data_dir: Path, read_notice: Callable[[str], bytes]) -> None:
    """A real GBM HEALPix map put in ``healpix_file``: kept as the bytes sent."""
    fits = (data_dir / GBM_MAP).read_bytes()
    doc = _doc(read_notice, GUANO_MAP)
    doc["healpix_file"] = base64.b64encode(fits).decode()
    notice = json_swift.parse_guano(_bytes(doc))
    assert isinstance(notice.localisation, SkyMap)
    assert notice.localisation.data == fits
    assert notice.localisation.url is None
    assert "healpix_file" not in notice.extra


def test_guano_placeholder_map_is_refused(read_notice: Callable[[str], bytes]) -> None:
    with pytest.raises(BadSkyMap, match=r"healpix_file is not valid base64.*starts 'hhhh\.\.\.'"):
        json_swift.parse_guano(read_notice(GUANO_MAP))


def test_km3net_event_name_and_fallback(read_notice: Callable[[str], bytes]) -> None:
    rel = "notices/km3net/alert.multiplet.example.json"
    notice = json_km3net.parse(read_notice(rel))
    assert notice.event_id == "KM3NeT:KM3-240901B"
    assert notice.instrument == "ARCA021"
    assert notice.extra["src_error_50"] == 0.225
    assert len(notice.extra["event_details"]) == 2
    doc = _doc(read_notice, rel)
    del doc["event_name"]
    assert json_km3net.parse(_bytes(doc)).event_id == "KM3NeT:2"


def test_superk_containment_and_role(read_notice: Callable[[str], bytes]) -> None:
    real = json_superk.parse(read_notice("notices/superk/sn_alert.real.example.json"))
    drill = json_superk.parse(read_notice("notices/superk/sn_alert.test.example.json"))
    assert isinstance(real.localisation, Circle)
    assert (real.localisation.radius_deg, real.localisation.containment) == (0.91, 0.68)
    assert (real.role, drill.role) == (Role.OBSERVATION, Role.TEST)
    assert real.event_id == drill.event_id == "Super-K:SN.095001.000001"
    assert real.extra["luminosity_distance"] == 0.0025


def test_maxi_ellipse_and_rectangle(read_notice: Callable[[str], bytes]) -> None:
    ellipse = json_gcn_unified.parse_maxi_gsc(
        read_notice("notices/maxi/gsc.unknown.ellipse.example.json")
    ).localisation
    assert ellipse == Ellipse(346.56, 18.61, 0.22, 0.19, 153.0, 0.9, "gcn_unified_containment")
    box = json_gcn_unified.parse_maxi_gsc(
        read_notice("notices/maxi/gsc.unknown.rectangle.example.json")
    ).localisation
    assert isinstance(box, Box)
    assert (box.ra, box.dec, box.containment) == (346.56, 18.61, 0.9)
    assert (box.ra_minus, box.ra_plus, box.dec_minus, box.dec_plus) == pytest.approx(
        (1.096, 1.006, 0.976, 0.937), abs=1e-9
    )
    assert box.convention == "gcn_unified_containment_rectangle_bbox"


def test_maxi_retraction(read_notice: Callable[[str], bytes]) -> None:
    notice = parse_json(read_notice("notices/maxi/gsc.unknown.retraction.example.json"))
    assert notice.retraction and notice.localisation is None
    assert notice.event_id == "MAXI:9995289617" and notice.version == 2


def test_fermi_gbm_systematic_conventions(read_notice: Callable[[str], bytes]) -> None:
    flight = parse_json(read_notice("notices/fermi_gbm/trigger.flight1.example.json"))
    ground = parse_json(read_notice("notices/fermi_gbm/trigger.ground1.example.json"))
    assert isinstance(flight.localisation, Circle) and isinstance(ground.localisation, Circle)
    final = parse_json(read_notice("notices/fermi_gbm/trigger.final.example.json"))
    assert isinstance(final.localisation, Circle)
    assert flight.localisation.convention == "gcn_unified_containment"  # systematic included
    assert ground.localisation.convention == "fermi_gbm_ground"  # statistical only
    assert final.localisation.convention == "fermi_gbm_final"
    assert (ground.notice_type, final.notice_type) == (
        "FERMI_GBM_GROUND_POSITION_UPDATE",
        "FERMI_GBM_FINAL_POSITION_UPDATE",
    )
    assert ground.localisation.containment == flight.localisation.containment == 0.68
    assert ground.extra["healpix_url"].endswith("glg_healpix_all_bn240812094.fit")
    assert flight.significance["classification"] == {"BELOW_HORIZON": 1.0}
    # Fermi notices carry naive times: read as UTC.
    assert ground.issue_time == datetime(2024, 8, 24, 2, 16, 11, tzinfo=UTC)


def test_svom_instruments_share_the_burst_id(read_notice: Callable[[str], bytes]) -> None:
    grm = parse_json(read_notice("notices/svom/trigger.example.json"))
    eclairs = parse_json(read_notice("notices/svom/trigger.wakeup.example.json"))
    assert (grm.instrument, eclairs.instrument) == ("GRM", "ECLAIRs")
    assert grm.event_id == eclairs.event_id == "SVOM:sb24022203"
    assert grm.role is Role.TEST


# --------------------------------------------------------------------------- #
# The core blocks (gcn_schema_core examples)
# --------------------------------------------------------------------------- #


def test_core_localization_block(read_notice: Callable[[str], bytes]) -> None:
    doc = _doc(read_notice, CORE.format("Localization"))
    spec = json_gcn_unified.SVOM_TRIGGER
    with pytest.raises(BadSkyMap, match=r"healpix_file is not valid base64"):
        json_gcn_unified.localisation(doc, spec)
    del doc["healpix_file"]
    loc = json_gcn_unified.localisation(doc, spec)
    # [0.5, 0.8, 0]: the "semi-minor" axis is the longer one -> same ellipse, PA + 90.
    assert loc == Ellipse(120.0, 45.0, 0.8, 0.5, 90.0, 0.95, "gcn_unified_containment")
    del doc["ra_dec_error"]
    assert json_gcn_unified.localisation(doc, spec) == SkyMap(
        data=None, url="http://example.com/localization.fits", convention="gcn_unified_healpix"
    )


def test_core_statistics_block(read_notice: Callable[[str], bytes]) -> None:
    doc = _doc(read_notice, CORE.format("Statistics"))
    assert json_gcn_unified.significance(doc) == {
        "far_hz": 0.001,
        "p_astro": 0.8,
        "rate_snr": 5.2,
        "image_snr": 3.1,
        "classification": {"BNS": 0.9, "NSBH": 0.05, "BBH": 0.05},
        "properties": {"NS": 0.95, "REMNANT": 0.05},
    }


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (0.5, Circle(10.0, 20.0, 0.5, 0.9, None, "gcn_unified_containment")),
        ([0.5], Circle(10.0, 20.0, 0.5, 0.9, None, "gcn_unified_containment")),
        ([0.5, 0.2], Ellipse(10.0, 20.0, 0.5, 0.2, 0.0, 0.9, "gcn_unified_containment")),
        ([0.5, 0.2, 200.0], Ellipse(10.0, 20.0, 0.5, 0.2, 20.0, 0.9, "gcn_unified_containment")),
    ],
)
def test_ra_dec_error_forms(error: object, expected: object) -> None:
    doc = {"ra": 10.0, "dec": 20.0, "ra_dec_error": error}
    assert json_gcn_unified.localisation(doc, json_gcn_unified.MAXI_GSC) == expected


@pytest.mark.parametrize(
    ("error", "exc", "message"),
    [
        (-0.5, BadCoordinates, r"ra_dec_error = -0.5 deg is negative"),
        (0, NoPosition, r"ra_dec_error is 0: no usable error region"),
        (181, BadCoordinates, r"ra_dec_error = 181 deg is larger than 180 deg"),
        ([0.5, -0.1], BadCoordinates, r"ra_dec_error\[1\] = -0.1 deg is negative"),
        ([0.5, 0.2, 0.0, 1.0], BadCoordinates, r"ra_dec_error must have 1 to 3 values, got 4"),
        ([], BadCoordinates, r"ra_dec_error must have 1 to 3 values, got 0"),
        ("0.5", SchemaError, r"key 'ra_dec_error' must be a number, got string"),
        ([0.5, "x"], SchemaError, r"key 'ra_dec_error\[1\]' must be a number, got string"),
    ],
)
def test_ra_dec_error_refusals(error: object, exc: type[Exception], message: str) -> None:
    doc = {"ra": 10.0, "dec": 20.0, "ra_dec_error": error}
    with pytest.raises(exc, match=message):
        json_gcn_unified.localisation(doc, json_gcn_unified.MAXI_GSC)


# --------------------------------------------------------------------------- #
# Cross-checks between fields
# --------------------------------------------------------------------------- #


def test_messenger_must_match_the_mission(read_notice: Callable[[str], bytes]) -> None:
    doc = _doc(read_notice, ICECUBE_TRACK)
    doc["messenger"] = "EM"
    with pytest.raises(
        SchemaError, match=r"messenger 'EM' contradicts IceCube \(expected 'Neutrino'\)"
    ):
        parse_json(_bytes(doc))


def test_schema_must_match_the_topic(read_notice: Callable[[str], bytes]) -> None:
    with pytest.raises(SchemaError, match=r"einstein_probe/wxt/alert.schema.json' is not a Swift"):
        parse_json(read_notice(EP_247), topic="gcn.notices.swift.bat.guano")


@pytest.mark.parametrize(
    ("change", "exc", "message"),
    [
        ({"alert_tense": "rehearsal"}, SchemaError, r"alert_tense 'rehearsal' is not one of"),
        ({"alert_type": "final"}, SchemaError, r"alert_type 'final' is not one of"),
        ({"record_number": 1.5}, SchemaError, r"'record_number' must be an integer"),
        ({"record_number": -2}, SchemaError, r"'record_number' must be an integer"),
        ({"containment_probability": 90}, SchemaError, r"containment_probability = 90 is not"),
        ({"far": -1e-5}, SchemaError, r"far = -1e-05 Hz is negative"),
        ({"p_astro": 1.5}, SchemaError, r"p_astro = 1.5 is not a probability"),
        ({"dec": 95}, BadCoordinates, r"dec = 95 deg is outside \[-90, 90\]"),
        ({"ra": -3}, BadCoordinates, r"ra = -3 deg is outside \[0, 360\]"),
        ({"ra": 1e300}, BadCoordinates, r"ra = 1e\+300 deg is outside"),
        ({"ra": "NaN"}, SchemaError, r"key 'ra' must be a number, got string"),
        ({"ra": None}, SchemaError, r"'dec' given without 'ra'"),
        ({"id": []}, SchemaError, r"missing required key 'id'"),
        ({"id": [""]}, SchemaError, r"key 'id\[0\]' is an empty identifier"),
        ({"id": [{"a": 1}]}, SchemaError, r"key 'id\[0\]' must be a string identifier"),
        ({"trigger_time": 1684414748}, SchemaError, r"'trigger_time' must be an ISO 8601 string"),
        ({"trigger_time": "2023-13-01T00:00:00Z"}, SchemaError, r"not a valid date-time"),
        ({"alert_datetime": "May 1st"}, SchemaError, r"'alert_datetime' is not an ISO 8601"),
    ],
)
def test_unified_violations(
    change: dict[str, Any], exc: type[Exception], message: str, read_notice: Callable[[str], bytes]
) -> None:
    doc = _doc(read_notice, "notices/superk/sn_alert.real.example.json")
    doc.update(change)
    with pytest.raises(exc, match=message):
        parse_json(_bytes(doc))


def test_retraction_ignores_position(read_notice: Callable[[str], bytes]) -> None:
    doc = _doc(read_notice, GUANO_ARC)
    doc["alert_type"] = "retraction"
    notice = parse_json(_bytes(doc))
    assert notice.retraction and notice.localisation is None
    assert notice.notice_type == "SWIFT_BAT_GUANO_RETRACTION"


def test_conventions_are_known_to_skymaps(
    json_notice_paths: list[str], read_notice: Callable[[str], bytes]
) -> None:
    """Contract with :mod:`skymaps.conventions`: every convention we emit is known."""
    conventions = pytest.importorskip("skymaps.conventions")
    emitted = {spec.convention for spec in _SPECS} | {
        spec.convention_stat_only for spec in _SPECS if spec.convention_stat_only
    }
    emitted |= set(json_gcn_unified.GBM_SUBTYPE_CONVENTION.values())
    emitted.add(f"{json_gcn_unified.MAXI_GSC.convention}_rectangle_bbox")
    for rel in json_notice_paths:
        try:
            loc = parse_json(read_notice(rel)).localisation
        except NoticeError:
            continue
        if isinstance(loc, Circle | Ellipse | Box):
            emitted.add(loc.convention)
    for name in sorted(emitted):
        conventions.get_convention(name)


_SPECS = [
    json_einstein_probe.EP_WXT,
    json_icecube.GOLD_BRONZE,
    json_icecube.LVK_NU_TRACK_SEARCH,
    json_swift.SWIFT_BAT_GUANO,
    json_km3net.KM3NET_ALERT,
    json_superk.SUPERK_SN,
    json_gcn_unified.FERMI_GBM,
    json_gcn_unified.MAXI_GSC,
    json_gcn_unified.SVOM_TRIGGER,
]
