"""JSON notice values with a format of their own, shared by every JSON parser.

* :func:`parse_time` — ISO 8601 to a timezone-aware UTC :class:`~datetime.datetime`
  (:func:`format_time`, :func:`epoch_seconds` the other way);
* :func:`decode_fits_base64` — a base64 sky map to FITS bytes;
* :func:`schema_path`, :func:`doc_schema_path` — a GCN ``$schema`` URL to its
  version-independent path (the JSON registry's key).

Like :mod:`listeners.parsers.json_common`, everything here raises a named
:class:`~mm_broker.core.errors.NoticeError` subclass.

Examples
--------
>>> parse_time("2024-03-01T21:46:05.13Z", "trigger_time").isoformat()
'2024-03-01T21:46:05.130000+00:00'
>>> schema_path("https://gcn.nasa.gov/schema/v4.0.0/gcn/notices/swift/bat/Guano.schema.json")
'gcn/notices/swift/bat/Guano.schema.json'
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from listeners.parsers.json_common import json_kind, key_path, opt_str
from mm_broker.core.errors import BadSkyMap, SchemaError

# --------------------------------------------------------------------------- #
# Times
# --------------------------------------------------------------------------- #

_ISO = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})"
    r"(?:\.(?P<frac>\d{1,12}))?(?P<tz>Z|z|[+-]\d{2}:?\d{2})?"
)


def parse_time(value: Any, key: str, ctx: str = "") -> datetime:
    """Parse an ISO 8601 date-time into a timezone-aware UTC datetime.

    GCN and LVK times are UTC; a string without offset (``2024-08-24T02:14:40.43``,
    as in the Fermi and SVOM examples) is read as UTC. Fractions beyond microseconds
    are truncated; a leap second (``:60``) is clamped to ``:59.999999``.

    Raises
    ------
    SchemaError
        Not a string, or not an ISO 8601 date-time.

    Examples
    --------
    >>> parse_time("2023-05-18T12:59:08.167Z", "time").isoformat()
    '2023-05-18T12:59:08.167000+00:00'
    >>> parse_time("2024-08-24T02:14:40.43", "t").tzinfo
    datetime.timezone.utc
    """
    where = key_path(key, ctx)
    if not isinstance(value, str):
        raise SchemaError(f"key {where!r} must be an ISO 8601 string, got {json_kind(value)}")
    match = _ISO.fullmatch(value.strip())
    if match is None:
        raise SchemaError(f"key {where!r} is not an ISO 8601 date-time: {value[:40]!r}")
    second = int(match["s"])
    frac = (match["frac"] or "")[:6].ljust(6, "0")
    leap = second == 60
    text = (
        f"{match['date']}T{match['h']}:{match['m']}:{59 if leap else second:02d}.{frac}"
        f"{_offset(match['tz'])}"
    )
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise SchemaError(f"key {where!r} is not a valid date-time: {value[:40]!r}") from None
    if leap:
        parsed = parsed.replace(microsecond=999999)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise SchemaError(
            f"key {where!r} is out of the representable range: {value[:40]!r}"
        ) from None


def _offset(tz: str | None) -> str:
    if tz is None or tz in ("Z", "z"):
        return "+00:00"
    if ":" not in tz:
        return f"{tz[:3]}:{tz[3:]}"
    return tz


def format_time(value: datetime) -> str:
    """ISO 8601 UTC with a ``Z`` suffix (milliseconds kept when present)."""
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat()
    return f"{text}Z"


#: Unix epoch (UTC), for integer version numbers derived from times.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_seconds(value: datetime) -> int:
    """Whole seconds since 1970-01-01T00:00:00Z (floor)."""
    return (value - EPOCH) // timedelta(seconds=1)


# --------------------------------------------------------------------------- #
# Sky maps
# --------------------------------------------------------------------------- #

_FITS_MAGIC = b"SIMPLE"
#: FITS files are made of blocks of this many bytes.
FITS_BLOCK = 2880
_GZIP_MAGIC = b"\x1f\x8b"
_WHITESPACE = {ord(c): None for c in " \t\r\n"}


def decode_fits_base64(text: Any, key: str) -> bytes:
    """Decode a base64 FITS sky map (possibly gzip-compressed) and check its magic.

    Only the encoding and the first FITS card are checked here; reading the map is
    the business of :mod:`skymaps`.

    Parameters
    ----------
    text : str
        The base64 text (ASCII whitespace is ignored).
    key : str
        Name of the field, for error messages.

    Returns
    -------
    bytes
        The decoded bytes, exactly as the producer encoded them.

    Raises
    ------
    BadSkyMap
        Not a string, not valid base64, empty, not FITS (``SIMPLE`` after an
        optional gzip layer), or truncated (not a whole number of 2880-byte blocks,
        from the gzip trailer when compressed).
    """
    if not isinstance(text, str):
        raise BadSkyMap(f"{key} must be a base64 string, got {json_kind(text)}")
    try:
        data = base64.b64decode(text.translate(_WHITESPACE), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadSkyMap(f"{key} is not valid base64 ({exc}); starts {text[:24]!r}") from None
    if not data:
        raise BadSkyMap(f"{key} decodes to an empty map")
    head = data[:80]
    if data.startswith(_GZIP_MAGIC):
        try:
            head = zlib.decompressobj(wbits=31).decompress(data[:65536], 80)
        except zlib.error as exc:
            raise BadSkyMap(f"{key} is gzip data that does not decompress ({exc})") from None
        if not head:
            raise BadSkyMap(f"{key} is gzip data that does not decompress (truncated)")
    if not head.startswith(_FITS_MAGIC):
        raise BadSkyMap(f"{key} does not decode to a FITS file (first bytes {head[:8]!r})")
    # A FITS file is a whole number of 2880-byte blocks; for gzip, the trailer gives
    # the uncompressed size (mod 2**32). Either catches a truncated map cheaply.
    size = int.from_bytes(data[-4:], "little") if data.startswith(_GZIP_MAGIC) else len(data)
    if size % FITS_BLOCK:
        raise BadSkyMap(
            f"{key} is truncated: {size} bytes of FITS is not a whole number of "
            f"{FITS_BLOCK}-byte blocks"
        )
    return data


# --------------------------------------------------------------------------- #
# GCN $schema URLs
# --------------------------------------------------------------------------- #

_SCHEMA_URL = re.compile(r"https?://gcn\.nasa\.gov/schema/(?:[^/]+)/(?P<path>gcn/.+\.schema\.json)")


def schema_path(url: str) -> str | None:
    """Version-independent path of a GCN unified-schema URL.

    Examples
    --------
    >>> schema_path("https://gcn.nasa.gov/schema/v4.1.0/gcn/notices/einstein_probe/wxt/alert.schema.json")
    'gcn/notices/einstein_probe/wxt/alert.schema.json'
    >>> schema_path("https://example.org/x.json") is None
    True
    """
    match = _SCHEMA_URL.fullmatch(url.strip())
    return None if match is None else match["path"]


def doc_schema_path(doc: Mapping[str, Any]) -> str | None:
    """The ``$schema`` path of a document, ``None`` when it has no ``$schema``.

    Raises
    ------
    SchemaError
        ``$schema`` present but not a string.
    """
    url = opt_str(doc, "$schema")
    if url is None:
        return None
    return schema_path(url) or url.strip()
