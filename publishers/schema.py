"""The Avro schemas of our outbound records: files, names, encoding, compatibility.

The schemas are JSON files in ``publishers/schemas/``, one per kind and version:
``counterpart-v1.avsc``, ``retraction-v1.avsc``, … Every Kafka message names the
schema it was written with in its ``schema`` header, as ``mm_broker.<kind>/<version>``
(e.g. ``mm_broker.counterpart/1``); a reader decodes with exactly that file.

A new version may only add fields that have defaults; it never removes, renames or
retypes a field (``schemas/README.md``). :func:`check_backward_compatible` enforces
that rule between two versions.

Examples
--------
>>> s = load("counterpart", 1)
>>> s.name
'mm_broker.counterpart/1'
>>> by_name("mm_broker.counterpart/1") is s
True
>>> check_backward_compatible(s.raw, s.raw)
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import fastavro

from mm_broker.core.errors import IncompatibleSchema
from mm_broker.core.errors import UnknownRecordSchema as UnknownSchema

#: Kafka header naming the writer schema of a message.
HEADER = "schema"

#: Kinds of record we publish, one schema file series each.
KINDS = ("counterpart", "retraction", "coincidence")

_FILE_RE = re.compile(r"^(?P<kind>[a-z]+)-v(?P<version>[1-9][0-9]*)\.avsc$")
_NAME_RE = re.compile(r"^mm_broker\.(?P<kind>[a-z]+)/(?P<version>[1-9][0-9]*)$")
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


@dataclass(frozen=True, eq=False)
class Schema:
    """One schema file, loaded and parsed.

    Attributes
    ----------
    kind : str
        ``"counterpart"`` or ``"retraction"``.
    version : int
        Version number of the file (also the schema's ``version`` attribute).
    raw : dict
        The JSON of the file, as written.
    parsed : dict
        The schema parsed by :func:`fastavro.parse_schema`.
    """

    kind: str
    version: int
    raw: dict[str, Any]
    parsed: dict[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        """Header value naming this schema, e.g. ``"mm_broker.counterpart/1"``."""
        return schema_name(self.kind, self.version)

    @property
    def filename(self) -> str:
        """File name inside ``publishers/schemas/``."""
        return f"{self.kind}-v{self.version}.avsc"

    @property
    def fields(self) -> list[dict[str, Any]]:
        """The top-level fields, in file order."""
        return list(self.raw["fields"])

    @property
    def required(self) -> list[str]:
        """Names of the fields without a default (a record must carry them)."""
        return [f["name"] for f in self.raw["fields"] if "default" not in f]

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """Avro binary encoding of ``record`` (schemaless: no container header)."""
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, self.parsed, dict(record))
        return buf.getvalue()

    def decode(self, data: bytes) -> dict[str, Any]:
        """Decode Avro binary ``data`` written with this schema."""
        out = fastavro.schemaless_reader(io.BytesIO(data), self.parsed, None)
        if not isinstance(out, dict):
            raise TypeError(f"{self.name}: decoded a {type(out).__name__}, not a record")
        return out


def schema_name(kind: str, version: int) -> str:
    """Header value for ``kind`` at ``version``: ``mm_broker.<kind>/<version>``."""
    return f"mm_broker.{kind}/{version}"


def _folder() -> Any:
    return resources.files("publishers").joinpath("schemas")


def versions(kind: str) -> list[int]:
    """Versions of ``kind`` present in ``publishers/schemas/``, ascending."""
    return list(_versions(kind))


@cache
def _versions(kind: str) -> tuple[int, ...]:
    found = []
    for entry in _folder().iterdir():
        m = _FILE_RE.match(entry.name)
        if m and m["kind"] == kind:
            found.append(int(m["version"]))
    return tuple(sorted(found))


def load(kind: str, version: int | None = None) -> Schema:
    """Load schema ``kind`` at ``version`` (the newest file when ``None``).

    Raises
    ------
    UnknownSchema
        If there is no such file, or its ``version`` attribute disagrees with its name.
    """
    if kind not in KINDS:
        raise UnknownSchema(f"unknown record kind {kind!r}; known: {', '.join(KINDS)}")
    present = versions(kind)
    if version is None:
        if not present:
            raise UnknownSchema(f"no schema file for {kind!r}")
        version = present[-1]
    if version not in present:
        raise UnknownSchema(f"no schema file {kind}-v{version}.avsc (have {present})")
    return _load(kind, version)


@cache
def _load(kind: str, version: int) -> Schema:
    raw = json.loads(_folder().joinpath(f"{kind}-v{version}.avsc").read_text("utf-8"))
    if raw.get("version") != version:
        raise UnknownSchema(f"{kind}-v{version}.avsc says version {raw.get('version')!r}")
    parsed = fastavro.parse_schema(raw)
    if not isinstance(parsed, dict):
        raise UnknownSchema(f"{kind}-v{version}.avsc is not a record schema")
    return Schema(kind=kind, version=version, raw=raw, parsed=parsed)


def by_name(name: str) -> Schema:
    """The schema named by a ``schema`` header value such as ``mm_broker.counterpart/1``."""
    m = _NAME_RE.match(name)
    if m is None:
        raise UnknownSchema(f"not an mm_broker schema name: {name!r}")
    return load(m["kind"], int(m["version"]))


# --------------------------------------------------------------------------- #
# Compatibility
# --------------------------------------------------------------------------- #


def _full(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _normal(t: Any, ns: str | None, names: dict[str, Any]) -> Any:
    """A comparable form of an Avro type: no docs, defaults or aliases; named
    references resolved; records as ``(name, [(field, type, has_default)])``."""
    if isinstance(t, str):
        if t in _PRIMITIVES:
            return t
        full = _full(t, ns)
        if full not in names:
            raise UnknownSchema(f"reference to undefined type {t!r}")
        return names[full]
    if isinstance(t, list):
        return ["union", *(_normal(b, ns, names) for b in t)]
    kind = t["type"]
    if kind in _PRIMITIVES:
        return kind if "logicalType" not in t else f"{kind}:{t['logicalType']}"
    if kind == "array":
        return ["array", _normal(t["items"], ns, names)]
    if kind == "map":
        return ["map", _normal(t["values"], ns, names)]
    full = _full(t["name"], t.get("namespace", ns))
    inner_ns = full.rsplit(".", 1)[0] if "." in full else None
    if kind == "enum":
        out: Any = ["enum", full, tuple(t["symbols"])]
    elif kind == "fixed":
        out = ["fixed", full, t["size"]]
    elif kind == "record":
        out = ["record", full, []]
        names[full] = out  # before the fields: a record may refer to itself
        for f in t["fields"]:
            out[2].append((f["name"], _normal(f["type"], inner_ns, names), "default" in f))
        return out
    else:
        raise UnknownSchema(f"unknown Avro type {kind!r}")
    names[full] = out
    return out


def _describe(t: Any) -> str:
    if isinstance(t, str):
        return t
    if t[0] == "union":
        return "[" + ", ".join(_describe(b) for b in t[1:]) + "]"
    if t[0] in ("array", "map"):
        return f"{t[0]}<{_describe(t[1])}>"
    return f"{t[0]} {t[1]}"


def _compare(old: Any, new: Any, where: str, problems: list[str], seen: set[str]) -> None:
    if isinstance(old, str) or isinstance(new, str) or old[0] != new[0]:
        if old != new:
            problems.append(f"{where}: type changed from {_describe(old)} to {_describe(new)}")
        return
    tag = old[0]
    if tag == "union":
        if len(old) != len(new):
            problems.append(f"{where}: union changed from {_describe(old)} to {_describe(new)}")
            return
        for i, (a, b) in enumerate(zip(old[1:], new[1:], strict=True)):
            _compare(a, b, f"{where}[{i}]", problems, seen)
    elif tag in ("array", "map"):
        _compare(old[1], new[1], f"{where}<>", problems, seen)
    elif old[1] != new[1]:
        problems.append(f"{where}: {tag} renamed from {old[1]} to {new[1]}")
    elif tag == "enum":
        lost = [s for s in old[2] if s not in new[2]]
        if lost:
            problems.append(f"{where}: enum {old[1]} lost symbols {lost}")
    elif tag == "fixed":
        if old[2] != new[2]:
            problems.append(f"{where}: fixed {old[1]} size changed from {old[2]} to {new[2]}")
    elif tag == "record":
        if old[1] in seen:
            return
        seen.add(old[1])
        new_fields = {name: (t, has_default) for name, t, has_default in new[2]}
        old_names = set()
        for name, t, had_default in old[2]:
            old_names.add(name)
            path = f"{where}.{name}" if where else name
            if name not in new_fields:
                problems.append(f"{path}: field removed (or renamed)")
                continue
            _compare(t, new_fields[name][0], path, problems, seen)
            if had_default and not new_fields[name][1]:
                problems.append(f"{path}: default removed (an optional field became required)")
        for name, _t, has_default in new[2]:
            if name not in old_names and not has_default:
                path = f"{where}.{name}" if where else name
                problems.append(f"{path}: new field without a default")


def _defaults_fit(t: Mapping[str, Any], named: dict[str, Any], problems: list[str],
                  where: str = "") -> None:
    """Each default must be a value of the field's type: of its first branch for a
    union (the Avro rule; fastavro alone accepts any branch)."""
    for f in t.get("fields", []):
        path = f"{where}.{f['name']}" if where else f["name"]
        ftype = f["type"]
        if "default" in f:
            first = ftype[0] if isinstance(ftype, list) else ftype
            probe = {"type": "record", "name": "DefaultProbe",
                     "fields": [{"name": "x", "type": first, "default": f["default"]}]}
            lookup = dict(named) if isinstance(first, str) else {}
            try:
                fastavro.parse_schema(probe, named_schemas=lookup)
            except fastavro.schema.SchemaParseException as exc:
                problems.append(f"{path}: default {f['default']!r} does not fit "
                                f"{json.dumps(first)} ({exc})")
        if isinstance(ftype, dict) and ftype.get("type") == "record":
            _defaults_fit(ftype, named, problems, path)


def compatibility_problems(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Every way in which ``new`` breaks the evolution rule with respect to ``old``.

    Parameters
    ----------
    old, new : mapping
        Schema JSON (as in the ``.avsc`` files) of the previous and the next version.

    Returns
    -------
    list of str
        One line per violation; empty when ``new`` is a backward-compatible
        evolution of ``old`` (a reader of ``new`` can read data written with
        ``old``, and every record valid for ``old`` is still valid for ``new``).
    """
    problems: list[str] = []
    o = _normal(dict(old), None, {})
    n = _normal(dict(new), None, {})
    if o[0] != "record" or n[0] != "record":
        return ["top level: both schemas must be records"]
    _compare(o, n, "", problems, set())
    named: dict[str, Any] = {}
    fastavro.parse_schema(dict(new), named_schemas=named)
    _defaults_fit(new, named, problems)
    ov, nv = old.get("version"), new.get("version")
    if not isinstance(nv, int) or not isinstance(ov, int) or nv < ov:
        problems.append(f"version: {ov!r} -> {nv!r} (the version must not go back)")
    elif nv == ov and o != n:
        problems.append(f"version: fields changed but the version stayed {nv}")
    return problems


def check_backward_compatible(old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """Raise :class:`IncompatibleSchema` unless ``new`` may follow ``old``.

    The rule (``publishers/schemas/README.md``): a new version only adds fields that
    have defaults; it never removes, renames or retypes a field, never drops a
    symbol from an enum, never makes an optional field required, and carries a
    higher ``version``. Documentation strings may change freely.

    Examples
    --------
    >>> v1 = load("counterpart", 1).raw
    >>> v2 = {**v1, "version": 2, "fields": v1["fields"] + [
    ...     {"name": "host_galaxy", "type": ["null", "string"], "default": None}]}
    >>> check_backward_compatible(v1, v2)
    >>> bad = {**v2, "fields": [f for f in v2["fields"] if f["name"] != "ra"]}
    >>> check_backward_compatible(v1, bad)
    Traceback (most recent call last):
    ...
    mm_broker.core.errors.IncompatibleSchema: incompatible schema change:
      ra: field removed (or renamed)
    """
    problems = compatibility_problems(old, new)
    if problems:
        raise IncompatibleSchema(problems)
