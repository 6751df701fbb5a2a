"""Hostile and broken payloads: each raises its named error with a specific message."""

from __future__ import annotations

import resource
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from listeners.parsers.voevent_registry import parse_voevent
from listeners.parsers.xml import DEFAULT_MAX_BYTES, parse_xml
from mm_broker.core.errors import (
    BadCoordinates,
    MalformedPayload,
    NoPosition,
    SchemaError,
    UnsafeXML,
    UnsupportedFormat,
    UnsupportedNoticeType,
)

GND_POS = "notices/fermi_gbm/fermi_gbm_gnd_pos_1706.xml"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" version="2.0"
  role="observation" ivorn="ivo://nasa.gsfc.gcn/Fermi#x"><What>&lol9;</What></voe:VOEvent>
"""

XXE_TEMPLATE = """<?xml version="1.0"?>
<!DOCTYPE VOEvent [<!ENTITY xxe SYSTEM "{url}">]>
<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" version="2.0"
  role="observation" ivorn="ivo://nasa.gsfc.gcn/Fermi#x"><What>&xxe;</What></voe:VOEvent>
"""


@pytest.fixture
def gnd_pos(data_dir: Path) -> bytes:
    """A valid GBM Ground Position (RA 202.97, Dec 35.31, r 1.7) to corrupt."""
    return (data_dir / GND_POS).read_bytes()


def _replace(payload: bytes, old: bytes, new: bytes) -> bytes:
    assert payload.count(old) == 1, old
    return payload.replace(old, new)


# --------------------------------------------------------------------------- #
# XML safety
# --------------------------------------------------------------------------- #


def test_malformed_xml() -> None:
    with pytest.raises(MalformedPayload, match="not well-formed XML"):
        parse_voevent(b"<voe:VOEvent><What></voe:VOEvent>")


def test_truncated_real_notice(gnd_pos: bytes) -> None:
    with pytest.raises(MalformedPayload, match="not well-formed XML"):
        parse_voevent(gnd_pos[: len(gnd_pos) // 2])


def test_empty_and_non_bytes() -> None:
    with pytest.raises(MalformedPayload, match="empty payload"):
        parse_voevent(b"  \n ")
    with pytest.raises(MalformedPayload, match="payload must be bytes, not str"):
        parse_xml("<a/>")  # type: ignore[arg-type]


def test_billion_laughs_refused_before_parsing() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(UnsafeXML, match=r"<!DOCTYPE declaration at byte 22 refused"):
            parse_voevent(BILLION_LAUGHS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "http://127.0.0.1:9/evil.dtd", "https://example.invalid/x"]
)
def test_external_entity_refused(url: str) -> None:
    with pytest.raises(UnsafeXML, match="<!DOCTYPE declaration"):
        parse_voevent(XXE_TEMPLATE.format(url=url).encode())


def test_external_dtd_refused(gnd_pos: bytes) -> None:
    payload = _replace(
        gnd_pos,
        b"<voe:VOEvent",
        b'<!DOCTYPE VOEvent SYSTEM "http://127.0.0.1:9/voevent.dtd">\n<voe:VOEvent',
    )
    with pytest.raises(UnsafeXML, match="<!DOCTYPE declaration"):
        parse_voevent(payload)


def test_entity_declaration_without_doctype_keyword_is_refused() -> None:
    with pytest.raises(UnsafeXML, match="<!ENTITY declaration"):
        parse_xml(b'<a><!ENTITY x SYSTEM "file:///etc/passwd"></a>')


def test_undeclared_entity_reference_is_malformed() -> None:
    with pytest.raises(MalformedPayload, match="xxe"):
        parse_xml(b"<a>&xxe;</a>")


def test_doctype_hidden_in_utf16_payload_refused() -> None:
    payload = XXE_TEMPLATE.format(url="file:///etc/passwd").replace(
        '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>'
    )
    with pytest.raises(UnsafeXML, match="<!DOCTYPE declaration refused"):
        parse_voevent(payload.encode("utf-16"))


def _measure(call: Callable[[], object]) -> tuple[int, int]:
    """Python heap peak (tracemalloc) and growth of the process high-water mark, bytes."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    try:
        call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    return peak, rss_growth


