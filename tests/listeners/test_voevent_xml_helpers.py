"""The VOEvent reader of ``listeners.parsers.voevent``: Params, groups, WhereWhen, citations."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from listeners.parsers.voevent import Citation, load_voevent, parse_utc
from mm_broker.core.errors import SchemaError


def test_params_top_level_and_in_groups(data_dir: Path) -> None:
    ev = load_voevent((data_dir / "notices/fermi_gbm/fermi_gbm_flt_pos_8132.xml").read_bytes())
    assert ev.stream == "ivo://nasa.gsfc.gcn/Fermi"
    assert ev.local_id == "GBM_Flt_Pos_2026-02-08T05:07:28.24_792220053_47-616"
    assert ev.int_value("Packet_Type") == 111
    assert ev.int_value("Trigger_ID") == 0  # "0x00000000", hexadecimal
    assert ev.int_value("Misc_flags") == 0x01000000
    assert ev.float_value("Data_Signif") == 7.6
    assert ev.bool_value("Delayed_Transmission", "Misc_Flags") is True
    assert ev.bool_value("Def_NOT_a_GRB", "Trigger_ID") is False
    assert ev.value("Sun_RA", "Obs_Support_Info") == "321.86"
    assert ev.param("Data_Signif").unit == "sigma"  # type: ignore[union-attr]
    assert ev.value("No_Such_Param") is None
    with pytest.raises(SchemaError, match="required Param Nope in Group Trigger_ID"):
        ev.require("Nope", "Trigger_ID")
    with pytest.raises(SchemaError, match="Param Coords_String 'source_object' is not an"):
        ev.int_value("Coords_String")


def test_typed_values_from_data_type(data_dir: Path) -> None:
    payload = (data_dir / "notices/km3net/km3net_voevent_single_HE_event.example.xml").read_bytes()
    ev = load_voevent(payload)
    assert ev.param("FAR").typed() == pytest.approx(8.029e-08)  # type: ignore[union-attr]
    assert ev.param("record_number").typed() == 1  # type: ignore[union-attr]
    assert ev.param("Pipeline").typed() == "orca_HE"  # type: ignore[union-attr]
    assert ev.value("ra", "Nu_Event_1") == "10.82"


def test_wherewhen_who_and_citations(data_dir: Path) -> None:
    ev = load_voevent((data_dir / "notices/lvk/MS181101ab-6-Update.xml").read_bytes())
    assert ev.role == "test"
    assert ev.iso_time() == datetime(2018, 11, 1, 22, 22, 46, 654437, tzinfo=UTC)
    assert ev.who_date() == datetime(2018, 11, 1, 22, 39, 25, tzinfo=UTC)
    assert ev.position() is None  # LVK VOEvents have no Position2D
    assert ev.coord_system() == "UTC-FK5-GEO"
    assert ev.citations()[0] == Citation("ivo://gwnet/LVC#MS181101ab-5-Retraction", "supersedes")
    assert [g.type for g in ev.groups_of_type("GW_SKYMAP")] == ["GW_SKYMAP"]

    gbm = load_voevent(
        (data_dir / "triggers/voevents/fink-mm/voevent_number=9897.xml").read_bytes()
    )
    pos = gbm.position()
    assert pos is not None
    assert (pos.ra, pos.dec, pos.error_radius, pos.unit) == (220.46, 17.23, 18.24, "deg")
    assert pos.coord_system == "UTC-FK5-GEO"
    assert gbm.citations() == (
        Citation(
            "ivo://nasa.gsfc.gcn/Fermi#GBM_Alert_2022-08-30T17:00:17.49_683571622_1-835",
            "followup",
        ),
    )


def test_parse_utc() -> None:
    assert parse_utc("2026-02-11T19:25:50+01:00") == datetime(2026, 2, 11, 18, 25, 50, tzinfo=UTC)
    assert parse_utc("2024-09-01T01:16:47.0Z").tzinfo is UTC
    with pytest.raises(SchemaError, match="'2026-01--9130T00:00:00.00' is not an ISO 8601"):
        parse_utc("2026-01--9130T00:00:00.00")


def test_default_namespace_documents_are_read(data_dir: Path) -> None:
    """A VOEvent written with a default namespace (qualified children) reads the same."""
    payload = (data_dir / "notices/svom/mxt_42.xml").read_bytes()
    qualified = payload.replace(b"<voe:VOEvent", b"<VOEvent").replace(
        b"</voe:VOEvent>", b"</VOEvent>"
    )
    qualified = qualified.replace(
        b'xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0"',
        b'xmlns="http://www.ivoa.net/xml/VOEvent/v2.0"',
    )
    ev = load_voevent(qualified)
    assert ev.value("Burst_Id", "Svom_Identifiers") == "sb26022802"
    assert ev.position() is not None
