"""The explicit registry table, and packets built with voevent-parse for missions
without a real VOEvent in the shared data."""

from __future__ import annotations

import collections
import collections.abc
import inspect
from datetime import UTC, datetime
from types import ModuleType

import pytest

from listeners.parsers import (
    voevent_agile,
    voevent_amon,
    voevent_fermi,
    voevent_icecube,
    voevent_integral,
    voevent_km3net,
    voevent_konus,
    voevent_lvk,
    voevent_maxi,
    voevent_snews,
    voevent_svom,
    voevent_swift,
)
from listeners.parsers.voevent_common import PacketSpec
from listeners.parsers.voevent_registry import REGISTRY, parse_voevent
from mm_broker.core.errors import SchemaError, UnsupportedNoticeType
from mm_broker.core.models import Circle, Messenger, Role

# voevent-parse 1.0.3 builds packets with collections.Iterable (gone in Python 3.10).
collections.Iterable = collections.abc.Iterable  # type: ignore[attr-defined]
import voeventparse as vp  # noqa: E402

MODULES: dict[ModuleType, dict[int, PacketSpec]] = {
    voevent_agile: voevent_agile.PACKETS,
    voevent_amon: voevent_amon.PACKETS,
    voevent_fermi: voevent_fermi.PACKETS,
    voevent_icecube: voevent_icecube.PACKETS,
    voevent_integral: voevent_integral.PACKETS,
    voevent_konus: voevent_konus.PACKETS,
    voevent_lvk: voevent_lvk.PACKETS,
    voevent_maxi: voevent_maxi.PACKETS,
    voevent_snews: voevent_snews.PACKETS,
    voevent_svom: voevent_svom.PACKETS,
    voevent_swift: voevent_swift.PACKETS,
}


def test_registry_is_a_plain_table_of_module_parsers() -> None:
    assert type(REGISTRY) is dict and len(REGISTRY) == 57
    for (fmt, (stream, packet_type)), parser in REGISTRY.items():
        assert fmt == "voevent"
        assert stream.startswith("ivo://") and "#" not in stream
        module = inspect.getmodule(parser)
        assert parser.__name__ == "from_voevent"
        if module is voevent_km3net:
            assert packet_type is None
            continue
        assert module in MODULES, module
        assert packet_type in MODULES[module], (stream, packet_type)


def test_every_packet_table_entry_is_registered() -> None:
    registered = {(inspect.getmodule(p), key[1][1]) for key, p in REGISTRY.items()}
    for module, table in MODULES.items():
        for packet_type in table:
            assert (module, packet_type) in registered, (module.__name__, packet_type)


def test_each_module_has_a_bytes_parser() -> None:
    for module in [*MODULES, voevent_km3net]:
        names = [n for n in dir(module) if n.startswith("parse_")]
        assert len(names) == 1, module.__name__
        assert list(inspect.signature(getattr(module, names[0])).parameters)[0] == "payload"


def _gcn_packet(
    stream: str,
    local_id: str,
    role: str,
    params: dict[str, object],
    ra: float,
    dec: float,
    err: float,
) -> bytes:
    v = vp.Voevent(stream=stream, stream_id=local_id, role=role)
    vp.set_who(
        v, date=datetime(2022, 8, 3, 18, 49, 23, tzinfo=UTC), author_ivorn="nasa.gsfc.tan/gcn"
    )
    for name, value in params.items():
        v.What.append(vp.Param(name=name, value=value))
    vp.add_where_when(
        v,
        coords=vp.Position2D(
            ra=ra, dec=dec, err=err, units="deg", system=vp.definitions.sky_coord_system.utc_fk5_geo
        ),
        obs_time=datetime(2022, 8, 3, 18, 49, 15, tzinfo=UTC),
        observatory_location=vp.definitions.observatory_location.geosurface,
    )
    return vp.dumps(v)


