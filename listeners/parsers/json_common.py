"""Strict JSON reading for untrusted notice payloads, shared by every JSON parser.

Everything here raises a named :class:`~mm_broker.core.errors.NoticeError`
subclass, never a bare ``ValueError``/``KeyError``/``TypeError``:

* :func:`load_json` — bytes to a JSON object, with a size limit, strict UTF-8, no
  ``NaN``/``Infinity`` literals, no non-finite numbers, no duplicate keys, no lone
  surrogates, and a bounded nesting depth;
* typed getters (:func:`req_str`, :func:`opt_number`, ...) that name the missing
  or mistyped key;
* :func:`check_radius` — error radius validation (positions:
  :func:`mm_broker.core.position.check_position`);
and, in :mod:`listeners.parsers.json_values`, the readers of values with a format
of their own (ISO 8601 times, base64 sky maps, ``$schema`` URLs).

Examples
--------
>>> doc = load_json(b'{"ra": 120.0, "dec": -5.5, "trigger_time": "2024-03-01T21:46:05.13Z"}')
>>> req_number(doc, "ra"), req_number(doc, "dec")
(120.0, -5.5)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from mm_broker.core.errors import (
    BadCoordinates,
    MalformedPayload,
    NoPosition,
    SchemaError,
)

#: Largest payload accepted by :func:`load_json`, in bytes (16 MiB). The largest real
#: notice we hold is an ``igwn.gwalert`` UPDATE with two embedded multi-order maps
#: (2.07 MB); an LVK map at higher resolution is a few MB of base64. Anything past
#: 16 MiB is refused before decoding, so a hostile payload cannot exhaust memory.
DEFAULT_MAX_BYTES = 16 * 1024 * 1024

#: Deepest nesting of arrays/objects accepted (real notices nest 3 levels).
MAX_DEPTH = 64

#: Longest identifier accepted as an event/trigger id (characters).
MAX_ID_LENGTH = 128

JSONObject = dict[str, Any]


class _Rejected(Exception):
    """Internal: raised from inside the JSON decoder hooks, turned into a NoticeError."""


# --------------------------------------------------------------------------- #
# Loading
# --------------------------------------------------------------------------- #


def _reject_constant(name: str) -> float:
    raise _Rejected(f"non-standard JSON literal {name} is not accepted")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Rejected(f"number {text[:40]} overflows a double")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> JSONObject:
    obj: JSONObject = {}
    for key, value in pairs:
        if key in obj:
            raise _Rejected(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _check_tree(root: Any) -> None:
    """Walk the decoded tree: bounded depth, strings that are valid Unicode."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_string(node)
            continue
        if depth > MAX_DEPTH:
            raise _Rejected(f"nesting deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            for key, value in node.items():
                _check_string(key)
                if isinstance(value, dict | list | str):
                    stack.append((value, depth + 1))
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node if isinstance(item, dict | list | str))