def test_oversized_payload_refused_without_allocating() -> None:
    """A 50 MB nested payload is refused by its length: nothing is parsed or copied."""
    payload = b"<a>" * (50 * 1024 * 1024 // 3)
    assert len(payload) > DEFAULT_MAX_BYTES

    def call() -> None:
        with pytest.raises(UnsafeXML, match=r"payload of 52428798 bytes exceeds the limit"):
            parse_voevent(payload)

    peak, rss_growth = _measure(call)
    assert peak < 64 * 1024  # not a copy of the 50 MB
    assert rss_growth < 8 * 1024 * 1024


def test_deep_tree_within_size_limit_refused_early() -> None:
    """9 MB of nesting (under the size limit) stops at depth 33 after the first chunk."""
    payload = b"<a>" * (3 * 1024 * 1024)
    assert len(payload) < DEFAULT_MAX_BYTES

    def call() -> None:
        with pytest.raises(UnsafeXML, match="element nesting deeper than 32 levels"):
            parse_voevent(payload)

    peak, rss_growth = _measure(call)
    assert peak < 1024 * 1024  # one 64 kB chunk, not the document
    assert rss_growth < 16 * 1024 * 1024


def test_wide_tree_refused_by_element_count() -> None:
    payload = b"<r>" + b"<e/>" * 2_000_000 + b"</r>"  # 8 MB, 2 million elements

    def call() -> None:
        with pytest.raises(UnsafeXML, match="more than 20000 elements"):
            parse_voevent(payload)

    peak, rss_growth = _measure(call)
    assert peak < 4 * 1024 * 1024
    assert rss_growth < 32 * 1024 * 1024


def test_limits_are_arguments(gnd_pos: bytes) -> None:
    with pytest.raises(UnsafeXML, match="exceeds the limit of 1000 bytes"):
        parse_voevent(gnd_pos, max_bytes=1000)
    with pytest.raises(UnsafeXML, match="more than 50 elements"):
        parse_voevent(gnd_pos, max_elements=50)
    with pytest.raises(UnsafeXML, match="deeper than 4 levels"):
        parse_voevent(gnd_pos, max_depth=4)


# --------------------------------------------------------------------------- #
# Format
# --------------------------------------------------------------------------- #


def test_voevent_11_refused(data_dir: Path) -> None:
    payload = (data_dir / "notices/swift/SWIFT_xrt_position_v1.1_example.xml").read_bytes()
    with pytest.raises(UnsupportedFormat, match=r"unsupported_format: VOEvent 1\.1"):
        parse_voevent(payload)


def test_voevent_11_by_version_attribute_only(gnd_pos: bytes) -> None:
    payload = _replace(gnd_pos, b'version="2.0"', b'version="1.1"')
    with pytest.raises(UnsupportedFormat) as info:
        parse_voevent(payload)
    assert info.value.message.startswith("VOEvent 1.1")


def test_no_namespace_refused(data_dir: Path) -> None:
    payload = (data_dir / "notices/other/no_namespace_packet.xml").read_bytes()
    with pytest.raises(UnsupportedFormat) as info:
        parse_voevent(payload)
    assert info.value.message.startswith("no namespace")
    assert str(info.value).startswith("unsupported_format: no namespace")


def test_not_a_voevent() -> None:
    with pytest.raises(UnsupportedFormat, match="not a VOEvent: root element is <feed>"):
        parse_voevent(b"<feed><entry/></feed>")


def test_unknown_stream_names_stream_and_packet_type(gnd_pos: bytes) -> None:
    payload = gnd_pos.replace(b"ivo://nasa.gsfc.gcn/Fermi#", b"ivo://example.org/other#")
    with pytest.raises(UnsupportedNoticeType) as info:
        parse_voevent(payload, "some.topic")
    assert "ivo://example.org/other" in info.value.message
    assert "packet type 112" in info.value.message and "some.topic" in info.value.message


def test_unknown_packet_type(gnd_pos: bytes) -> None:
    payload = _replace(gnd_pos, b'value="112"', b'value="113"')
    with pytest.raises(
        UnsupportedNoticeType, match="ivo://nasa.gsfc.gcn/Fermi with packet type 113"
    ):
        parse_voevent(payload)


def test_missing_ivorn(gnd_pos: bytes) -> None:
    start = gnd_pos.index(b'ivorn="')
    end = gnd_pos.index(b'"', start + 7) + 1
    with pytest.raises(SchemaError, match="no ivorn attribute"):
        parse_voevent(gnd_pos[:start] + gnd_pos[end:])


def test_prediction_role_refused(gnd_pos: bytes) -> None:
    payload = _replace(gnd_pos, b'role="observation"', b'role="prediction"')
    with pytest.raises(UnsupportedNoticeType, match="role 'prediction'"):
        parse_voevent(payload)


def test_missing_who_date(gnd_pos: bytes) -> None:
    payload = _replace(gnd_pos, b"<Date>2026-02-08T05:09:36</Date>", b"")
    with pytest.raises(SchemaError, match="no Who/Date"):
        parse_voevent(payload)


def test_bad_time(gnd_pos: bytes) -> None:
    payload = _replace(gnd_pos, b"<ISOTime>2026-02-08T05:07:28.24</ISOTime>", b"<ISOTime>soon")
    payload = payload.replace(b"soon", b"soon</ISOTime>")
    with pytest.raises(SchemaError, match="WhereWhen ISOTime 'soon' is not an ISO 8601"):
        parse_voevent(payload)


def test_non_integer_packet_serial(gnd_pos: bytes) -> None:
    payload = _replace(gnd_pos, b'"Pkt_Ser_Num"           value="6"', b'"Pkt_Ser_Num" value="six"')
    with pytest.raises(SchemaError, match="Param Pkt_Ser_Num 'six' is not an integer"):
        parse_voevent(payload)


# --------------------------------------------------------------------------- #
# Coordinates
# --------------------------------------------------------------------------- #

RA = b"<C1>202.9700</C1>"
DEC = b"<C2>35.3100</C2>"
RADIUS = b"<Error2Radius>1.7000</Error2Radius>"


def test_reference_file_parses(gnd_pos: bytes) -> None:
    n = parse_voevent(gnd_pos)
    assert (n.event_id, n.localisation.radius_deg) == ("Fermi-GBM:792220053", 1.7)  # type: ignore[union-attr]


def test_nan_ra(gnd_pos: bytes) -> None:
    with pytest.raises(BadCoordinates,
                       match=r"Fermi-GBM:792220053 FERMI_GBM_GND_POS: non-finite position ra=nan"):
        parse_voevent(_replace(gnd_pos, RA, b"<C1>NaN</C1>"))


def test_dec_95(gnd_pos: bytes) -> None:
    with pytest.raises(BadCoordinates,
                       match=r"FERMI_GBM_GND_POS: dec = 95 deg is outside \[-90, 90\]"):
        parse_voevent(_replace(gnd_pos, DEC, b"<C2>95.0</C2>"))


def test_ra_out_of_range(gnd_pos: bytes) -> None:
    with pytest.raises(BadCoordinates,
                       match=r"FERMI_GBM_GND_POS: ra = 400 deg is outside \[0, 360\]"):
        parse_voevent(_replace(gnd_pos, RA, b"<C1>400.0</C1>"))


def test_ra_360_folds_to_0(gnd_pos: bytes) -> None:
    n = parse_voevent(_replace(gnd_pos, RA, b"<C1>360.0</C1>"))
    assert n.localisation.ra == 0.0  # type: ignore[union-attr]


def test_negative_radius(gnd_pos: bytes) -> None:
    with pytest.raises(BadCoordinates, match=r"negative Error2Radius -2\.5 deg"):
        parse_voevent(_replace(gnd_pos, RADIUS, b"<Error2Radius>-2.5</Error2Radius>"))


def test_minus_one_radius_is_only_a_sentinel_for_svom(gnd_pos: bytes, data_dir: Path) -> None:
    with pytest.raises(BadCoordinates, match=r"negative Error2Radius -1 deg"):
        parse_voevent(_replace(gnd_pos, RADIUS, b"<Error2Radius>-1.0000</Error2Radius>"))
    svom = (data_dir / "notices/svom/grm_330.xml").read_bytes()
    with pytest.raises(NoPosition, match=r"Error2Radius -1 \(SVOM's value for no error radius\)"):
        parse_voevent(svom)


def test_infinite_radius(gnd_pos: bytes) -> None:
    with pytest.raises(BadCoordinates, match="Error2Radius is inf"):
        parse_voevent(_replace(gnd_pos, RADIUS, b"<Error2Radius>INF</Error2Radius>"))


def test_non_numeric_coordinate(gnd_pos: bytes) -> None:
    with pytest.raises(BadCoordinates, match="Position2D C2 'north' is not a number"):
        parse_voevent(_replace(gnd_pos, DEC, b"<C2>north</C2>"))


def test_zero_radius_and_whole_sky(gnd_pos: bytes) -> None:
    with pytest.raises(NoPosition, match="Error2Radius 0 at RA=202.97 Dec=35.31"):
        parse_voevent(_replace(gnd_pos, RADIUS, b"<Error2Radius>0.0</Error2Radius>"))
    with pytest.raises(NoPosition, match="Error2Radius 360 deg covers the whole sky"):
        parse_voevent(_replace(gnd_pos, RADIUS, b"<Error2Radius>360</Error2Radius>"))


def test_no_position_element(gnd_pos: bytes) -> None:
    start = gnd_pos.index(b"<Position2D")
    end = gnd_pos.index(b"</Position2D>") + len(b"</Position2D>")
    with pytest.raises(NoPosition, match="no WhereWhen Position2D"):
        parse_voevent(gnd_pos[:start] + gnd_pos[end:])


def test_unsupported_units_and_frames(gnd_pos: bytes) -> None:
    with pytest.raises(SchemaError, match="Position2D unit 'rad' is not deg"):
        parse_voevent(_replace(gnd_pos, b'<Position2D unit="deg">', b'<Position2D unit="rad">'))
    payload = gnd_pos.replace(b"UTC-FK5-GEO", b"UTC-GALACTIC-GEO")
    with pytest.raises(SchemaError, match="coordinate system UTC-GALACTIC-GEO not supported"):
        parse_voevent(payload)
    payload = gnd_pos.replace(b"UTC-FK5-GEO", b"TDB-ICRS-BARY")
    with pytest.raises(SchemaError, match="time scale TDB"):
        parse_voevent(payload)
