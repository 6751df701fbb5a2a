"""Any GCN core-schema notice (issue 17): the generic parser, the registry's fallback
for ``gcn/notices/`` schemas in no table.

The notices below follow the shapes of GCN's schema repository (``chime/frb``,
``dsa110/frb``, ``burstcube/alert``: the keys of core/Alert, Reporter, Event,
DateTime, Localization, Statistics and DispersionMeasure), with values of our own; the
real core-schema examples of ``../shared/data/notices/gcn_schema_core`` are read
from there.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

import publishers
import skymaps
from listeners.parsers import parse
from listeners.parsers.json_registry import GENERIC_PARSER, SCHEMA_PARSERS, schema_parser
from mm_broker.core import config
from mm_broker.core.errors import NoPosition, SchemaError, UnsupportedNoticeType
from mm_broker.core.models import Circle, Ellipse, Messenger, Role, SkyMap
from publishers.kafka import Topics

GCN = "https://gcn.nasa.gov/schema/v6.1.0/gcn/notices/"
SCHEMAS = Path(publishers.__file__).parent / "schemas"


def _doc(schema: str, **fields: Any) -> bytes:
    return json.dumps({"$schema": GCN + schema, **fields}).encode()


def chime_initial(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "alert_type": "initial", "trigger_time": "2025-03-02T11:12:13.250Z",
        "id": "512345678", "snr": 14.2, "ra": 150.25, "dec": 40.5,
        "ra_dec_error": [0.4, 0.3, 30], "dm": 412.7, "dm_error": 0.3,
        "spectral_band": [400, 800], "units": "MHz",
    }
    doc.update(changes)
    return doc


def test_frb_notice_of_chime_gets_the_frb_messenger() -> None:
    notice = parse(_doc("chime/frb.schema.json", **chime_initial()))
    assert notice.messenger is Messenger.FRB
    assert (notice.event_id, notice.mission, notice.instrument) == \
        ("CHIME:512345678", "CHIME", "FRB")
    assert notice.notice_type == "CHIME_FRB_INITIAL" and notice.role is Role.OBSERVATION
    assert notice.version == 1 and not notice.retraction
    loc = notice.localisation
    assert isinstance(loc, Ellipse)
    assert (loc.a_deg, loc.b_deg, loc.pa_deg) == (0.4, 0.3, 30)
    # containment read, never assumed: absent here, so GCN's schema default, said so.
    assert loc.containment == 0.9
    assert "schema default 0.9" in notice.extra["containment_source"]
    assert notice.extra["dm"] == 412.7 and notice.extra["parser"] == "gcn_core_generic"
    region = skymaps.region_for(loc)
    assert region.kind == "ellipse" and 0.1 < region.area_deg2 < 2.0


def test_frb_retraction_withdraws() -> None:
    notice = parse(_doc("chime/frb.schema.json", alert_type="retraction", id="512345678",
                        trigger_time="2025-03-02T11:12:13.250Z"))
    assert notice.retraction and notice.localisation is None
    assert notice.event_id == "CHIME:512345678" and notice.messenger is Messenger.FRB


def test_dsa110_radio_notice() -> None:
    notice = parse(_doc("dsa110/frb.schema.json", alert_type="initial", id="250302abcd",
                        trigger_time="2025-03-02T11:12:13Z", rate_snr=11.0, dm=300.0,
                        ra=20.0, dec=70.0, ra_dec_error=[0.02, 0.01]))
    assert notice.messenger is Messenger.FRB and notice.event_id == "DSA-110:250302abcd"
    assert notice.significance["rate_snr"] == 11.0


def test_invented_mission_in_the_core_schema_is_stored_with_its_region() -> None:
    payload = _doc(
        "zorro/gamma/alert.schema.json", mission="Zorro", instrument="ZGM",
        messenger="EM", alert_type="update", alert_tense="test", record_number=3,
        alert_datetime="2025-05-01T00:01:00Z", trigger_time="2025-05-01T00:00:00Z",
        id=["Z250501A", "77"], ra=232.0, dec=-53.1, ra_dec_error=4.0,
        containment_probability=0.68, systematic_included=True, far=1e-6,
        rate_energy_range=[50, 300])
    assert schema_parser("gcn/notices/zorro/gamma/alert.schema.json") is GENERIC_PARSER
    notice = parse(payload)
    assert (notice.event_id, notice.mission, notice.instrument) == ("Zorro:Z250501A", "Zorro",
                                                                    "ZGM")
    assert notice.messenger is Messenger.GRB and notice.role is Role.TEST
    assert notice.version == 3 and notice.notice_type == "ZORRO_ALERT_UPDATE"
    assert notice.significance["far_hz"] == 1e-6
    loc = notice.localisation
    assert isinstance(loc, Circle) and loc.containment == 0.68 and loc.radius_deg == 4.0
    assert "containment_source" not in notice.extra
    region = skymaps.region_for(loc)
    assert region.kind == "circle" and region.credible_level == 0.9
    # A 68 % radius of 4 deg is widened to reach 90 %.
    assert region.radius90_deg is not None and region.radius90_deg > 4.0


@pytest.mark.parametrize(("fields", "messenger"), [
    ({"messenger": "Neutrino"}, Messenger.NU),
    ({"messenger": "GW"}, Messenger.GW),
    ({"messenger": "EM", "spectral_band": [0.5, 4.0]}, Messenger.X),
    ({"spectral_band": [0.5, 10.0], "spectral_band_units": "keV"}, Messenger.X),
    ({"messenger": "EM", "spectral_band": [8, 40000]}, Messenger.GRB),
    ({"spectral_band_units": "MHz"}, Messenger.FRB),
    ({}, Messenger.GRB),
])
def test_messenger_rules(fields: dict[str, Any], messenger: Messenger) -> None:
    notice = parse(_doc("newmission/alert.schema.json", id="1", ra=1.0, dec=2.0,
                        ra_dec_error=1.0, trigger_time="2025-01-01T00:00:00Z", **fields))
    assert notice.messenger is messenger, notice.extra["messenger_rule"]


def test_unknown_messenger_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="messenger 'Photon' is not one of"):
        parse(_doc("newmission/alert.schema.json", id="1", messenger="Photon",
                   trigger_time="2025-01-01T00:00:00Z", ra=1.0, dec=2.0, ra_dec_error=1.0))


def test_family_contradicted_by_messenger_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="contradicts CHIME"):
        parse(_doc("chime/frb.schema.json", **chime_initial(messenger="Neutrino")))


def test_position_a_b_error_spelling() -> None:
    notice = parse(_doc("newmission/alert.schema.json", id="2", ra=10.0, dec=-5.0,
                        position_a_error=2.0, position_b_error=1.0, position_error_pa=45,
                        trigger_time="2025-01-01T00:00:00Z"))
    loc = notice.localisation
    assert isinstance(loc, Ellipse) and (loc.a_deg, loc.b_deg, loc.pa_deg) == (2.0, 1.0, 45)


def test_linked_map_beside_a_circle_is_carried_for_ingest() -> None:
    url = "https://heasarc.gsfc.nasa.gov/newmission/250601000_locmap.fits"
    notice = parse(_doc("newmission/alert.schema.json", id=["250601000"], ra=232.0,
                        dec=-53.1, ra_dec_error=10, containment_probability=0.9,
                        healpix_url=url, trigger_time="2025-06-01T00:00:00Z"))
    assert isinstance(notice.localisation, Circle) and notice.skymap_url == url
    only = parse(_doc("newmission/alert.schema.json", id=["250601000"], healpix_url=url,
                      trigger_time="2025-06-01T00:00:00Z"))
    assert only.localisation == SkyMap(data=None, url=url, convention="gcn_unified_healpix")
    assert only.skymap_url == url


def test_embedded_map_needs_no_fetch(data_dir: Path) -> None:
    fits = (data_dir / "skymaps/gw/MS220722v_bayestar.multiorder.fits").read_bytes()
    notice = parse(_doc("newmission/alert.schema.json", id="3",
                        trigger_time="2025-06-01T00:00:00Z",
                        healpix_file=base64.b64encode(fits).decode(),
                        healpix_url="https://example.org/m.fits"))
    assert isinstance(notice.localisation, SkyMap) and notice.localisation.data == fits
    assert notice.skymap_url is None


def test_update_without_position_says_so() -> None:
    with pytest.raises(NoPosition):
        parse(_doc("chime/frb.schema.json", alert_type="update", id="512345678",
                   trigger_time="2025-03-02T11:12:13.250Z", update_message="DM revised"))


def test_mission_parsers_win_over_the_generic_one() -> None:
    for path, parser in SCHEMA_PARSERS.items():
        assert schema_parser(path) is parser


@pytest.mark.parametrize("name", ["Localization", "Pointing", "Reporter", "Spectral",
                                  "Statistics"])
def test_core_schema_parts_sent_alone_stay_rejected(data_dir: Path, name: str) -> None:
    payload = (data_dir / f"notices/gcn_schema_core/{name}.example.json").read_bytes()
    with pytest.raises(UnsupportedNoticeType, match="a core schema component, not a notice"):
        parse(payload)


@pytest.mark.parametrize("path", ["gcn/notices/boom/alert.schema.json",
                                  "gcn/notices/fermi/lat/flare.schema.json"])
def test_known_non_triggers_stay_rejected(path: str) -> None:
    with pytest.raises(UnsupportedNoticeType, match="not a"):
        schema_parser(path)


def test_frb_has_its_topics_window_and_schema_symbols() -> None:
    topics = Topics("mm")
    assert topics.counterparts("FRB", "observation") == "mm.counterparts.frb"
    assert topics.counterparts("FRB", "test") == "mm.test.counterparts.frb"
    assert "mm.counterparts.frb" in topics.all()
    settings = config.load()
    assert settings.coincidence.after_days("FRB") == \
        settings.tree["coincidence"]["window_after_days_by_messenger"]["FRB"]
    for kind, version in (("counterpart", 3), ("retraction", 2)):
        raw = json.loads((SCHEMAS / f"{kind}-v{version}.avsc").read_text())
        (field,) = [f for f in raw["fields"] if f["name"] == "messenger"]
        assert field["type"]["symbols"] == ["GW", "GRB", "NU", "X", "FRB"]
    assert settings.publish.retraction_schema_version >= 2
