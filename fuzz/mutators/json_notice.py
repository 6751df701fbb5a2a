"""Structured mutations of a JSON notice (GCN JSON, ``igwn.gwalert``).

The seed's decoded document is edited: keys dropped, renamed, added or duplicated,
containers swapped, values replaced (null, empty, huge, NaN-ish literals,
overflowing numbers, bad dates, NUL characters, deep nesting), literal text that
``json.dumps`` would not write put in place of a value, and the embedded sky map
damaged (:mod:`fuzz.mutators.skymap`). The draft is then encoded (ASCII or UTF-8,
compact or indented) with its raw literals and duplicate keys substituted in.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from typing import Any

from fuzz.corpus import MAP_STRING_MIN, NoticeSeed
from fuzz.formats import JSONPath, get_path
from fuzz.mutators.common import weighted
from fuzz.mutators.skymap import mutate_map

#: Replacement values for structured JSON mutations.
JSON_VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 0.5, -0.0, 1e308, -1e308, 5e-324, 10**30, -(10**30),
    2**63, 2**64, -(2**63) - 1, "", " ", "x", "NaN", "nan", "Infinity", "-Infinity", "inf",
    "1e999", "null", "true", "0", "-1",
    "2023-05-18T12:59:08.167Z", "2023-02-30T25:61:61Z", "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z", "1970-01-01", "2023-05-18T12:59:08.167+14:00",
    "2023-05-18T12:59:08", "-2023-05-18T00:00:00Z", "2023-05-18T12:59:08.1234567890123Z",
    "S230518h", "MS230518h", "TS230518h", "S2305", "\u0000", "a\u0000b", "\ud800",
    "\u00e9" * 10, "\U0001f600", "a" * 100_000, [], {}, [None], [[[]]], {"a": {"b": None}},
    [1e308, -1e308], list(range(10)), ["H1", "L1", 7], "http://127.0.0.1:9/x.fits",
    "file:///etc/passwd", "../../../etc/passwd", "RETRACTION", "EARLYWARNING", "MDC",
)

#: Literal JSON text put in place of a value (what ``json.dumps`` would not write).
JSON_RAW: tuple[bytes, ...] = (
    b"NaN", b"-NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"1" + b"0" * 5000,
    b"0x10", b"01", b".5", b"+1", b"undefined", b"'x'", b'"\\ud800"', b'"\\u0000"',
    b'"\\udfff\\ud800"', b"1.7976931348623157e309", b"-0", b"4.9e-325", b"[1,]",
    b'{"a":1,}', b"tru", b'"\\x41"', b'"a\nb"', b"1e-99999", b"123456789" * 600,
)

#: Placeholders of the draft, replaced in the encoded text: a raw literal, a duplicate key.
_RAW = "__mm_fuzz_raw_{}__"
_DUP = "__mm_fuzz_dup_{}__"


def _json_paths(node: Any, prefix: JSONPath = ()) -> list[JSONPath]:
    found: list[JSONPath] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((*prefix, key))
            found.extend(_json_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.append((*prefix, index))
            found.extend(_json_paths(value, (*prefix, index)))
    return found


def _map_paths(doc: Any) -> list[JSONPath]:
    return [p for p in _json_paths(doc)
            if isinstance(get_path(doc, p), str) and len(get_path(doc, p)) >= MAP_STRING_MIN]


@dataclass
class JSONDraft:
    """A JSON document being mutated, with what its encoding must substitute.

    Attributes
    ----------
    doc : object
        The decoded document (a deep copy of the seed's), edited in place.
    raw : dict of str to bytes
        Placeholder strings of the document and the literal JSON text put for each.
    dups : dict of str to str
        Placeholder keys and the (duplicate) key name each becomes.
    """

    doc: Any
    raw: dict[str, bytes] = field(default_factory=dict)
    dups: dict[str, str] = field(default_factory=dict)

    def sentinel_raw(self, text: bytes) -> str:
        """A placeholder value that :meth:`encode` replaces with ``text`` verbatim."""
        key = _RAW.format(len(self.raw))
        self.raw[key] = text
        return key

    def encode(self, rng: random.Random) -> bytes:
        """The payload: the document encoded (ASCII or UTF-8, compact or indented),
        placeholders replaced."""
        ascii_only = rng.random() < 0.8
        indent = rng.choice((None, None, None, 2))
        text = json.dumps(self.doc, ensure_ascii=ascii_only, indent=indent)
        out = text.encode("utf-8", "surrogatepass")
        for key, raw in self.raw.items():
            out = out.replace(json.dumps(key).encode(), raw, 1)
        for key, name in self.dups.items():
            out = out.replace(json.dumps(key).encode(), json.dumps(name).encode(), 1)
        return out


def mutate_doc(rng: random.Random, draft: JSONDraft) -> str:
    """One structured mutation of a decoded JSON document (in ``draft``)."""
    doc = draft.doc
    paths = _json_paths(doc)
    maps = _map_paths(doc)
    ops = [("replace", 30), ("drop", 14), ("rename", 6), ("add", 5), ("raw", 12),
           ("nest", 4), ("dup_key", 5), ("container", 4)]
    if maps:
        ops.append(("skymap", 60))
    op = weighted(rng, ops)
    if not paths and op != "add":
        op = "add"
    if op == "skymap":
        path = rng.choice(maps)
        text, sub = mutate_map(rng, get_path(doc, path))
        get_path(doc, path[:-1])[path[-1]] = text
        return f"json.skymap.{sub}"
    if op == "add":
        parents = [p for p in [(), *paths] if isinstance(get_path(doc, p), dict)]
        parent = get_path(doc, rng.choice(parents)) if parents else doc
        if isinstance(parent, dict):
            parent[rng.choice(("extra", "event", "skymap", "alert_type", "$schema", "ra",
                               "\u0000", ""))] = rng.choice(JSON_VALUES)
        return "json.add"
    path = rng.choice(paths)
    parent, last = get_path(doc, path[:-1]), path[-1]
    if op == "replace":
        parent[last] = copy.deepcopy(rng.choice(JSON_VALUES))
    elif op == "drop":
        del parent[last]
    elif op == "rename" and isinstance(parent, dict):
        assert isinstance(last, str)
        new = rng.choice((last.upper(), last + "_x", "", last[:-1], " " + last))
        parent[new] = parent.pop(last)
    elif op == "raw":
        parent[last] = draft.sentinel_raw(rng.choice(JSON_RAW))
    elif op == "nest":
        depth = rng.choice((63, 64, 65, 200, 1000, 100_000))
        parent[last] = draft.sentinel_raw(b"[" * depth + b"1" + b"]" * depth)
    elif op == "dup_key" and isinstance(parent, dict):
        key = _DUP.format(len(draft.dups))
        draft.dups[key] = str(last)
        parent[key] = copy.deepcopy(rng.choice(JSON_VALUES))
    elif op == "container":
        value = parent[last]
        if isinstance(value, dict):
            parent[last] = list(value.values())
        elif isinstance(value, list):
            parent[last] = {str(i): v for i, v in enumerate(value)}
        else:
            parent[last] = [value]
    return f"json.{op}"


def structured(rng: random.Random, seed: NoticeSeed,
               count: int) -> tuple[bytes, list[str]] | None:
    """Apply ``count`` structured mutations to a copy of the seed's document.

    Parameters
    ----------
    rng : random.Random
        Source of every choice.
    seed : NoticeSeed
        A JSON notice (its ``doc`` is never modified).
    count : int
        Number of mutations.

    Returns
    -------
    (bytes, list of str) or None
        The encoded payload and the mutations applied; None when the seed has no
        decoded document (its mutations are then all byte-level).
    """
    if seed.doc is None:
        return None
    draft = JSONDraft(copy.deepcopy(seed.doc))
    ops = [mutate_doc(rng, draft) for _ in range(count)]
    return draft.encode(rng), ops
