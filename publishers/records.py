"""Validation of outbound records against their schema file, before anything is sent.

A record is a plain mapping with the fields of ``counterpart-vN.avsc`` or
``retraction-vN.avsc``. :func:`validate` returns a new dict ready for Avro encoding
(every schema field present, optional ones filled with their defaults, numpy
scalars turned into Python numbers) or raises :class:`InvalidRecord` naming the
first field at fault. What is checked:

* every field without a default is present (``null`` allowed only where the schema
  has a ``null`` branch), and no field outside the schema is given — except a field
  that a *newer* version of the same schema defines (e.g. ``catalogue_versions`` of
  ``counterpart-v2`` given to ``counterpart-v1``): the older version has no slot for
  it, so it is left out of the result (such fields always have a default, so a
  reader of the newer version gets that default);
* types: strings, integers (not booleans), finite floats (no NaN, no ±inf, also
  inside maps), booleans, enum symbols;
* ranges of the physical quantities (:data:`RANGES`), ISO 8601 UTC times
  (:data:`TIMES`), and no ``|`` in the parts of the Kafka key.

Examples
--------
>>> from publishers import schema
>>> s = schema.load("counterpart", 1)
>>> validate({"event_id": "X"}, s)
Traceback (most recent call last):
...
mm_broker.core.errors.InvalidRecord: messenger: missing required field
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

from mm_broker.core.errors import InvalidRecord
from publishers.schema import Schema, by_name, load, versions

#: Allowed closed ranges ``(low, high)`` of numeric fields (``None``: unbounded);
#: ``ra`` is additionally checked to be below 360. 41,253 deg² is the whole sky.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "ra": (0.0, 360.0),
    "dec": (-90.0, 90.0),
    "separation_deg": (0.0, 180.0),
    "separation_ratio": (0.0, None),
    "credible_level": (0.0, 1.0),
    "prob_density_deg2": (0.0, None),
    "p_chance": (0.0, 1.0),
    "rank": (1, None),
    "rate_per_deg2_day": (0.0, None),
    "searched_area_deg2": (0.0, 41253.0),
    "region_area_deg2": (0.0, 41253.0),
    "elapsed_days": (0.0, None),
    "window_days": (0.0, None),
    "mag_err": (0.0, None),
    "notice_version": (0, None),
    "region_version": (0, None),
}

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1

#: Fields holding ISO 8601 UTC times.
TIMES = frozenset({"trigger_time", "alert_time", "retracted_at"})

#: Fields that make up Kafka keys (``|`` separates them, so it may not occur).
KEY_PARTS = frozenset({"event_id", "alert_id"})


class Refusal(NamedTuple):
    """A record that was not published: its key (``None`` if the key's own fields
    were unusable) and the reason."""

    key: str | None
    reason: str


@dataclass(frozen=True)
class _Branch:
    """One non-null branch of a field type, reduced to what validation needs."""

    kind: str
    symbols: tuple[str, ...] = ()
    inner: tuple[_Branch, ...] = ()


def _branches(t: Any) -> tuple[bool, tuple[_Branch, ...]]:
    """(nullable, non-null branches) of an Avro field type."""
    types = t if isinstance(t, list) else [t]
    nullable = False
    out = []
    for b in types:
        if b == "null":
            nullable = True
        elif isinstance(b, str):
            out.append(_Branch(b))
        elif b["type"] == "enum":
            out.append(_Branch("enum", symbols=tuple(b["symbols"])))
        elif b["type"] in ("map", "array"):
            inner = b["values"] if b["type"] == "map" else b["items"]
            out.append(_Branch(b["type"], inner=_branches(inner)[1]))
        else:
            out.append(_Branch(b["type"]))
    return nullable, tuple(out)


def _utc_iso(field: str, value: str) -> None:
    try:
        t = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRecord(field, f"{value!r} is not an ISO 8601 time") from exc
    if t.tzinfo is None or t.utcoffset() != timedelta(0):
        raise InvalidRecord(field, f"{value!r} is not UTC (add 'Z' or '+00:00')")


def _scalar(field: str, value: Any, branch: _Branch) -> Any:
    """``value`` converted for ``branch``; raise if it does not fit."""
    kind = branch.kind
    t = type(value)
    if t is float and kind == "double":
        if not math.isfinite(value):
            raise InvalidRecord(field, f"{value!r} is not a finite number")
        return value
    if t is int and kind == "long" and _LONG_MIN <= value <= _LONG_MAX:
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise TypeError
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise TypeError
        return value
    if kind in ("int", "long"):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError
        integer = int(value)
        low, high = (_INT_MIN, _INT_MAX) if kind == "int" else (_LONG_MIN, _LONG_MAX)
        if not low <= integer <= high:
            raise InvalidRecord(field, f"{integer} does not fit an Avro {kind}")
        return integer
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError
        number = float(value)
        if not math.isfinite(number):
            raise InvalidRecord(field, f"{value!r} is not a finite number")
        return number
    if kind == "enum":
        if value not in branch.symbols:
            raise InvalidRecord(field, f"{value!r} is not one of {list(branch.symbols)}")
        return str(value)
    if kind == "map":
        if not isinstance(value, Mapping):
            raise TypeError
        return {str(k): _convert(f"{field}[{k!r}]", v, False, branch.inner)
                for k, v in value.items()}
    if kind == "array":
        if isinstance(value, (str, bytes, Mapping)):
            raise TypeError
        return [_convert(f"{field}[{i}]", v, False, branch.inner) for i, v in enumerate(value)]
    raise InvalidRecord(field, f"unsupported schema type {kind!r}")


def _convert(field: str, value: Any, nullable: bool, branches: tuple[_Branch, ...]) -> Any:
    if value is None:
        if nullable:
            return None
        raise InvalidRecord(field, "is null but the field is not nullable")
    for branch in branches:
        try:
            return _scalar(field, value, branch)
        except TypeError:
            continue
    wanted = " or ".join(b.kind for b in branches)
    raise InvalidRecord(field, f"{value!r} ({type(value).__name__}) is not a {wanted}")


def _check_range(field: str, value: Any) -> None:
    if value is None or field not in RANGES:
        return
    low, high = RANGES[field]
    if (low is not None and value < low) or (high is not None and value > high):
        raise InvalidRecord(field, f"{value!r} is outside [{low}, {high}]")
    if field == "ra" and value >= 360.0:
        raise InvalidRecord(field, f"{value!r} is outside [0, 360)")


@dataclass(frozen=True)
class _FieldPlan:
    """How to check one field (computed once per schema)."""

    name: str
    required: bool
    default: Any
    nullable: bool
    branches: tuple[_Branch, ...]
    is_time: bool
    is_key: bool


@cache
def _plan(schema_name: str) -> tuple[_FieldPlan, ...]:
    plans = []
    for f in by_name(schema_name).fields:
        nullable, branches = _branches(f["type"])
        plans.append(_FieldPlan(f["name"], "default" not in f, f.get("default"), nullable,
                                branches, f["name"] in TIMES, f["name"] in KEY_PARTS))
    return tuple(plans)


def validate(record: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    """Check ``record`` against ``schema`` and return it ready for encoding.

    Parameters
    ----------
    record : mapping
        A counterpart or retraction record (plain dict).
    schema : Schema
        The schema it will be written with.

    Returns
    -------
    dict
        All fields of ``schema`` in schema order, defaults filled in. Fields that only
        newer versions of the schema define are left out.

    Raises
    ------
    InvalidRecord
        Naming the first field that is missing, unknown (in no version of the
        schema up to the newest), of the wrong type, non-finite or out of range.

    Examples
    --------
    ``rule_versions`` (counterpart v2) is not refused by v1; what is wrong is the
    missing ``mission``:

    >>> from publishers import schema
    >>> r = {"event_id": "E", "messenger": "GW", "rule_versions": {"quality": "1.0.0"}}
    >>> validate(r, schema.load("counterpart", 1))
    Traceback (most recent call last):
    ...
    mm_broker.core.errors.InvalidRecord: mission: missing required field
    """
    if not isinstance(record, Mapping):
        raise InvalidRecord("record", f"is a {type(record).__name__}, not a mapping")
    plan = _plan(schema.name)
    names = _names(schema.name)
    if len(record) > len(plan) or any(k not in names for k in record):
        newer = _newer_names(schema.kind, schema.version)
        unknown = sorted(k for k in record if k not in names and k not in newer)
        if unknown:
            raise InvalidRecord(str(unknown[0]), f"unknown field, not in {schema.name}")
    out: dict[str, Any] = {}
    for f in plan:
        name = f.name
        if name not in record:
            if f.required:
                raise InvalidRecord(name, "missing required field")
            out[name] = list(f.default) if isinstance(f.default, list) else f.default
            continue
        value = _convert(name, record[name], f.nullable, f.branches)
        if value is not None:
            if name in RANGES:
                _check_range(name, value)
            if f.is_time:
                _utc_iso(name, value)
            if f.is_key:
                if "|" in value:
                    raise InvalidRecord(name, f"{value!r} contains '|', the key separator")
                if not value.strip():
                    raise InvalidRecord(name, "is empty")
        out[name] = value
    return out


@cache
def _names(schema_name: str) -> frozenset[str]:
    return frozenset(f.name for f in _plan(schema_name))


@cache
def _newer_names(kind: str, version: int) -> frozenset[str]:
    """Fields defined by versions of ``kind`` newer than ``version`` (and not by it)."""
    names = {f["name"] for v in versions(kind) if v > version for f in load(kind, v).fields}
    return frozenset(names - {f["name"] for f in load(kind, version).fields})


def counterpart_key(record: Mapping[str, Any]) -> str:
    """Kafka key of a counterpart record: ``event_id|region_version|alert_id``."""
    return f"{record['event_id']}|{record['region_version']}|{record['alert_id']}"


def retraction_key(record: Mapping[str, Any]) -> str:
    """Kafka key of a retraction record: ``event_id|notice_version|retraction``."""
    return f"{record['event_id']}|{record['notice_version']}|retraction"


def key_or_none(record: Any, kind: str) -> str | None:
    """The Kafka key of a possibly invalid record, or ``None`` if its key fields are
    missing (used to name refused records in reports)."""
    if not isinstance(record, Mapping):
        return None
    parts = ("event_id", "region_version", "alert_id") if kind == "counterpart" else (
        "event_id", "notice_version")
    if any(record.get(p) is None for p in parts):
        return None
    return counterpart_key(record) if kind == "counterpart" else retraction_key(record)
