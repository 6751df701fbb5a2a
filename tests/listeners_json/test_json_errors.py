"""Untrusted bytes: each kind of bad input gives its named error and a specific message."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from listeners.parsers import json_common
from listeners.parsers.json_common import DEFAULT_MAX_BYTES, check_radius, load_json
from listeners.parsers.json_registry import parse_json
from listeners.parsers.json_values import decode_fits_base64, parse_time, schema_path
from mm_broker.core.errors import (
    BadCoordinates,
    BadSkyMap,
    MalformedPayload,
    NoPosition,
    NoticeError,
    SchemaError,
    UnsupportedNoticeType,
)
from mm_broker.core.position import check_position

pytestmark = pytest.mark.filterwarnings("error")

EP = "notices/einstein_probe/alert_247.json"


def _ep_text(read_notice: Callable[[str], bytes]) -> str:
    return read_notice(EP).decode("utf-8")


# --------------------------------------------------------------------------- #
# Loading
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", r"not valid JSON: Expecting property name enclosed in double quotes"),
        (b"", r"not valid JSON: Expecting value at line 1 column 1"),
        (b'{"a": 1} trailing', r"not valid JSON: Extra data"),
        (b'{"ra": NaN}', r"non-standard JSON literal NaN is not accepted"),
        (b'{"ra": Infinity}', r"non-standard JSON literal Infinity is not accepted"),
        (b'{"ra": -Infinity}', r"non-standard JSON literal -Infinity is not accepted"),
        (b'{"ra": 1e999}', r"number 1e999 overflows a double"),
        (b'{"ra": 1, "ra": 2}', r"duplicate key 'ra'"),
        (b'{"id": "\\ud800"}', r"lone surrogate escape"),
        (b'{"n": ' + b"7" * 5000 + b"}", r"Exceeds the limit \(4300 digits\)"),
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", r"nesting too deep"),
        (b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}", r"nesting deeper than 64 levels"),
        (b'{"ra": "\xff\xfe"}', r"payload is not valid UTF-8 \(byte 8\)"),
        (b"\xef\xbb\xbf{}", r"not valid JSON: Unexpected UTF-8 BOM"),
    ],
)
def test_malformed(payload: bytes, message: str) -> None:
    with pytest.raises(MalformedPayload, match=message):
        load_json(payload)
    with pytest.raises(MalformedPayload, match=message):
        parse_json(payload)


def test_truncated_real_notice(read_notice: Callable[[str], bytes]) -> None:
    payload = read_notice(EP)
    for cut in (1, len(payload) // 3, len(payload) - 1):
        with pytest.raises(MalformedPayload, match=r"not valid JSON: "):
            parse_json(payload[:cut])


def test_nan_literal_in_a_real_notice(read_notice: Callable[[str], bytes]) -> None:
    text = _ep_text(read_notice).replace('"ra": 184.664', '"ra": NaN')
    with pytest.raises(MalformedPayload, match=r"NaN is not accepted"):
        parse_json(text.encode())


@pytest.mark.parametrize(
    ("payload", "kind"),
    [(b"[1, 2]", "array"), (b'"text"', "string"), (b"42", "number"), (b"null", "null")],
)
def test_top_level_must_be_an_object(payload: bytes, kind: str) -> None:
    with pytest.raises(SchemaError, match=f"top level must be a JSON object, got {kind}"):
        load_json(payload)


def test_oversized_payload() -> None:
    payload = b'{"pad": "' + b"x" * DEFAULT_MAX_BYTES + b'"}'
    with pytest.raises(
        MalformedPayload, match=rf"payload of {len(payload)} bytes exceeds the limit of 16777216"
    ):
        parse_json(payload, topic="igwn.gwalert")
    with pytest.raises(MalformedPayload, match=r"payload of 9 bytes exceeds the limit of 8 bytes"):
        load_json(b'{"a": 12}', max_bytes=8)


def test_payload_must_be_bytes() -> None:
    with pytest.raises(MalformedPayload, match=r"payload must be bytes, got str"):
        load_json("{}")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- #
# Coordinates
# --------------------------------------------------------------------------- #


def test_dec_95(read_notice: Callable[[str], bytes]) -> None:
    text = _ep_text(read_notice).replace('"dec": -6.146', '"dec": 95')
    with pytest.raises(BadCoordinates, match=r"dec = 95 deg is outside \[-90, 90\]"):
        parse_json(text.encode())


def test_ra_nan() -> None:
    """JSON cannot carry NaN (refused at load); a NaN that reaches the check is refused too."""
    with pytest.raises(BadCoordinates, match=r"non-finite position ra=nan"):
        check_position(math.nan, 10.0)
    with pytest.raises(BadCoordinates, match=r"non-finite position"):
        check_position(10.0, math.inf)


def test_negative_radius(read_notice: Callable[[str], bytes]) -> None:
    text = _ep_text(read_notice).replace('"ra_dec_error": 0.05174976', '"ra_dec_error": -0.05')
    with pytest.raises(BadCoordinates, match=r"ra_dec_error = -0.05 deg is negative"):
        parse_json(text.encode())


def test_zero_radius_is_no_position(read_notice: Callable[[str], bytes]) -> None:
    text = _ep_text(read_notice).replace('"ra_dec_error": 0.05174976', '"ra_dec_error": 0')
    with pytest.raises(NoPosition, match=r"ra_dec_error is 0: no usable error region"):
        parse_json(text.encode())


@pytest.mark.parametrize(
    ("ra", "dec", "expected"),
    [(0.0, -90.0, (0.0, -90.0)), (360.0, 90.0, (0.0, 90.0)), (359.999, 0.0, (359.999, 0.0))],
)
def test_coordinate_edges(ra: float, dec: float, expected: tuple[float, float]) -> None:
    assert check_position(ra, dec) == expected


@pytest.mark.parametrize(
    ("ra", "dec", "message"),
    [
        (-0.001, 0.0, r"ra = -0.001 deg is outside \[0, 360\]"),
        (360.5, 0.0, r"ra = 360.5 deg is outside \[0, 360\]"),
        (10.0, -90.5, r"dec = -90.5 deg is outside \[-90, 90\]"),
    ],
)
def test_coordinates_out_of_range(ra: float, dec: float, message: str) -> None:
    with pytest.raises(BadCoordinates, match=message):
        check_position(ra, dec)


def test_radius_checks() -> None:
    assert check_radius(180.0) == 180.0
    with pytest.raises(BadCoordinates, match=r"ra_dec_error = nan is not finite"):
        check_radius(math.nan)


# --------------------------------------------------------------------------- #
# Sky maps
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hhhh...", r"x is not valid base64"),
        ("U0lNUExF!", r"x is not valid base64"),
        ("ü", r"x is not valid base64"),
        ("", r"x decodes to an empty map"),
        ("R0lGODlh", r"x does not decode to a FITS file \(first bytes b'GIF8"),
        ("H4sIAAAAAAAA", r"x is gzip data that does not decompress"),
        (12, r"x must be a base64 string, got number"),
    ],
)
def test_sky_map_refusals(text: object, message: str) -> None:
    with pytest.raises(BadSkyMap, match=message):
        decode_fits_base64(text, "x")


def test_sky_map_whitespace_is_ignored() -> None:
    import base64

    fits = b"SIMPLE  =                    T" + b" " * (2880 - 30)
    wrapped = "\n".join(base64.b64encode(fits).decode()[i : i + 76] for i in range(0, 3840, 76))
    assert decode_fits_base64(wrapped, "x") == fits


# --------------------------------------------------------------------------- #
# Times
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-05-18T12:59:08.167Z", datetime(2023, 5, 18, 12, 59, 8, 167000, tzinfo=UTC)),
        ("2024-08-24T02:14:40.43", datetime(2024, 8, 24, 2, 14, 40, 430000, tzinfo=UTC)),
        ("2024-08-24 02:14:40", datetime(2024, 8, 24, 2, 14, 40, tzinfo=UTC)),
        ("2024-08-24T04:14:40+02:00", datetime(2024, 8, 24, 2, 14, 40, tzinfo=UTC)),
        ("2024-08-24T04:14:40+0200", datetime(2024, 8, 24, 2, 14, 40, tzinfo=UTC)),
        ("2023-04-16T05:22:26.150574123Z", datetime(2023, 4, 16, 5, 22, 26, 150574, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    parsed = parse_time(text, "t")
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)
    assert parsed.tzinfo is UTC or parsed.tzinfo == UTC


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2023-05-18", r"'t' is not an ISO 8601 date-time"),
        ("18/05/2023 12:59", r"'t' is not an ISO 8601 date-time"),
        ("2023-02-30T00:00:00Z", r"'t' is not a valid date-time"),
        ("0001-01-01T00:00:00+01:00", r"'t' is out of the representable range"),
        (1684414748.167, r"'t' must be an ISO 8601 string, got number"),
        (None, r"'t' must be an ISO 8601 string, got null"),
    ],
)
def test_parse_time_refusals(value: object, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        parse_time(value, "t")


# --------------------------------------------------------------------------- #
# Getters and schema URLs
# --------------------------------------------------------------------------- #


def test_getters_name_the_key() -> None:
    doc = {"a": "x", "n": True, "o": [], "big": 10**400}
    with pytest.raises(SchemaError, match=r"missing required key 'event.b'"):
        json_common.req_str(doc, "b", "event")
    with pytest.raises(SchemaError, match=r"key 'n' must be a number, got boolean"):
        json_common.req_number(doc, "n")
    with pytest.raises(SchemaError, match=r"key 'o' must be an object, got array"):
        json_common.req_obj(doc, "o")
    with pytest.raises(SchemaError, match=r"key 'big' is a number too large for a double"):
        json_common.req_number(doc, "big")
    with pytest.raises(SchemaError, match=r"key 'a' must be a boolean, got string"):
        json_common.opt_bool(doc, "a")
    assert json_common.opt_number(doc, "missing") is None


def test_schema_paths() -> None:
    assert (
        schema_path("https://gcn.nasa.gov/schema/main/gcn/notices/swift/bat/Guano.schema.json")
        == "gcn/notices/swift/bat/Guano.schema.json"
    )
    assert (
        schema_path("https://gcn.nasa.gov/schema/v4.1.0/gcn/notices/superk/sn_alert.schema.json")
        == "gcn/notices/superk/sn_alert.schema.json"
    )
    assert schema_path("https://gcn.nasa.gov/schema/main/../../etc/passwd") is None


# --------------------------------------------------------------------------- #
# Registry refusals
# --------------------------------------------------------------------------- #


def test_unknown_topic_falls_back_on_content(read_notice: Callable[[str], bytes]) -> None:
    # A topic without a registered parser (a new GCN topic, a test topic): the
    # message's own $schema decides, and gives the same Notice as the right topic.
    by_content = parse_json(read_notice(EP), topic="gcn.notices.foo.bar")
    assert by_content == parse_json(read_notice(EP), topic="gcn.notices.einstein_probe.wxt.alert")
    with pytest.raises(UnsupportedNoticeType, match="unrecognised JSON shape"):
        parse_json(b'{"a": 1}', topic="gcn.notices.foo.bar")


def test_unknown_schema() -> None:
    # A GCN schema outside gcn/notices/ (circulars) has no parser and no fallback.
    payload = json.dumps(
        {"$schema": "https://gcn.nasa.gov/schema/main/gcn/circulars.schema.json"}
    ).encode()
    with pytest.raises(
        UnsupportedNoticeType,
        match=r"no JSON parser for \$schema 'gcn/circulars.schema.json'",
    ):
        parse_json(payload)


def test_new_mission_schema_without_id_is_a_schema_error() -> None:
    # A gcn/notices/ schema in no table goes to the generic core-schema parser (issue
    # 17), which names what the core schema requires and the notice lacks.
    payload = json.dumps(
        {"$schema": "https://gcn.nasa.gov/schema/main/gcn/notices/chime/frb.schema.json"}
    ).encode()
    with pytest.raises(SchemaError, match=r"missing required key 'id'"):
        parse_json(payload)


def test_foreign_schema_url_is_named() -> None:
    payload = b'{"$schema": "https://json-schema.org/draft/2020-12/schema"}'
    with pytest.raises(UnsupportedNoticeType, match=r"json-schema.org/draft/2020-12/schema"):
        parse_json(payload)


def test_schema_must_be_a_string() -> None:
    with pytest.raises(SchemaError, match=r"key '\$schema' must be a string, got number"):
        parse_json(b'{"$schema": 4}')


def test_every_error_is_a_notice_error() -> None:
    for exc in (BadCoordinates, BadSkyMap, MalformedPayload, NoPosition, SchemaError):
        assert issubclass(exc, NoticeError)
