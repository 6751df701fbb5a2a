"""Mutation fuzzing seeded from the real JSON notices: only NoticeErrors escape.

Two families of mutations, each applied to a real file and parsed with no topic and
with a drawn topic:

* bytes: flip, overwrite, delete or insert bytes, or truncate — positions biased to
  the head and tail of the file, where the structure is (in LVK alerts the middle is
  a megabyte of base64);
* structure: decode the file, then drop a key or replace a value (anywhere in the
  tree) by null, a string, a huge or negative number, a boolean, an empty or nested
  container, a very long string, or a date string; re-encode.

A parse that succeeds must give a Notice that meets the invariants of
``conftest.check_notice``. The runs are derandomised so CI is reproducible; locally,
raise ``FUZZ_EXAMPLES`` and set ``FUZZ_RANDOM=1`` to search new ground.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from listeners.parsers.json_registry import TOPIC_PARSERS, parse_json
from mm_broker.core.errors import NoticeError
from mm_broker.core.models import Notice

pytestmark = pytest.mark.filterwarnings("error")

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TOPICS: list[str | None] = [None, *sorted(TOPIC_PARSERS)]

#: Replacement values for structured mutations.
REPLACEMENTS: list[Any] = [
    None,
    "x",
    "",
    "NaN",
    "2023-05-18T12:59:08.167Z",
    "S230518h",
    1e308,
    -1e308,
    10**30,
    -(10**30),
    -1,
    0,
    0.5,
    95,
    True,
    False,
    [],
    {},
    [[[[]]]],
    {"a": {"b": {"c": None}}},
    "a" * 10_000,
    ["01708973486", 7],
]


def _parse(payload: bytes, topic: str | None, check: Callable[[Notice], None]) -> None:
    try:
        notice = parse_json(payload, topic=topic)
    except NoticeError as exc:
        assert exc.message and exc.reason
        return
    check(notice)


# --------------------------------------------------------------------------- #
# Byte mutations
# --------------------------------------------------------------------------- #


def _position(data: st.DataObject, size: int) -> int:
    region = data.draw(st.sampled_from(["head", "tail", "anywhere"]))
    if region == "head":
        return data.draw(st.integers(0, min(size, 2000) - 1))
    if region == "tail":
        return data.draw(st.integers(max(0, size - 500), size - 1))
    return data.draw(st.integers(0, size - 1))


@FUZZ
@given(data=st.data())
def test_byte_mutations(
    data: st.DataObject,
    json_notice_paths: list[str],
    read_notice: Callable[[str], bytes],
    notice_invariants: Callable[[Notice], None],
) -> None:
    rel = data.draw(st.sampled_from(json_notice_paths), label="seed")
    payload = bytearray(read_notice(rel))
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        if not payload:
            break
        op = data.draw(st.sampled_from(["flip", "set", "delete", "insert", "truncate"]))
        pos = _position(data, len(payload))
        if op == "flip":
            payload[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set":
            payload[pos] = data.draw(st.sampled_from(b'{}[]",:0-eE.\\ntfu\x00\xff'))
        elif op == "delete":
            del payload[pos : pos + data.draw(st.integers(1, 16))]
        elif op == "insert":
            payload[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
        else:
            del payload[pos:]
    _parse(bytes(payload), data.draw(st.sampled_from(TOPICS), label="topic"), notice_invariants)


# --------------------------------------------------------------------------- #
# Structured mutations
# --------------------------------------------------------------------------- #

Path = tuple[str | int, ...]


def _paths(node: Any, prefix: Path = ()) -> list[Path]:
    """Every key/index path in a decoded JSON tree."""
    found: list[Path] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((*prefix, key))
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.append((*prefix, index))
            found.extend(_paths(value, (*prefix, index)))
    return found


def _mutate(doc: dict[str, Any], path: Path, op: str, value: Any) -> None:
    parent: Any = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if op == "drop":
        del parent[last]
    elif op == "wrap":
        parent[last] = [parent[last]]
    else:
        parent[last] = copy.deepcopy(value)


@pytest.fixture(scope="module")
def decoded(
    json_notice_paths: list[str], read_notice: Callable[[str], bytes]
) -> dict[str, dict[str, Any]]:
    """The seeds that are valid JSON objects, decoded once."""
    seeds = {}
    for rel in json_notice_paths:
        doc = json.loads(read_notice(rel))
        if isinstance(doc, dict):
            seeds[rel] = doc
    return seeds


@FUZZ
@given(data=st.data())
def test_structured_mutations(
    data: st.DataObject,
    decoded: dict[str, dict[str, Any]],
    notice_invariants: Callable[[Notice], None],
) -> None:
    rel = data.draw(st.sampled_from(sorted(decoded)), label="seed")
    doc = copy.deepcopy(decoded[rel])
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = _paths(doc)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        op = data.draw(st.sampled_from(["drop", "replace", "replace", "wrap"]), label="op")
        value = data.draw(st.sampled_from(REPLACEMENTS), label="value")
        _mutate(doc, path, op, value)
    payload = json.dumps(doc).encode("utf-8")
    _parse(payload, data.draw(st.sampled_from(TOPICS), label="topic"), notice_invariants)


@pytest.mark.parametrize("value", REPLACEMENTS, ids=lambda v: type(v).__name__)
def test_every_top_level_key_replaced(
    value: Any,
    decoded: dict[str, dict[str, Any]],
    notice_invariants: Callable[[Notice], None],
) -> None:
    """Exhaustive, not random: each top-level key of each seed, dropped or replaced."""
    for rel, seed in decoded.items():
        if len(json.dumps(seed)) > 100_000:  # the big LVK maps: covered by the random runs
            continue
        for key in seed:
            for op in ("drop", "replace"):
                doc = copy.deepcopy(seed)
                _mutate(doc, (key,), op, value)
                _parse(json.dumps(doc).encode(), None, notice_invariants)