def _check_string(text: str) -> None:
    if "\x00" in text:
        # Valid JSON (\u0000) but no text store takes it (PostgreSQL text and jsonb
        # refuse NUL), and no notice field has a use for it.
        raise _Rejected("string contains a NUL character (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Rejected(f"string contains a lone surrogate escape at index {exc.start}") from None


def load_json(payload: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> JSONObject:
    """Decode an untrusted JSON notice payload into a dict.

    Parameters
    ----------
    payload : bytes
        The raw message value, UTF-8 encoded JSON.
    max_bytes : int, optional
        Refuse payloads longer than this many bytes (default
        :data:`DEFAULT_MAX_BYTES`, 16 MiB).

    Returns
    -------
    dict
        The top-level JSON object.

    Raises
    ------
    MalformedPayload
        Payload too large, not UTF-8, not JSON (including truncated JSON), ``NaN`` /
        ``Infinity`` literals, numbers overflowing a double, duplicate keys, lone
        surrogate escapes, or nesting deeper than :data:`MAX_DEPTH`.
    SchemaError
        The top level is valid JSON but not an object.

    Examples
    --------
    >>> load_json(b'{"a": [1, 2.5]}')
    {'a': [1, 2.5]}
    >>> try:
    ...     load_json(b'{"a": NaN}')
    ... except MalformedPayload as exc:
    ...     print(exc)
    malformed: not valid JSON: non-standard JSON literal NaN is not accepted
    """
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise MalformedPayload(f"payload must be bytes, got {type(payload).__name__}")
    size = len(payload)
    if size > max_bytes:
        raise MalformedPayload(f"payload of {size} bytes exceeds the limit of {max_bytes} bytes")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPayload(f"payload is not valid UTF-8 (byte {exc.start})") from None
    try:
        doc = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_no_duplicates,
        )
        _check_tree(doc)
    except _Rejected as exc:
        raise MalformedPayload(f"not valid JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise MalformedPayload(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise MalformedPayload("not valid JSON: nesting too deep") from None
    except ValueError as exc:  # e.g. an integer literal of more than 4300 digits
        raise MalformedPayload(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise SchemaError(f"top level must be a JSON object, got {json_kind(doc)}")
    return doc


# --------------------------------------------------------------------------- #
# Typed getters
# --------------------------------------------------------------------------- #


def json_kind(value: Any) -> str:
    """JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def key_path(key: str, ctx: str) -> str:
    """``ctx.key`` (or ``key`` at the top level), as error messages name a key."""
    return f"{ctx}.{key}" if ctx else key


def _missing(key: str, ctx: str) -> SchemaError:
    return SchemaError(f"missing required key {key_path(key, ctx)!r}")


def _wrong(key: str, ctx: str, expected: str, value: Any) -> SchemaError:
    return SchemaError(f"key {key_path(key, ctx)!r} must be {expected}, got {json_kind(value)}")


def has(doc: Mapping[str, Any], key: str) -> bool:
    """True when ``key`` is present and not ``null``."""
    return doc.get(key) is not None


def as_number(value: Any, key: str, ctx: str = "") -> float:
    """Return ``value`` as a finite float, or raise :class:`SchemaError`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong(key, ctx, "a number", value)
    try:
        number = float(value)
    except OverflowError:
        raise SchemaError(
            f"key {key_path(key, ctx)!r} is a number too large for a double") from None
    if not math.isfinite(number):
        raise SchemaError(f"key {key_path(key, ctx)!r} must be finite, got {number}")
    return number


def req_str(doc: Mapping[str, Any], key: str, ctx: str = "") -> str:
    """Required non-empty string."""
    value = doc.get(key)
    if value is None:
        raise _missing(key, ctx)
    if not isinstance(value, str):
        raise _wrong(key, ctx, "a string", value)
    if not value.strip():
        raise SchemaError(f"key {key_path(key, ctx)!r} is an empty string")
    return value


def opt_str(doc: Mapping[str, Any], key: str, ctx: str = "") -> str | None:
    """Optional string (``None`` when absent or null)."""
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _wrong(key, ctx, "a string", value)
    return value


def req_number(doc: Mapping[str, Any], key: str, ctx: str = "") -> float:
    """Required finite number."""
    value = doc.get(key)
    if value is None:
        raise _missing(key, ctx)
    return as_number(value, key, ctx)


def opt_number(doc: Mapping[str, Any], key: str, ctx: str = "") -> float | None:
    """Optional finite number."""
    value = doc.get(key)
    if value is None:
        return None
    return as_number(value, key, ctx)


def opt_bool(doc: Mapping[str, Any], key: str, ctx: str = "") -> bool | None:
    """Optional boolean."""
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _wrong(key, ctx, "a boolean", value)
    return value


def req_obj(doc: Mapping[str, Any], key: str, ctx: str = "") -> JSONObject:
    """Required JSON object."""
    value = doc.get(key)
    if value is None:
        raise _missing(key, ctx)
    if not isinstance(value, dict):
        raise _wrong(key, ctx, "an object", value)
    return value


def opt_obj(doc: Mapping[str, Any], key: str, ctx: str = "") -> JSONObject | None:
    """Optional JSON object."""
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _wrong(key, ctx, "an object", value)
    return value


def opt_list(doc: Mapping[str, Any], key: str, ctx: str = "") -> list[Any] | None:
    """Optional JSON array."""
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _wrong(key, ctx, "an array", value)
    return value


def opt_str_list(doc: Mapping[str, Any], key: str, ctx: str = "") -> list[str] | None:
    """Optional array of strings."""
    items = opt_list(doc, key, ctx)
    if items is None:
        return None
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise _wrong(f"{key}[{index}]", ctx, "a string", item)
    return list(items)


def opt_int(
    doc: Mapping[str, Any], key: str, ctx: str = "", *, maximum: int = 2**31 - 1
) -> int | None:
    """Optional non-negative integer (an integral JSON number such as ``3`` or ``3.0``)."""
    value = opt_number(doc, key, ctx)
    if value is None:
        return None
    if value != int(value) or not 0 <= value <= maximum:
        raise SchemaError(
            f"key {key_path(key, ctx)!r} must be an integer in [0, {maximum}], got {value!r}"
        )
    return int(value)


def number_map(doc: Mapping[str, Any], key: str, ctx: str = "") -> dict[str, float] | None:
    """Optional object whose values are all finite numbers (classification tables)."""
    obj = opt_obj(doc, key, ctx)
    if obj is None:
        return None
    return {name: as_number(value, f"{key}.{name}", ctx) for name, value in obj.items()}


def ident(value: Any, key: str, ctx: str = "") -> str:
    """Validate one identifier: a short printable string (or an integer, as text)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _wrong(key, ctx, "a string identifier", value)
    text = str(value).strip()
    if not text:
        raise SchemaError(f"key {key_path(key, ctx)!r} is an empty identifier")
    if len(text) > MAX_ID_LENGTH or not text.isprintable():
        raise SchemaError(
            f"key {key_path(key, ctx)!r} is not a printable identifier of at most "
            f"{MAX_ID_LENGTH} characters"
        )
    return text


def id_list(doc: Mapping[str, Any], key: str, ctx: str = "") -> list[str] | None:
    """Optional identifier list: the GCN ``Event.id`` / ``event_name`` convention.

    The schema says "array", but several producers send a bare string (MAXI,
    KM3NeT); both are accepted. An empty array counts as absent.
    """
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, list):
        return [ident(item, f"{key}[{i}]", ctx) for i, item in enumerate(value)] or None
    return [ident(value, key, ctx)]


# --------------------------------------------------------------------------- #
# Coordinates
# --------------------------------------------------------------------------- #


def check_radius(radius: float, key: str = "ra_dec_error") -> float:
    """Validate an error radius / semi-axis in degrees.

    Returns
    -------
    float
        The radius, in ``(0, 180]``.

    Raises
    ------
    BadCoordinates
        Non-finite, negative or larger than 180 degrees.
    NoPosition
        Exactly zero: the notice gives a position without a usable error region.
    """
    if not math.isfinite(radius):
        raise BadCoordinates(f"{key} = {radius!r} is not finite")
    if radius < 0:
        raise BadCoordinates(f"{key} = {radius:g} deg is negative")
    if radius == 0:
        raise NoPosition(f"{key} is 0: no usable error region")
    if radius > 180.0:
        raise BadCoordinates(f"{key} = {radius:g} deg is larger than 180 deg")
    return radius


def check_probability(value: float, key: str) -> float:
    """Validate a containment probability in ``(0, 1]``."""
    if not 0.0 < value <= 1.0:
        raise SchemaError(f"{key} = {value:g} is not a probability in (0, 1]")
    return value