def test_maxi_packet_built_with_voevent_parse() -> None:
    payload = _gcn_packet(
        "nasa.gsfc.gcn/MAXI",
        "Unknown_Source_2022-08-03T18:49:15.00_599999-0-370",
        vp.definitions.roles.observation,
        {"Packet_Type": 134, "Pkt_Ser_Num": 288, "TrigID": 599999, "Event_Flux": 39.8},
        252.0,
        35.0,
        1.0,
    )
    n = parse_voevent(payload, "gcn.classic.voevent.MAXI_UNKNOWN")
    assert (n.event_id, n.messenger, n.mission, n.instrument, n.notice_type) == (
        "MAXI:599999",
        Messenger.X,
        "MAXI",
        "GSC",
        "MAXI_UNKNOWN",
    )
    assert (n.version, n.role, n.retraction) == (288, Role.OBSERVATION, False)
    assert n.trigger_time == datetime(2022, 8, 3, 18, 49, 15, tzinfo=UTC)
    assert n.issue_time == datetime(2022, 8, 3, 18, 49, 23, tzinfo=UTC)
    assert n.localisation == Circle(252.0, 35.0, 1.0, 0.9, None, "maxi_gsc")
    assert n.significance == {"flux_mcrab": 39.8}


def test_maxi_test_packet_is_test_role() -> None:
    payload = _gcn_packet(
        "nasa.gsfc.gcn/MAXI",
        "Test_Pos_2022-08-03T18:49:15.00_599999-0-370",
        vp.definitions.roles.observation,
        {"Packet_Type": 136, "Pkt_Ser_Num": 1, "TrigID": 599999},
        252.0,
        35.0,
        1.0,
    )
    assert parse_voevent(payload).role is Role.TEST


def _nu_em(params: dict[str, object]) -> bytes:
    return _gcn_packet(
        "nasa.gsfc.gcn/AMON",
        "NuEm_Event2021-01-11T00:00:00.00_1_12345-0",
        vp.definitions.roles.observation,
        {"Packet_Type": 172, "Pkt_Ser_Num": 3, "TrigID": 12345, "Rev": 1, "FAR": 2.5,
         **params},
        10.0,
        -20.0,
        0.4,
    )


def test_amon_nu_em_packet_reads_its_containment() -> None:
    """NU_EM_COINC containment is read from src_error_90 / src_error_50, never assumed."""
    n = parse_voevent(_nu_em({"src_error_90": 0.4, "src_error_50": 0.15}))
    assert (n.event_id, n.notice_type, n.version) == (
        "AMON-NU_EM_COINC:12345",
        "AMON_NU_EM_COINC",
        1,
    )
    assert n.localisation == Circle(10.0, -20.0, 0.4, 0.9, None, "amon_nu_em", 0.15)
    assert n.extra["containment_stated"] is True
    # Only the 50 % radius: the radius is at 50 %.
    only50 = parse_voevent(_nu_em({"src_error_50": 0.15}))
    assert only50.localisation == Circle(10.0, -20.0, 0.15, 0.5, None, "amon_nu_em")


def test_amon_nu_em_packet_without_containment_is_rejected() -> None:
    with pytest.raises(SchemaError, match="states no containment"):
        parse_voevent(_nu_em({}))


def test_unregistered_gcn_type_names_stream_and_type() -> None:
    payload = _gcn_packet(
        "nasa.gsfc.gcn/AGILE",
        "GRB_Wakeup_2022",
        vp.definitions.roles.observation,
        {"Packet_Type": 100, "Pkt_Ser_Num": 1, "TrigID": 7},
        1.0,
        2.0,
        0.2,
    )
    with pytest.raises(UnsupportedNoticeType) as info:
        parse_voevent(payload, "gcn.classic.voevent.AGILE_GRB_WAKEUP")
    message = info.value.message
    assert "ivo://nasa.gsfc.gcn/AGILE" in message and "packet type 100" in message
    assert "gcn.classic.voevent.AGILE_GRB_WAKEUP" in message
