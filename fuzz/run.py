"""Mutation fuzzer of the notice parsers and the alert decoder (``python -m fuzz.run``).

Every case is a real file of the shared data (``--data``, ``MM_DATA_DIR`` or
``../shared/data`` next to the repository), mutated one to three times, and handed to
what a daemon calls with it:

* notices (VOEvent XML, GCN JSON, ``igwn.gwalert`` JSON with a base64 sky map):
  :func:`listeners.parsers.parse` with the topic the payload would come on (or
  another one), then, for a notice with a localisation, :func:`skymaps.region_for`
  (what :func:`mm_broker.app.ingest.ingest` does before it touches the database);
* alerts (ZTF and LSST Avro containers, Confluent-framed Avro bodies):
  :func:`fink_core.decode.decode_avro` (with the Confluent schema registry of the
  case), then, in batches of :data:`ENRICH_BATCH` payloads,
  :func:`fink_core.pipeline.enrich`: the body of the streaming job's ``mapInPandas``
  (decode, flatten, quality flags, annotation), which must keep every payload, as an
  enriched row or as a row with ``decode_error``.

Outcomes
--------
Each case ends in one *kind*: ``Notice``, ``NoticeError:<reason>`` (the reason codes
of :mod:`mm_broker.core.errors`, and ``convention`` of :mod:`skymaps.conventions`),
``Alert``, ``CorruptAlert`` or ``UnknownSchema``. A notice that parses also gets a
region outcome (``Region`` or ``NoticeError:<reason>``), and the enriched rows and
``decode_error`` rows of the alert batches are counted. A *failure* is anything else:

* ``uncaught``: an exception other than those (it would stop a daemon, or fail a
  whole Spark micro-batch);
* ``invariant``: a Notice or Region the store cannot take (naive times, NaN
  coordinates, NaN or NUL characters in its text or JSON fields, a version beyond
  BIGINT, a localisation missing on a non-retraction...), an alert payload missing
  from the output of its batch, a ``decode_error`` without a reason;
* ``empty_reason``: a rejection without a message (the journal row needs one);
* ``timeout``: a case that ran longer than ``--case-timeout`` seconds.

Each failure names the seed and case index; ``python -m fuzz.run --seed S --case I``
replays that case alone and prints its traceback (``--dump-dir`` writes its payload).

Determinism
-----------
Case ``i`` of seed ``s`` is drawn from ``random.Random(f"{s}:{i}")`` alone, so a case
is replayed without the ones before it, and the counts of a run depend only on the
seed, the number of cases and the data (timeouts aside). Warnings raised by the code
under test are recorded and counted (never turned into errors, never shown).

Safety nets
-----------
A hostile case may loop or allocate without bound (that is what a fuzzer looks for).
``--case-timeout`` (SIGALRM, main thread) turns a slow case into a ``timeout``
failure once control is back in Python; ``--watchdog`` ends the run with exit code 3
and names the case when a loop in C code never gives control back; ``--memory-mb``
caps the address space (:class:`MemoryCap`), so a memory bomb is a ``MemoryError``
failure of its case rather than a visit of the OOM killer.

Mutations
---------
Bytes (every family): bit flips, set, delete, insert, duplicate, truncate, splice of
two files, positions biased to the head and tail where the structure is. JSON: drop,
rename, add or duplicate keys, swap containers, replace values (null, empty, huge,
NaN-ish literals, overflowing numbers, bad dates, NUL characters, deep nesting), and
sky map damage (bad base64, truncation, padding, flipped characters, url-safe
alphabet, gzip, FITS header cards, non-FITS bytes). XML: DTD and entity
declarations, entity and character references, deep nesting, element and attribute
floods, huge text, UTF-16/UTF-32/EBCDIC, declared encodings, namespaces and versions,
comments, PIs, CDATA, XInclude, and tree edits (Param values, texts, dropped,
duplicated, renamed or moved elements, attributes, role, IVORN and Packet_Type routed
to another mission's parser). Avro: truncation and byte flips (header, first block,
sync marker), varint bombs, header rewrites (codec, schema JSON, metadata), records
re-encoded with out-of-range values, Confluent frames with and without their schema.

Examples
--------
>>> corpus = load_corpus()                                  # doctest: +SKIP
>>> summary = run(corpus, seed=1, n_cases=1000)             # doctest: +SKIP
>>> summary.failures, summary.outcomes["Notice"] > 0        # doctest: +SKIP
(0, True)
"""

from __future__ import annotations

import argparse
import base64
import copy
import dataclasses
import gzip
import hashlib
import io
import json
import math
import os
import random
import re
import resource
import signal
import sys
import threading
import time
import traceback
import warnings
from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
from lxml import etree  # noqa: S410 - parses only the trusted seed files, entities off

from fink_core.decode import META_KEY, decode_avro
from fink_core.pipeline import enrich
from listeners.parsers import parse
from listeners.parsers.json_common import doc_schema_path
from listeners.parsers.json_lvk import looks_like_gwalert
from listeners.parsers.json_registry import NOT_TRIGGERS, SCHEMA_PARSERS, TOPIC_PARSERS
from listeners.parsers.voevent_registry import REGISTRY
from mm_broker.core import config
from mm_broker.core import errors as notice_errors
from mm_broker.core.errors import CorruptAlert, NoticeError, UnknownSchema
from mm_broker.core.models import Box, Circle, Ellipse, Messenger, Notice, Region, Role, SkyMap
from skymaps import region_for
from skymaps.conventions import ConventionError

REPO = Path(__file__).resolve().parent.parent

#: Families of seeds, and the share of cases drawn from each (weights).
FAMILY_WEIGHTS: dict[str, int] = {
    "xml": 36,  # VOEvent 2.0 (and 1.1, namespace-less) notices
    "json": 24,  # GCN JSON notices without an embedded map
    "gwalert": 4,  # JSON notices with a base64 sky map (igwn.gwalert, ~1-2 MB each)
    "avro": 30,  # ZTF and LSST Avro containers
    "confluent": 6,  # the same alerts as Confluent-framed schemaless bodies
}
NOTICE_FAMILIES = frozenset({"xml", "json", "gwalert"})
ALERT_FAMILIES = frozenset({"avro", "confluent"})

#: Avro files read per folder of ``alerts/`` (evenly spaced in name order).
AVRO_PER_FOLDER = 8

#: A JSON string at least this long is treated as an embedded (base64) sky map.
MAP_STRING_MIN = 1000

#: Alert payloads enriched together (the streaming job enriches whole micro-batches).
ENRICH_BATCH = 32

#: Failures kept in full (with traceback) in a summary; all are counted.
MAX_EXAMPLES = 20

#: Rejections of notices: one kind per reason code of a NoticeError subclass.
NOTICE_REASONS: frozenset[str] = frozenset(
    cls.reason
    for cls in vars(notice_errors).values()
    if isinstance(cls, type) and issubclass(cls, NoticeError)
) | {ConventionError.reason}

#: Every outcome kind a case may end in (anything else is a failure).
KNOWN_KINDS: frozenset[str] = frozenset(
    {"Notice", "Alert", "CorruptAlert", "UnknownSchema"}
    | {f"NoticeError:{reason}" for reason in NOTICE_REASONS}
)

#: Region outcomes of the notices that parse.
KNOWN_REGION_KINDS: frozenset[str] = frozenset(
    {"Region"} | {f"NoticeError:{reason}" for reason in NOTICE_REASONS}
)

#: Largest value of the BIGINT version column.
_BIGINT_MAX = 2**63 - 1

#: A path to a value inside a decoded JSON document or Avro record.
JSONPath = tuple[str | int, ...]


def default_data_dir() -> Path:
    """The shared real data: ``MM_DATA_DIR``, else ``../shared/data`` next to the repo.

    Returns
    -------
    pathlib.Path
    """
    return Path(os.environ.get("MM_DATA_DIR", REPO.parent / "shared" / "data")).resolve()


# --------------------------------------------------------------------------- #
# Corpus: the real files
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class NoticeSeed:
    """A real notice file.

    Attributes
    ----------
    rel : str
        Path relative to the data directory.
    family : str
        ``"xml"``, ``"json"`` or ``"gwalert"``.
    data : bytes
        The file's bytes.
    topic : str or None
        The Kafka topic it would arrive on (JSON), if the registry tells one.
    doc : object
        The decoded JSON document (JSON families), never modified.
    """

    rel: str
    family: str
    data: bytes
    topic: str | None = None
    doc: Any = None


@dataclass(frozen=True)
class AvroSeed:
    """A real Avro alert container.

    Attributes
    ----------
    rel : str
        Path relative to the data directory.
    data : bytes
        The file's bytes.
    header_end : int
        Offset of the first data block (0 when the header cannot be read).
    parsed : object
        The writer schema, parsed by fastavro (``None`` if unreadable).
    record : dict or None
        The first record, to re-encode with mutated values.
    body : bytes or None
        The first record as a schemaless body (Confluent frames).
    survey : str or None
        ``"ztf"`` or ``"lsst"`` when the record is one we flatten.
    leaves : tuple
        Paths of the record's values that record mutations change.
    schema_bytes : bytes
        The writer schema as the file's header has it.
    """

    rel: str
    data: bytes
    header_end: int
    parsed: Any
    record: dict[str, Any] | None
    body: bytes | None
    survey: str | None
    leaves: tuple[JSONPath, ...] = ()
    schema_bytes: bytes = b""


@dataclass(frozen=True)
class Corpus:
    """The seeds by family, and the topics a notice may be paired with.

    Attributes
    ----------
    root : pathlib.Path
        The data directory.
    seeds : mapping of str to tuple
        ``family -> seeds`` (:class:`NoticeSeed` or :class:`AvroSeed`).
    topics : tuple of str
        Every topic the registries or the configuration name.
    xml_topics : tuple of str
        The GCN classic VOEvent topics of the configuration.
    """

    root: Path
    seeds: Mapping[str, tuple[Any, ...]]
    topics: tuple[str, ...]
    xml_topics: tuple[str, ...]

    def families(self) -> list[str]:
        """Families that have at least one seed, in :data:`FAMILY_WEIGHTS` order."""
        return [f for f in FAMILY_WEIGHTS if self.seeds.get(f)]

    def size(self) -> dict[str, int]:
        """Number of seeds per family."""
        return {f: len(self.seeds.get(f, ())) for f in FAMILY_WEIGHTS}


def _natural_topic(doc: Any) -> str | None:
    """The topic a JSON notice arrives on, as the registries tell it (or None)."""
    if not isinstance(doc, dict):
        return None
    if looks_like_gwalert(doc):
        return "igwn.gwalert"
    try:
        path = doc_schema_path(doc)
    except NoticeError:
        return None
    parser = SCHEMA_PARSERS.get(path) if path else None
    for topic in sorted(TOPIC_PARSERS):
        if parser is not None and TOPIC_PARSERS[topic] is parser:
            return topic
    return None


def _has_long_string(node: Any) -> bool:
    if isinstance(node, str):
        return len(node) >= MAP_STRING_MIN
    if isinstance(node, dict):
        return any(_has_long_string(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_long_string(v) for v in node)
    return False


def _notice_seeds(root: Path) -> list[NoticeSeed]:
    seeds = []
    for folder in ("notices", "triggers"):
        for path in sorted((root / folder).rglob("*")):
            name = path.name.lower()
            if not path.is_file() or name.endswith((".fits", ".fits.gz", ".gz", ".md")):
                continue
            data = path.read_bytes()
            rel = path.relative_to(root).as_posix()
            if name.endswith(".xml") or data.lstrip()[:1] == b"<":
                seeds.append(NoticeSeed(rel, "xml", data))
                continue
            try:
                doc = json.loads(data)
            except ValueError:
                doc = None
            family = "gwalert" if _has_long_string(doc) else "json"
            seeds.append(NoticeSeed(rel, family, data, _natural_topic(doc), doc))
    return seeds


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = acc = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("bad varint")
        byte = buf[pos]
        pos += 1
        acc |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (acc >> 1) ^ -(acc & 1), pos
        shift += 7


def _varint(value: int) -> bytes:
    """Zig-zag varint encoding of a (64-bit) long, as Avro writes it."""
    acc = ((value << 1) ^ (value >> 63)) & (2**64 - 1)
    out = bytearray()
    while True:
        byte = acc & 0x7F
        acc >>= 7
        if acc:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_header(data: bytes) -> tuple[dict[str, bytes], bytes, int]:
    """Read an Avro container header.

    Parameters
    ----------
    data : bytes
        A container (``Obj\\x01`` magic).

    Returns
    -------
    (dict, bytes, int)
        Metadata map, sync marker, offset of the first data block.

    Raises
    ------
    ValueError
        Not a readable header.
    """
    if data[:4] != b"Obj\x01":
        raise ValueError("no Avro magic")
    pos, meta = 4, {}
    while True:
        count, pos = _read_varint(data, pos)
        if count == 0:
            break
        if count < 0:
            count = -count
            _, pos = _read_varint(data, pos)
        for _ in range(count):
            klen, pos = _read_varint(data, pos)
            key = data[pos : pos + klen]
            pos += klen
            vlen, pos = _read_varint(data, pos)
            meta[key.decode("utf-8", "replace")] = data[pos : pos + vlen]
            pos += vlen
    sync = data[pos : pos + 16]
    if len(sync) != 16:
        raise ValueError("truncated header")
    return meta, sync, pos + 16


def write_header(meta: Mapping[str, bytes], sync: bytes) -> bytes:
    """Encode an Avro container header (magic, metadata map, sync marker)."""
    out = bytearray(b"Obj\x01")
    if meta:
        out += _varint(len(meta))
        for key, value in meta.items():
            raw = key.encode("utf-8", "surrogateescape")
            out += _varint(len(raw)) + raw + _varint(len(value)) + value
    out += _varint(0) + sync
    return bytes(out)


def _avro_seed(root: Path, path: Path) -> AvroSeed:
    data = path.read_bytes()
    rel = path.relative_to(root).as_posix()
    try:
        meta, _, header_end = read_header(data)
        reader = fastavro.reader(io.BytesIO(data))
        parsed = fastavro.parse_schema(reader.writer_schema)
        record = next(iter(reader))
    except (ValueError, StopIteration, EOFError, KeyError, TypeError):
        return AvroSeed(rel, data, 0, None, None, None, None)
    if not isinstance(record, dict):
        return AvroSeed(rel, data, header_end, parsed, None, None, None)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    try:
        survey: str | None = decode_avro(data)[0][META_KEY]["survey"]
    except (CorruptAlert, UnknownSchema):
        survey = None
    return AvroSeed(rel, data, header_end, parsed, record, buf.getvalue(), survey,
                    tuple(_record_leaves(record)), meta.get("avro.schema", b""))


def _avro_seeds(root: Path, per_folder: int) -> list[AvroSeed]:
    by_folder: dict[Path, list[Path]] = {}
    for path in sorted((root / "alerts").rglob("*.avro")):
        by_folder.setdefault(path.parent, []).append(path)
    seeds: list[AvroSeed] = []
    for _, paths in sorted(by_folder.items()):
        step = max(1, len(paths) // per_folder)
        seeds.extend(_avro_seed(root, p) for p in paths[::step][:per_folder])
    return seeds


def load_corpus(root: str | os.PathLike[str] | None = None,
                avro_per_folder: int = AVRO_PER_FOLDER) -> Corpus:
    """Read the seed files of the shared data.

    Parameters
    ----------
    root : path-like, optional
        Data directory (default :func:`default_data_dir`).
    avro_per_folder : int, optional
        Avro files read per folder of ``alerts/`` (all notices are read).

    Returns
    -------
    Corpus

    Raises
    ------
    FileNotFoundError
        No notices or no alerts under ``root``.
    """
    base = Path(root).resolve() if root is not None else default_data_dir()
    if not (base / "notices").is_dir() or not (base / "alerts").is_dir():
        raise FileNotFoundError(f"no notices/ and alerts/ under {base}; set MM_DATA_DIR")
    notices = _notice_seeds(base)
    avro = _avro_seeds(base, avro_per_folder)
    seeds: dict[str, tuple[Any, ...]] = {
        family: tuple(s for s in notices if s.family == family)
        for family in ("xml", "json", "gwalert")
    }
    seeds["avro"] = tuple(avro)
    seeds["confluent"] = tuple(s for s in avro if s.body is not None)
    gcn_topics = list(config.load(environ={}).get("gcn.topics"))
    xml_topics = tuple(t for t in gcn_topics if t.startswith("gcn.classic.voevent."))
    topics = tuple(sorted(set(TOPIC_PARSERS) | set(NOT_TRIGGERS) | set(gcn_topics)))
    return Corpus(base, seeds, topics, xml_topics)


# --------------------------------------------------------------------------- #
# Cases
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Case:
    """One fuzz case: a payload and how to feed it.

    Attributes
    ----------
    seed : str
        Seed of the run (``"hypothesis"`` for cases drawn by hypothesis).
    index : int
        Index of the case in the run.
    family : str
        Family of the seed file (:data:`FAMILY_WEIGHTS`).
    source : str
        The seed file (relative path), and the second file of a splice.
    ops : tuple of str
        The mutations applied, in order.
    payload : bytes
        What is fed to the parser or decoder.
    topic : str or None
        Topic handed to :func:`listeners.parsers.parse` (notices).
    writer_schemas : mapping or None
        Schema registry handed to :func:`fink_core.decode.decode_avro` (Confluent).
    """

    seed: str
    index: int
    family: str
    source: str
    ops: tuple[str, ...]
    payload: bytes
    topic: str | None = None
    writer_schemas: Mapping[int, Any] | None = None

    @property
    def target(self) -> str:
        """``"notice"`` or ``"alert"``."""
        return "notice" if self.family in NOTICE_FAMILIES else "alert"

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (no payload bytes, their digest and size)."""
        return {"seed": self.seed, "case": self.index, "family": self.family,
                "source": self.source, "ops": list(self.ops), "topic": self.topic,
                "size": len(self.payload),
                "sha256": hashlib.sha256(self.payload).hexdigest()}


def _weighted(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    total = sum(w for _, w in table)
    pick = rng.randrange(total)
    for name, weight in table:
        if pick < weight:
            return name
        pick -= weight
    return table[-1][0]


def _pos(rng: random.Random, size: int, head: int = 2000, tail: int = 500) -> int:
    """A position in ``[0, size)``, biased to the head and tail of the payload."""
    roll = rng.random()
    if roll < 0.4:
        return rng.randrange(min(size, head))
    if roll < 0.6:
        return rng.randrange(max(0, size - tail), size)
    return rng.randrange(size)


# ------------------------------- bytes ------------------------------------- #

_INTERESTING_BYTES = {
    "json": b'{}[]",:0-+eE.\\ntfu\x00\xff \x7f',
    "xml": b"<>/=\"'&;!?[]:-#x\x00\xff \x0b",
    "avro": bytes([0x00, 0x01, 0x02, 0x7F, 0x80, 0xFE, 0xFF]),
}
_TOKENS = {
    "json": [b"null", b'"', b"\\u0000", b"\\ud800", b"1e999", b"NaN", b"[", b"{", b"}",
             b"],", b",,", b"\\", b"\xc3\x28", b"\xef\xbb\xbf", b"-", b"00"],
    "xml": [b"<", b"</a>", b"&", b"&amp;", b"&#0;", b"]]>", b"<!--", b"<![CDATA[",
            b"\xef\xbb\xbf", b"\xff\xfe", b"\xc3\x28", b"<a>", b'"', b"/>", b"xmlns=\"\""],
    "avro": [_varint(2**62), _varint(-1), b"\xff" * 10 + b"\x01", _varint(0),
             _varint(2**31), b"Obj\x01", bytes(16)],
}


def _kind_of(family: str) -> str:
    return {"gwalert": "json", "confluent": "avro"}.get(family, family)


def mutate_bytes(rng: random.Random, data: bytearray, family: str,
                 other: bytes | None = None) -> str:
    """Apply one byte-level mutation to ``data`` in place.

    Parameters
    ----------
    rng : random.Random
        Source of every choice.
    data : bytearray
        The payload, changed in place.
    family : str
        Family of the payload (chooses the interesting bytes and tokens).
    other : bytes, optional
        Another seed's bytes, for splices.

    Returns
    -------
    str
        Name of the mutation applied.
    """
    kind = _kind_of(family)
    ops = [("flip", 30), ("set", 15), ("delete", 12), ("insert", 15), ("duplicate", 6),
           ("truncate", 12)]
    if other is not None:
        ops.append(("splice", 10))
    op = _weighted(rng, ops) if data else "insert"
    size = len(data)
    if op == "flip":
        pos = _pos(rng, size)
        for _ in range(rng.choice((1, 1, 1, 2, 4, 8))):
            where = min(size - 1, pos + rng.randrange(8))
            data[where] ^= 1 << rng.randrange(8)
    elif op == "set":
        data[_pos(rng, size)] = rng.choice(_INTERESTING_BYTES[kind])
    elif op == "delete":
        pos = _pos(rng, size)
        del data[pos : pos + rng.choice((1, 1, 2, 4, 16, 64, 4096))]
    elif op == "insert":
        pos = _pos(rng, size) if size else 0
        token = (rng.choice(_TOKENS[kind]) if rng.random() < 0.6
                 else rng.randbytes(rng.randint(1, 16)))
        data[pos:pos] = token
    elif op == "duplicate":
        start = _pos(rng, size)
        chunk = bytes(data[start : start + rng.choice((1, 8, 64, 512))])
        at = _pos(rng, size)
        data[at:at] = chunk * rng.choice((1, 2, 16))
    elif op == "truncate":
        del data[_pos(rng, size) :]
    else:
        assert other is not None
        cut = _pos(rng, size)
        start = _pos(rng, len(other)) if other else 0
        data[cut:] = other[start:]
    return f"bytes.{op}"


# -------------------------------- JSON ------------------------------------- #

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


def _get(doc: Any, path: JSONPath) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _map_paths(doc: Any) -> list[JSONPath]:
    return [p for p in _json_paths(doc)
            if isinstance(_get(doc, p), str) and len(_get(doc, p)) >= MAP_STRING_MIN]


@dataclass
class _JSONDraft:
    doc: Any
    raw: dict[str, bytes] = field(default_factory=dict)
    dups: dict[str, str] = field(default_factory=dict)

    def sentinel_raw(self, text: bytes) -> str:
        key = _RAW.format(len(self.raw))
        self.raw[key] = text
        return key

    def encode(self, rng: random.Random) -> bytes:
        ascii_only = rng.random() < 0.8
        indent = rng.choice((None, None, None, 2))
        text = json.dumps(self.doc, ensure_ascii=ascii_only, indent=indent)
        out = text.encode("utf-8", "surrogatepass")
        for key, raw in self.raw.items():
            out = out.replace(json.dumps(key).encode(), raw, 1)
        for key, name in self.dups.items():
            out = out.replace(json.dumps(key).encode(), json.dumps(name).encode(), 1)
        return out


def _fits_card_edit(rng: random.Random, fits: bytes) -> bytes:
    """Damage one card of the FITS headers at the start of a (decoded) sky map."""
    head = bytearray(fits[: 2880 * 4])
    cards = [i for i in range(0, len(head) - 79, 80) if head[i : i + 8].strip()]
    if not cards:
        return fits
    keywords = [b"NAXIS2", b"NAXIS1", b"TFIELDS", b"TFORM1", b"TFORM2", b"TTYPE1",
                b"ORDERING", b"INDXSCHM", b"NSIDE", b"MOCORDER", b"PIXTYPE", b"BITPIX",
                b"PCOUNT", b"XTENSION", b"END", b"TUNIT2", b"COORDSYS"]
    keyword = rng.choice(keywords)
    matches = [i for i in cards if head[i : i + 8].rstrip() == keyword]
    at = rng.choice(matches) if matches else rng.choice(cards)
    value = rng.choice([b"0", b"-1", b"999999999", b"1E300", b"'XYZ'", b"T", b"F", b"", b"'RING'",
                        b"'NESTED'", b"'NUNIQ'", b"'1K'", b"'1D'", b"'1000000000D'", b"30",
                        b"-32", b"'BINTABLE'", b"NaN"])
    card = bytes((head[at : at + 8] + b"= " + value.rjust(20)).ljust(80)[:80])
    if rng.random() < 0.15:
        card = b" " * 80  # blank the card (END gone when it is the one chosen)
    head[at : at + 80] = card
    return bytes(head) + fits[len(head) :]


def _mutate_map(rng: random.Random, text: str) -> tuple[str, str]:
    """One mutation of a base64 sky map string; returns (new text, op name)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    op = _weighted(rng, [("truncate", 12), ("truncate4", 8), ("badchar", 10),
                         ("whitespace", 5), ("flip", 18), ("flip_header", 14),
                         ("padding", 6), ("urlsafe", 4), ("gzip", 6), ("gzip_damaged", 4),
                         ("fits_card", 16), ("not_fits", 6), ("empty", 3)])
    size = len(text)
    if op == "truncate":
        return text[: rng.randrange(size)], op
    if op == "truncate4":
        return text[: 4 * rng.randrange(max(1, size // 4))], op
    if op == "badchar":
        at = rng.randrange(size)
        return text[:at] + rng.choice("!*-_~\u00e9%\u0000=.") + text[at:], op
    if op == "whitespace":
        at = rng.randrange(size)
        return text[:at] + rng.choice(("\n", " ", "\t", "\r\n")) + text[at:], op
    if op in ("flip", "flip_header"):
        chars = list(text)
        for _ in range(rng.choice((1, 1, 2, 8))):
            at = rng.randrange(min(size, 8000)) if op == "flip_header" else rng.randrange(size)
            chars[at] = rng.choice(alphabet)
        return "".join(chars), op
    if op == "padding":
        stripped = text.rstrip("=")
        middle = text[: size // 2] + "=" + text[size // 2 :]
        return rng.choice((stripped, text + "==", middle, stripped + "=")), op
    if op == "urlsafe":
        return text.replace("+", "-").replace("/", "_"), op
    try:
        raw = base64.b64decode(text, validate=False)
    except ValueError:
        raw = b""
    if op in ("gzip", "gzip_damaged"):
        packed = bytearray(gzip.compress(raw, compresslevel=1, mtime=0))
        if op == "gzip_damaged" and packed:
            if rng.random() < 0.5:
                del packed[-rng.randint(1, 8) :]
            else:
                packed[_pos(rng, len(packed), head=64, tail=8)] ^= 0xFF
        return base64.b64encode(bytes(packed)).decode(), op
    if op == "fits_card":
        return base64.b64encode(_fits_card_edit(rng, raw)).decode(), op
    if op == "not_fits":
        blob = rng.choice((b"SIMPLE  =" + rng.randbytes(2871),
                           b"SIMPLE  =                    T" + bytes(2850) + rng.randbytes(2880),
                           rng.randbytes(2880), b"\x1f\x8b" + rng.randbytes(100)))
        return base64.b64encode(blob).decode(), op
    return rng.choice(("", "=", "====", "AAAA")), op


def _json_structured(rng: random.Random, draft: _JSONDraft) -> str:
    """One structured mutation of a decoded JSON document (in ``draft``)."""
    doc = draft.doc
    paths = _json_paths(doc)
    maps = _map_paths(doc)
    ops = [("replace", 30), ("drop", 14), ("rename", 6), ("add", 5), ("raw", 12),
           ("nest", 4), ("dup_key", 5), ("container", 4)]
    if maps:
        ops.append(("skymap", 60))
    op = _weighted(rng, ops)
    if not paths and op != "add":
        op = "add"
    if op == "skymap":
        path = rng.choice(maps)
        text, sub = _mutate_map(rng, _get(doc, path))
        _get(doc, path[:-1])[path[-1]] = text
        return f"json.skymap.{sub}"
    if op == "add":
        parents = [p for p in [(), *paths] if isinstance(_get(doc, p), dict)]
        parent = _get(doc, rng.choice(parents)) if parents else doc
        if isinstance(parent, dict):
            parent[rng.choice(("extra", "event", "skymap", "alert_type", "$schema", "ra",
                               "\u0000", ""))] = rng.choice(JSON_VALUES)
        return "json.add"
    path = rng.choice(paths)
    parent, last = _get(doc, path[:-1]), path[-1]
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


# -------------------------------- XML -------------------------------------- #

#: DTD, entity and other declarations (every one must be refused).
XML_DECLARATIONS: tuple[bytes, ...] = (
    b'<!DOCTYPE VOEvent [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]>',
    b'<!DOCTYPE VOEvent [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    b'<!DOCTYPE VOEvent SYSTEM "http://127.0.0.1:9/evil.dtd">',
    b'<!DOCTYPE VOEvent [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>',
    b'<!DOCTYPE VOEvent PUBLIC "-//x//y" "file:///dev/random">',
    b"<!ELEMENT VOEvent ANY>",
    b'<!ATTLIST VOEvent role CDATA "test">',
    b'<!NOTATION n SYSTEM "x">',
    b"<! DOCTYPE VOEvent>",
    b"<!doctype VOEvent>",
    b'<!\nENTITY x "y">',
    b"<!DOCTYPE VOEvent [<!ENTITY x \"&#60;y/&#62;\">]>",
)
#: References inserted in texts or attribute values.
XML_REFERENCES: tuple[bytes, ...] = (
    b"&xxe;", b"&d;", b"&#0;", b"&#xD800;", b"&#x110000;", b"&#65;", b"&#x1F600;", b"&lt;",
    b"&undefined;", b"&amp", b"&#;", b"&#x;", b"&#99999999999;",
)
#: Other nodes inserted between elements.
XML_NODES: tuple[bytes, ...] = (
    b"<!-- c -->", b"<!--", b"<?pi x?>", b'<?xml-stylesheet href="http://127.0.0.1:9/x.xsl"?>',
    b"<![CDATA[<x>&amp;]]>", b"<![CDATA[",
    b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" '
    b'parse="text"/>',
    b"\x00", b"\xef\xbb\xbf", b"\xc3\x28", b"\xed\xa0\x80",
    b"<original_prefix>voe</original_prefix>", b'<?xml version="1.0"?>', b"</VOEvent>",
    b"<Param/>", b'<Param name="Packet_Type" value="115"/>',
)
#: Values for Param ``value`` attributes and element texts.
XML_VALUES: tuple[str, ...] = (
    "", " ", "NaN", "nan", "-nan", "inf", "-inf", "Infinity", "1e999", "-1e999", "1e308",
    "-1", "0", "-0", "360", "360.0001", "-90.0001", "90", "180", "1e-320", "9" * 40, "0x1F",
    "0xZZ", "abc", " 12 ", "1,5", "1.5.2", "true", "false", "\u00e9", "x" * 5000,
    "2024-01-15T16:45:37.62", "2024-01-15T16:45:37.62Z", "2024-01-15T16:45:37.62+05:00",
    "0001-01-01T00:00:00", "9999-12-31T23:59:59.999999", "2024-02-30T00:00:00", "1970-01-01",
    "24:00:00", "2024-01-15T16:45:37.6212345678", "2024-13-45T99:99:99", "-1e-300", "3.4e38",
    "NULL", "None", "115", "61", "150", "173", "-2147483649", "18446744073709551616",
)
_XML_TAGS = ("Param", "Group", "Position2D", "C1", "C2", "Error2Radius", "What", "WhereWhen",
             "ISOTime", "Who", "Date", "AstroCoords", "x", "Value2", "TimeInstant")
_XML_ATTRS = ("value", "name", "unit", "dataType", "ucd", "role", "ivorn", "version",
              "coord_system_id", "type", "cite")
_XML_ATTR_VALUES = ("", "deg", "rad", "arcmin", "arcsec", "test", "utility", "observation",
                    "OBSERVATION", "UTC-FK5-GEO", "TT-ICRS-TOPO", "GPS-ICRS-GEO", "float",
                    "int", "string", "boolean", "retraction", "followup", "supersedes",
                    "ivo://", "ivo://nasa.gsfc.gcn/Fermi#x", "1.1", "2.0", "NaN")
_VOEVENT_NS = b"http://www.ivoa.net/xml/VOEvent/v2.0"
_ROOT_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?VOEvent\b[^>]*>")
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>")
_SEED_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                               huge_tree=False)


def _after_root(data: bytes) -> int:
    match = _ROOT_START.search(data)
    if match:
        return match.end()
    end = data.find(b">")
    return end + 1 if end >= 0 else 0


def _after_decl(data: bytes) -> int:
    match = _XML_DECL.search(data)
    return match.end() if match else 0


def _elements(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str)]


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _xml_tree_edit(rng: random.Random, root: etree._Element) -> str:
    """One edit of a parsed (seed) VOEvent tree."""
    elements = _elements(root)
    inner = elements[1:]
    params = [e for e in inner if _local(e) == "Param"]
    texts = [e for e in inner if e.text and e.text.strip()]
    ops = [("param_value", 30 if params else 0), ("text", 22 if texts else 0),
           ("drop", 12), ("dup", 7), ("rename", 4), ("move", 4), ("attr", 9), ("route", 10),
           ("role", 3), ("swap", 4 if len(params) > 1 else 0)]
    op = _weighted(rng, [(n, w) for n, w in ops if w])
    if not inner and op in ("drop", "dup", "rename", "move", "attr"):
        op = "role"
    if op == "param_value":
        rng.choice(params).set("value", rng.choice(XML_VALUES))
    elif op == "text":
        rng.choice(texts).text = rng.choice(XML_VALUES)
    elif op == "drop":
        el = rng.choice(inner)
        parent = el.getparent()
        if parent is not None:
            parent.remove(el)
    elif op == "dup":
        el = rng.choice(inner)
        parent = el.getparent()
        if parent is not None:
            parent.insert(parent.index(el) + 1, copy.deepcopy(el))
    elif op == "rename":
        rng.choice(inner).tag = rng.choice(_XML_TAGS)
    elif op == "move":
        el = rng.choice(inner)
        targets = [e for e in elements if e is not el and el not in e.iterancestors()]
        parent = el.getparent()
        if parent is not None and targets:
            parent.remove(el)
            rng.choice(targets).append(el)
    elif op == "attr":
        el = rng.choice(inner)
        if el.attrib and rng.random() < 0.3:
            del el.attrib[rng.choice(sorted(el.attrib))]
        else:
            el.set(rng.choice(_XML_ATTRS), rng.choice(_XML_ATTR_VALUES))
    elif op == "route":
        _route(rng, root, params)
    elif op == "role":
        root.set("role", rng.choice(("observation", "test", "utility", "", "OBSERVATION",
                                     "prediction", "x" * 300)))
    else:
        first, second = rng.sample(params, 2)
        a, b = first.get("value"), second.get("value")
        first.set("value", b or "")
        second.set("value", a or "")
    return f"xml.tree.{op}"


def _route(rng: random.Random, root: etree._Element, params: list[etree._Element]) -> None:
    """Send the packet to another registered parser: IVORN stream and Packet_Type."""
    _, (stream, packet_type) = rng.choice(sorted(REGISTRY, key=repr))
    root.set("ivorn", f"{stream}#fuzz_{rng.randrange(10**6)}")
    found = [p for p in params if p.get("name") == "Packet_Type"]
    if packet_type is None:
        for p in found:
            p.getparent().remove(p)
        return
    if found:
        found[0].set("value", str(packet_type))
        return
    what = [e for e in _elements(root) if _local(e) == "What"]
    parent = what[0] if what else root
    etree.SubElement(parent, "Param", name="Packet_Type", value=str(packet_type))


def _xml_text_edit(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """One textual mutation of an XML payload (what no tree can hold)."""
    op = _weighted(rng, [("entity", 14), ("reference", 8), ("nest", 10), ("flood", 3),
                         ("attr_flood", 3), ("huge_text", 2), ("transcode", 10),
                         ("encoding", 6), ("namespace", 10), ("node", 10)])
    root_end = _after_root(data)
    if op == "entity":
        decl = rng.choice(XML_DECLARATIONS)
        at = rng.choice((_after_decl(data), 0, _pos(rng, len(data)) if data else 0))
        out = data[:at] + decl + data[at:]
        if rng.random() < 0.5:
            ins = _after_root(out)
            out = out[:ins] + b"<Description>&xxe;&d;</Description>" + out[ins:]
        return out, "xml.entity"
    if op == "reference":
        at = _pos(rng, len(data)) if data else 0
        return data[:at] + rng.choice(XML_REFERENCES) + data[at:], "xml.reference"
    if op == "nest":
        depth = rng.choice((8, 24, 31, 32, 33, 100, 5000, 200_000))
        tag = rng.choice((b"d", b"Group", b"What"))
        nested = (b"<" + tag + b">") * depth + (b"</" + tag + b">") * depth
        return data[:root_end] + nested + data[root_end:], "xml.nest"
    if op == "flood":
        count = rng.choice((100, 19_990, 20_001, 60_000))
        blob = b"".join(b'<Param name="p%d" value="1"/>' % i for i in range(count))
        return data[:root_end] + blob + data[root_end:], "xml.flood"
    if op == "attr_flood":
        count = rng.choice((100, 1_000, 10_000, 50_000))
        if rng.random() < 0.2:
            blob = b'<Param name="x" name="y" value="1"/>'
        else:
            blob = (b'<Param name="x" ' + b" ".join(b'a%d="%d"' % (i, i) for i in range(count))
                    + b"/>")
        return data[:root_end] + blob + data[root_end:], "xml.attr_flood"
    if op == "huge_text":
        size = rng.choice((100_000, 3_000_000, 10 * 2**20 + 1))
        blob = b"<Description>" + b"A" * size + b"</Description>"
        return data[:root_end] + blob + data[root_end:], "xml.huge_text"
    if op == "transcode":
        encoding = rng.choice(("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le",
                               "utf-32-be", "cp037", "latin-1"))
        text = data.decode("utf-8", "replace")
        if rng.random() < 0.4:
            at = _after_decl(data)
            text = text[:at] + XML_DECLARATIONS[1].decode() + text[at:]
        if rng.random() < 0.7:
            text = re.sub(r'encoding="[^"]*"', f'encoding="{encoding}"', text, count=1)
        return text.encode(encoding, "replace"), f"xml.transcode.{encoding}"
    if op == "encoding":
        name = rng.choice((b"UTF-16", b"UTF-32", b"EBCDIC-US", b"ISO-8859-1", b"bogus-enc",
                           b"UTF-7", b"ascii", b"SHIFT_JIS", b"cp037", b""))
        decl = b'<?xml version="1.0" encoding="' + name + b'"?>'
        at = _after_decl(data)
        return decl + data[at:], "xml.encoding"
    if op == "namespace":
        choice = rng.randrange(4)
        if choice == 0:
            new = rng.choice((b"http://www.ivoa.net/xml/VOEvent/v1.1", b"",
                              b"http://example.invalid/", b"http://www.ivoa.net/xml/VOEvent/v2.1"))
            return data.replace(_VOEVENT_NS, new, 1), "xml.namespace.uri"
        if choice == 1:
            new = rng.choice((b'version="1.1"', b'version="3.0"', b'version=""', b""))
            return data.replace(b'version="2.0"', new, 1), "xml.namespace.version"
        if choice == 2:
            return data.replace(b"voe:VOEvent", b"VOEvent"), "xml.namespace.prefix"
        return data.replace(b"xmlns:voe=", b"xmlns:vox=", 1), "xml.namespace.unbound"
    ends = [m.end() for m in re.finditer(rb">", data[:20_000])] or [0]
    at = rng.choice(ends)
    return data[:at] + rng.choice(XML_NODES) + data[at:], "xml.node"


# -------------------------------- Avro ------------------------------------- #

_FLOATS = (math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0, -0.0, -999.0, 5e-324, 360.0,
           400.0, -91.0, 1e20, 2400000.5, -1.0, 2460000.5)
_INTS = (0, -1, 1, -999, 2**31 - 1, -(2**31), 99, 3, 2)
_STRS = ("", "x", "null", "t", "f", "0", "1", "\u00e9" * 3, "\u0000", "a" * 1000, "9.99",
         "4.02", "3.3", "ZTF24aaaaaaa", "lsst.v99_0")


def _record_leaves(node: Any, prefix: JSONPath = ()) -> list[JSONPath]:
    found: list[JSONPath] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict | list):
                found.append((*prefix, key))
                found.extend(_record_leaves(value, (*prefix, key)))
            elif value is not None and not isinstance(value, bytes):
                found.append((*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            found.extend(_record_leaves(value, (*prefix, index)))
    return found


#: Record fields the flattening reads (mutated more often).
_READ_FIELDS = frozenset({
    "ra", "dec", "jd", "fid", "magpsf", "sigmapsf", "candid", "objectId", "isdiffpos",
    "schemavsn", "midpointMjdTai", "psfFlux", "psfFluxErr", "diaSourceId", "diaObjectId",
    "band", "rb", "firstDiaSourceMjdTai", "lsst_schema_version", "prv_candidates",
    "prvDiaSources", "prvDiaForcedSources", "diffmaglim", "candidate", "diaSource",
    "diaObject", "isNegative", "snr", "nDiaSources",
})


def _copy_along(record: dict[str, Any], path: JSONPath) -> dict[str, Any]:
    """Copy of ``record`` sharing everything but the containers on ``path``."""
    top = dict(record)
    node: Any = top
    for step in path[:-1]:
        child = node[step]
        node[step] = dict(child) if isinstance(child, dict) else list(child)
        node = node[step]
    return top


def _mutate_record(rng: random.Random, seed: AvroSeed) -> tuple[dict[str, Any], str]:
    """A copy of the seed's record with one value changed (keeping its Avro type)."""
    assert seed.record is not None
    leaves = seed.leaves
    if not leaves:
        return seed.record, "none"
    # Favour the fields the flattening reads.
    keyed = [p for p in leaves if p[-1] in _READ_FIELDS]
    path = rng.choice(keyed if keyed and rng.random() < 0.8 else leaves)
    record = _copy_along(seed.record, path)
    parent = _get(record, path[:-1])
    value = parent[path[-1]]
    if isinstance(value, bool):
        parent[path[-1]] = not value
    elif isinstance(value, float):
        parent[path[-1]] = rng.choice(_FLOATS)
    elif isinstance(value, int):
        parent[path[-1]] = rng.choice(_INTS)
    elif isinstance(value, str):
        parent[path[-1]] = rng.choice(_STRS)
    elif isinstance(value, list):
        parent[path[-1]] = rng.choice(([], value[:1], value * 2, list(reversed(value))))
    else:
        parent[path[-1]] = None  # a nested record: fine where the schema allows null
    return record, "/".join(str(p) for p in path[-2:])


def _encode_container(rng: random.Random, seed: AvroSeed, record: dict[str, Any]) -> bytes:
    """A container of ``record`` with the seed's own schema text in its header (the
    JSON fastavro writes for a parsed schema depends on the hash seed)."""
    buf = io.BytesIO()
    fastavro.writer(buf, seed.parsed, [record], codec=rng.choice(("null",) * 4 + ("deflate",)),
                    sync_marker=rng.randbytes(16))
    meta, sync, end = read_header(buf.getvalue())
    meta["avro.schema"] = seed.schema_bytes
    return write_header(meta, sync) + buf.getvalue()[end:]


_SCHEMA_GARBAGE: tuple[bytes, ...] = (
    b"", b"{", b"[]", b"5", b'"string"', b'{"type":"record"}', b"null",
    b'{"type": "record", "name": "x", "fields": [{"name": "a", "type": "nonexistent"}]}',
    b'{"type": "record", "name": "x", "fields": []}',
    b'{"type": "record", "name": "x", "fields": [{"name": "a", "type": "long"}]}',
    b'{"type":"array","items":' * 2000 + b'"int"' + b"}" * 2000,
    b"[" * 100_000 + b"]" * 100_000,
    b'{"type": "enum", "name": "e", "symbols": []}',
    b"\xff\xfe{}",
)


def _mutate_schema(rng: random.Random, schema_bytes: bytes) -> tuple[bytes, str]:
    if rng.random() < 0.35:
        return rng.choice(_SCHEMA_GARBAGE), "garbage"
    try:
        schema = json.loads(schema_bytes)
    except ValueError:
        return rng.choice(_SCHEMA_GARBAGE), "garbage"
    if not isinstance(schema, dict):
        return rng.choice(_SCHEMA_GARBAGE), "garbage"
    choice = rng.randrange(4)
    if choice == 0:
        schema["version"] = rng.choice(("9.99", "", "3.2", "4.02", "1.8", 4.02, None))
        what = "version"
    elif choice == 1:
        schema[rng.choice(("name", "namespace"))] = rng.choice(
            ("lsst.v99_0", "lsst.v9_0", "ztf", "", "lsst.v7_4.alert", "topLevelRecord"))
        what = "name"
    else:
        fields = schema.get("fields") or [{}]
        target = rng.choice(fields)
        if choice == 2 and isinstance(target, dict):
            target["type"] = rng.choice(("string", "double", "int", "long", "boolean", "bytes",
                                         "null", ["null", "double"], {"type": "map",
                                                                      "values": "int"}))
            what = "field_type"
        else:
            if fields and rng.random() < 0.5:
                fields.remove(target)
            elif isinstance(target, dict):
                target["name"] = rng.choice(("", "1x", "candidate", "objectId", "diaSource"))
            what = "field"
    return json.dumps(schema).encode(), what


def _avro_header_edit(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    try:
        meta, sync, end = read_header(data)
    except ValueError:
        return data, "avro.header.unreadable"
    op = _weighted(rng, [("codec", 25), ("schema", 45), ("drop_schema", 5), ("junk_key", 8),
                         ("sync", 10), ("bad_key", 7)])
    meta = dict(meta)
    if op == "codec":
        meta["avro.codec"] = rng.choice((b"null", b"deflate", b"snappy", b"zstandard", b"bzip2",
                                         b"xz", b"lz4", b"bogus", b"", b"\xff"))
    elif op == "schema":
        meta["avro.schema"], sub = _mutate_schema(rng, meta.get("avro.schema", b"{}"))
        op = f"schema.{sub}"
    elif op == "drop_schema":
        meta.pop("avro.schema", None)
    elif op == "junk_key":
        meta[rng.choice(("x", "avro.x", "", "\u00e9"))] = rng.randbytes(rng.randint(0, 64))
    elif op == "sync":
        sync = rng.randbytes(16)
    else:
        meta["\udcff\udcfe"] = b"1"  # a key that is not UTF-8
    return write_header(meta, sync) + data[end:], f"avro.header.{op}"


def _avro_bytes(rng: random.Random, data: bytearray, header_end: int) -> str:
    """Byte mutation of a container, aimed at its header, first block and sync marker."""
    size = len(data)
    if not size:
        data += b"Obj\x01"
        return "avro.empty"
    op = _weighted(rng, [("flip_header", 22), ("flip_block", 18), ("flip_sync", 8),
                         ("truncate", 16), ("varint", 12), ("set", 8)])
    if op == "truncate":
        cut = rng.choice((rng.randrange(size), max(0, header_end - rng.randint(0, 3)),
                          min(size, header_end + rng.randint(0, 40)),
                          max(0, size - rng.randint(1, 16)), rng.randrange(max(1, header_end))))
        del data[cut:]
    elif op == "varint":
        at = min(size, header_end + rng.choice((0, 0, 1, 2, 3, 4, 5, 8)))
        bomb = rng.choice(_TOKENS["avro"][:5])
        data[at : at + len(bomb)] = bomb
    else:
        if op == "flip_header":
            at = rng.randrange(max(1, min(header_end, size)))
        elif op == "flip_block":
            at = min(size - 1, header_end + rng.randrange(512))
        elif op == "flip_sync":
            at = max(0, size - 1 - rng.randrange(16))
        else:
            at = rng.randrange(size)
        if op == "set":
            data[at] = rng.choice(_INTERESTING_BYTES["avro"])
        else:
            for _ in range(rng.choice((1, 1, 2, 4))):
                data[min(size - 1, at + rng.randrange(4))] ^= 1 << rng.randrange(8)
    return f"avro.{op}"


# ------------------------------ assembling --------------------------------- #


def _topic(rng: random.Random, corpus: Corpus, seed: NoticeSeed) -> str | None:
    roll = rng.random()
    if roll < 0.55:
        if seed.family == "xml":
            return rng.choice((None, *corpus.xml_topics)) if corpus.xml_topics else None
        return seed.topic
    if roll < 0.70:
        return None
    if roll < 0.95:
        return rng.choice(corpus.topics) if corpus.topics else None
    # Kafka topic names are [a-zA-Z0-9._-]; a VTP "topic" is the remote's address.
    return rng.choice(("", "x" * 249, "gcn.notices.unknown", "igwn.gwalert.test",
                       "127.0.0.1:8099", "IGWN.GWALERT"))


def _n_ops(rng: random.Random) -> int:
    return int(_weighted(rng, [("1", 60), ("2", 30), ("3", 10)]))


def _notice_case(rng: random.Random, corpus: Corpus, family: str, seed_name: str,
                 index: int) -> Case:
    seeds = corpus.seeds[family]
    seed: NoticeSeed = rng.choice(seeds)
    topic = _topic(rng, corpus, seed)
    source = seed.rel
    if rng.random() < 0.03:
        return Case(seed_name, index, family, source, ("none",), seed.data, topic)
    n_ops = _n_ops(rng)
    structured_share = {"xml": 0.6, "json": 0.6, "gwalert": 0.8}[family]
    kinds = ["structured" if rng.random() < structured_share else "bytes" for _ in range(n_ops)]
    kinds.sort(key=lambda k: k != "structured")  # structured edits first, bytes last
    ops: list[str] = []
    payload = seed.data
    n_structured = kinds.count("structured")
    if n_structured and family == "xml":
        payload, ops = _xml_structured(rng, seed.data, n_structured)
    elif n_structured and seed.doc is not None:
        draft = _JSONDraft(copy.deepcopy(seed.doc))
        ops = [_json_structured(rng, draft) for _ in range(n_structured)]
        payload = draft.encode(rng)
    elif n_structured:
        kinds = ["bytes"] * len(kinds)
    data = bytearray(payload)
    for kind in kinds:
        if kind != "bytes":
            continue
        other = None
        if rng.random() < 0.15:
            pool = seeds if rng.random() < 0.8 else [
                s for f in NOTICE_FAMILIES for s in corpus.seeds.get(f, ())]
            partner: NoticeSeed = rng.choice(pool)
            other = partner.data
            source = f"{source} + {partner.rel}"
        ops.append(mutate_bytes(rng, data, family, other))
    return Case(seed_name, index, family, source, tuple(ops), bytes(data), topic)


def _xml_structured(rng: random.Random, data: bytes, count: int) -> tuple[bytes, list[str]]:
    ops: list[str] = []
    n_tree = sum(rng.random() < 0.6 for _ in range(count))
    if n_tree:
        try:
            root = etree.fromstring(data, _SEED_PARSER)  # noqa: S320 - trusted seed file
        except etree.XMLSyntaxError:
            root = None
        if root is not None:
            for _ in range(n_tree):
                ops.append(_xml_tree_edit(rng, root))
            data = etree.tostring(root, xml_declaration=rng.random() < 0.7, encoding="UTF-8")
        else:
            n_tree = 0
    for _ in range(count - n_tree):
        data, op = _xml_text_edit(rng, data)
        ops.append(op)
    return data, ops


def _alert_case(rng: random.Random, corpus: Corpus, family: str, seed_name: str,
                index: int) -> Case:
    seed: AvroSeed = rng.choice(corpus.seeds[family])
    ops: list[str] = []
    if family == "confluent":
        return _confluent_case(rng, corpus, seed, seed_name, index)
    if rng.random() < 0.03:
        return Case(seed_name, index, family, seed.rel, ("none",), seed.data)
    payload = seed.data
    n_ops = _n_ops(rng)
    if seed.record is not None and rng.random() < 0.3:
        record, where = _mutate_record(rng, seed)
        ops.append(f"avro.record.{where}")
        try:
            payload = _encode_container(rng, seed, record)
        except (ValueError, TypeError, KeyError, OverflowError, AttributeError):
            payload = seed.data
            ops[-1] += "(unwritable)"
        n_ops -= 1
    if n_ops and rng.random() < 0.35:
        payload, op = _avro_header_edit(rng, payload)
        ops.append(op)
        n_ops -= 1
    data = bytearray(payload)
    header_end = seed.header_end
    try:
        header_end = read_header(payload)[2]
    except ValueError:
        pass
    source = seed.rel
    for _ in range(n_ops):
        if rng.random() < 0.08:
            partner: AvroSeed = rng.choice(corpus.seeds[family])
            source = f"{source} + {partner.rel}"
            ops.append(mutate_bytes(rng, data, family, partner.data))
        elif rng.random() < 0.15:
            ops.append(mutate_bytes(rng, data, family))
        else:
            ops.append(_avro_bytes(rng, data, header_end))
    return Case(seed_name, index, family, source, tuple(ops), bytes(data))


def _confluent_case(rng: random.Random, corpus: Corpus, seed: AvroSeed, seed_name: str,
                    index: int) -> Case:
    assert seed.body is not None
    schema_id = rng.choice((1, 7, 2**31 - 1, 0xFFFFFFFF))
    ops: list[str] = []
    body = seed.body
    if seed.record is not None and rng.random() < 0.4:
        record, where = _mutate_record(rng, seed)
        ops.append(f"confluent.record.{where}")
        buf = io.BytesIO()
        try:
            fastavro.schemaless_writer(buf, seed.parsed, record)
            body = buf.getvalue()
        except (ValueError, TypeError, KeyError, OverflowError, AttributeError):
            ops[-1] += "(unwritable)"
    frame = bytearray(b"\x00" + schema_id.to_bytes(4, "big") + body)
    roll = rng.random()
    registry: dict[int, Any] | None
    if roll < 0.6:
        registry = {schema_id: seed.parsed}
    elif roll < 0.75:
        registry = None
        ops.append("confluent.no_registry")
    elif roll < 0.85:
        registry = {schema_id + 1: seed.parsed}
        ops.append("confluent.unknown_id")
    else:
        other: AvroSeed = rng.choice(corpus.seeds["confluent"])
        registry = {schema_id: other.parsed}
        ops.append(f"confluent.schema_of:{other.rel}")
    for _ in range(_n_ops(rng) - (1 if ops else 0)):
        roll = rng.random()
        if roll < 0.1:
            frame[0] = rng.choice((0x01, 0xFF, 0x4F))
            ops.append("confluent.magic")
        elif roll < 0.2:
            del frame[rng.randrange(1, 6) :]
            ops.append("confluent.short")
        else:
            ops.append(mutate_bytes(rng, frame, "confluent"))
    return Case(seed_name, index, "confluent", seed.rel, tuple(ops) or ("none",), bytes(frame),
                writer_schemas=registry)


def build_case(corpus: Corpus, rng: random.Random, index: int = 0, seed: str = "rng",
               families: Sequence[str] | None = None) -> Case:
    """Draw one case with ``rng`` (a :class:`random.Random`, or hypothesis' ``randoms()``).

    Parameters
    ----------
    corpus : Corpus
        The seed files.
    rng : random.Random
        Source of every choice.
    index : int, optional
        Index recorded in the case.
    seed : str, optional
        Run seed recorded in the case.
    families : sequence of str, optional
        Restrict the families drawn from.

    Returns
    -------
    Case
    """
    allowed = set(families) if families else set(FAMILY_WEIGHTS)
    table = [(f, w) for f, w in FAMILY_WEIGHTS.items() if f in allowed and corpus.seeds.get(f)]
    if not table:
        raise ValueError(f"no seeds for families {sorted(allowed)}")
    family = _weighted(rng, table)
    if family in NOTICE_FAMILIES:
        return _notice_case(rng, corpus, family, seed, index)
    return _alert_case(rng, corpus, family, seed, index)


def make_case(corpus: Corpus, seed: int | str, index: int,
              families: Sequence[str] | None = None) -> Case:
    """Case ``index`` of run ``seed``: deterministic, independent of the other cases.

    Parameters
    ----------
    corpus : Corpus
        The seed files.
    seed : int or str
        Run seed.
    index : int
        Case index.
    families : sequence of str, optional
        Restrict the families drawn from (the same subset gives the same cases).

    Returns
    -------
    Case
    """
    rng = random.Random(f"{seed}:{index}")
    return build_case(corpus, rng, index, str(seed), families)


def cases(corpus: Corpus, seed: int | str, count: int, start: int = 0,
          families: Sequence[str] | None = None) -> Iterator[Case]:
    """Cases ``start .. start + count - 1`` of run ``seed`` (see :func:`make_case`)."""
    for index in range(start, start + count):
        yield make_case(corpus, seed, index, families)


# --------------------------------------------------------------------------- #
# Evaluation
# --------------------------------------------------------------------------- #


class CaseTimeout(BaseException):
    """Raised in the fuzzer when one case runs longer than its time limit."""


@dataclass(frozen=True)
class Failure:
    """A case that did not end in a known outcome.

    Attributes
    ----------
    category : str
        ``uncaught``, ``invariant``, ``empty_reason`` or ``timeout``.
    stage : str
        ``parse``, ``region``, ``decode`` or ``enrich``.
    error : str
        Exception class name (or the broken invariant).
    message : str
        Exception message, shortened.
    where : str
        ``file:line`` of the innermost frame in this repository (else the innermost).
    case : dict
        :meth:`Case.describe` of the case.
    traceback : str
        The formatted traceback (empty for invariants).
    """

    category: str
    stage: str
    error: str
    message: str
    where: str
    case: dict[str, Any]
    traceback: str = ""

    @property
    def signature(self) -> str:
        """``category stage error at where``: failures with one cause share it."""
        return f"{self.category} {self.stage} {self.error} at {self.where}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the command that replays the case."""
        return {"category": self.category, "stage": self.stage, "error": self.error,
                "message": self.message, "where": self.where, "case": self.case,
                "reproduce": f"python -m fuzz.run --seed {self.case['seed']} "
                             f"--case {self.case['case']}",
                "traceback": self.traceback}


@dataclass
class CaseResult:
    """What one case gave.

    Attributes
    ----------
    kind : str or None
        Outcome kind (:data:`KNOWN_KINDS`), None when the case failed before one.
    region : str or None
        Region outcome of a parsed notice with a localisation.
    failures : list of Failure
    warnings : list of str
        ``Category at file:line`` of each warning raised.
    """

    kind: str | None = None
    region: str | None = None
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _is_ours(path: Path) -> bool:
    """True for a file of this repository's packages (not the venv, not the fuzzer)."""
    path = path.resolve()
    if not path.is_relative_to(REPO):
        return False
    top = path.relative_to(REPO).parts[0]
    return top not in (".venv", "fuzz", "tests")


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if _is_ours(Path(f.filename))]
    frame = ours[-1] if ours else (frames[-1] if frames else None)
    if frame is None:
        return "?"
    path = Path(frame.filename).resolve()
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    return f"{shown}:{frame.lineno}"


def _failure(category: str, stage: str, case: Case, exc: BaseException | None = None,
             error: str = "", message: str = "", where: str = "") -> Failure:
    if exc is not None:
        error = error or type(exc).__name__
        message = message or str(exc)
        where = where or _where(exc)
        tb = "".join(traceback.format_exception(exc))
    else:
        tb = ""
    return Failure(category, stage, error, message[:500], where or "?", case.describe(), tb)


def _has_nul_or_nan(value: Any) -> str | None:
    """Why a value cannot be stored in PostgreSQL text/JSONB (None when it can)."""
    if isinstance(value, str):
        return "NUL character in a string" if "\x00" in value else None
    if isinstance(value, float | np.floating):
        return None if math.isfinite(value) else f"non-finite number {value!r}"
    if isinstance(value, dict):
        for key, item in value.items():
            why = _has_nul_or_nan(key) or _has_nul_or_nan(item)
            if why:
                return f"{key!r}: {why}"
    if isinstance(value, list | tuple):
        for item in value:
            why = _has_nul_or_nan(item)
            if why:
                return why
    return None


def notice_problems(notice: Notice) -> list[str]:
    """What would stop the ingest path from storing ``notice`` (empty when nothing).

    The checks are those of the database columns and of the region builder: text
    without NUL characters, JSON fields without NaN or infinities, timezone-aware
    times, a BIGINT version, a localisation exactly when the notice is no retraction,
    finite coordinates in range.

    Parameters
    ----------
    notice : Notice

    Returns
    -------
    list of str
    """
    problems = []
    if not isinstance(notice, Notice):
        return [f"parse returned {type(notice).__name__}, not a Notice"]
    if not isinstance(notice.messenger, Messenger) or not isinstance(notice.role, Role):
        problems.append("messenger or role is not one of the enums")
    for name in ("event_id", "mission", "instrument", "notice_type"):
        value = getattr(notice, name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{name} is empty")
        elif "\x00" in value:
            problems.append(f"{name} contains a NUL character")
    if notice.ivorn is not None and "\x00" in notice.ivorn:
        problems.append("ivorn contains a NUL character")
    for name in ("trigger_time", "issue_time"):
        moment = getattr(notice, name)
        if not isinstance(moment, datetime) or moment.utcoffset() != timedelta(0):
            problems.append(f"{name} is not a UTC-aware datetime")
    if not isinstance(notice.version, int) or not 0 <= notice.version <= _BIGINT_MAX:
        problems.append(f"version {notice.version!r} does not fit BIGINT >= 0")
    if notice.retraction != (notice.localisation is None):
        problems.append("localisation given for a retraction, or missing for a notice")
    problems.extend(_localisation_problems(notice.localisation))
    for name in ("significance", "extra"):
        why = _has_nul_or_nan(_storable(getattr(notice, name)))
        if why:
            problems.append(f"{name}: {why}")
    return problems


def _storable(value: Any) -> Any:
    """``value`` as ``mm_broker.app.ingest`` hands it to JSONB (same conversions)."""
    def default(obj: Any) -> Any:
        if isinstance(obj, datetime):
            return obj.isoformat()
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, bytes):
            return f"<{len(obj)} bytes>"
        return str(obj)

    return json.loads(json.dumps(value, default=default))


def _localisation_problems(loc: Any) -> list[str]:
    if loc is None:
        return []
    if isinstance(loc, SkyMap):
        ok = isinstance(loc.data, bytes) and bool(loc.data) or isinstance(loc.url, str)
        return [] if ok else ["sky map with neither bytes nor URL"]
    if not isinstance(loc, Circle | Ellipse | Box):
        return [f"localisation of type {type(loc).__name__}"]
    problems = []
    if not (math.isfinite(loc.ra) and 0.0 <= loc.ra <= 360.0):
        problems.append(f"ra {loc.ra!r} outside [0, 360]")
    if not (math.isfinite(loc.dec) and -90.0 <= loc.dec <= 90.0):
        problems.append(f"dec {loc.dec!r} outside [-90, 90]")
    if not (0.0 < loc.containment <= 1.0):
        problems.append(f"containment {loc.containment!r} outside (0, 1]")
    if isinstance(loc, Circle) and not (math.isfinite(loc.radius_deg) and loc.radius_deg > 0):
        problems.append(f"radius {loc.radius_deg!r} not finite and > 0")
    return problems


def region_problems(region: Region) -> list[str]:
    """What is wrong with a region the store would take (empty when nothing)."""
    problems = []
    if not (math.isfinite(region.area_deg2) and region.area_deg2 >= 0):
        problems.append(f"area {region.area_deg2!r} not finite and >= 0")
    if not (0.0 < region.credible_level <= 1.0):
        problems.append(f"credible level {region.credible_level!r} outside (0, 1]")
    return problems


@dataclass
class _Deadline:
    """SIGALRM-based limit on one case (main thread of a POSIX system only)."""

    seconds: float | None
    _armed: bool = False

    def __enter__(self) -> _Deadline:
        if (self.seconds and hasattr(signal, "setitimer")
                and threading.current_thread() is threading.main_thread()):
            signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self._armed = True
        return self

    def _fire(self, signum: int, frame: object) -> None:
        raise CaseTimeout(f"case ran longer than {self.seconds} s")

    def __exit__(self, *exc: object) -> None:
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)


def _check_reason(case: Case, stage: str, exc: Exception, text: str,
                  result: CaseResult) -> None:
    if not text.strip():
        result.failures.append(_failure("empty_reason", stage, case, exc,
                                        message="rejection without a message"))


def _evaluate_notice(case: Case, result: CaseResult, regions: bool) -> None:
    try:
        notice = parse(case.payload, case.topic)
    except NoticeError as exc:
        result.kind = f"NoticeError:{exc.reason}"
        _check_reason(case, "parse", exc, exc.message if exc.reason else "", result)
        return
    except CaseTimeout as exc:
        result.failures.append(_failure("timeout", "parse", case, exc))
        return
    except Exception as exc:  # noqa: BLE001 - the fuzzer's job: report, never stop
        result.failures.append(_failure("uncaught", "parse", case, exc))
        return
    result.kind = "Notice"
    problems = notice_problems(notice)
    if problems:
        result.failures.append(_failure("invariant", "parse", case, error="notice",
                                        message="; ".join(problems),
                                        where=str(notice.notice_type)[:80]))
        return
    if not regions or notice.localisation is None:
        return
    key = _region_key(notice.localisation)
    cached = _REGION_CACHE.get(key)
    if cached is None:
        cached = _region_outcome(case, notice.localisation)
        if not any(f.category == "timeout" for f in cached[1]):
            _REGION_CACHE[key] = cached
            if len(_REGION_CACHE) > _REGION_CACHE_SIZE:
                _REGION_CACHE.popitem(last=False)
    result.region = cached[0]
    result.failures.extend(dataclasses.replace(f, case=case.describe()) for f in cached[1])


#: Region outcomes by localisation: :func:`skymaps.region_for` is a pure function, and
#: most mutated notices keep their seed's localisation.
_REGION_CACHE: OrderedDict[Any, tuple[str | None, tuple[Failure, ...]]] = OrderedDict()
_REGION_CACHE_SIZE = 4096


def _region_key(loc: Any) -> Any:
    if isinstance(loc, SkyMap):
        digest = hashlib.sha256(loc.data).digest() if isinstance(loc.data, bytes) else None
        return ("skymap", digest, loc.url, loc.convention)
    return loc


def _region_outcome(case: Case, loc: Any) -> tuple[str | None, tuple[Failure, ...]]:
    """Region outcome kind of a localisation, and the failures it gave."""
    try:
        region = region_for(loc)
    except NoticeError as exc:
        if exc.reason and exc.message.strip():
            return f"NoticeError:{exc.reason}", ()
        return f"NoticeError:{exc.reason}", (_failure(
            "empty_reason", "region", case, exc, message="rejection without a message"),)
    except CaseTimeout as exc:
        return None, (_failure("timeout", "region", case, exc),)
    except Exception as exc:  # noqa: BLE001 - the fuzzer's job: report, never stop
        return None, (_failure("uncaught", "region", case, exc),)
    problems = region_problems(region)
    if problems:
        return "Region", (_failure("invariant", "region", case, error="region",
                                   message="; ".join(problems), where=region.kind),)
    return "Region", ()


def _evaluate_alert(case: Case, result: CaseResult) -> None:
    try:
        decode_avro(case.payload, writer_schemas=case.writer_schemas)
    except CorruptAlert as exc:
        result.kind = "CorruptAlert"
        _check_reason(case, "decode", exc, exc.reason, result)
        return
    except UnknownSchema as exc:
        result.kind = "UnknownSchema"
        _check_reason(case, "decode", exc, str(exc), result)
        return
    except CaseTimeout as exc:
        result.failures.append(_failure("timeout", "decode", case, exc))
        return
    except Exception as exc:  # noqa: BLE001 - the fuzzer's job: report, never stop
        result.failures.append(_failure("uncaught", "decode", case, exc))
        return
    result.kind = "Alert"


def _warning_key(w: warnings.WarningMessage) -> str:
    path = Path(w.filename)
    try:
        shown = str(path.resolve().relative_to(REPO))
    except ValueError:
        shown = "/".join(path.parts[-2:])
    return f"{w.category.__name__} at {shown}:{w.lineno}"


def evaluate(case: Case, *, regions: bool = True, enrich_alerts: bool = True,
             case_timeout: float | None = None) -> CaseResult:
    """Feed one case to its parser (and region builder or enrichment); never raises.

    Parameters
    ----------
    case : Case
    regions : bool, optional
        Build the region of a notice that parses (as ingest does).
    enrich_alerts : bool, optional
        Enrich an alert payload (alone; :func:`run` enriches batches).
    case_timeout : float, optional
        Seconds before the case counts as a ``timeout`` failure (main thread only).

    Returns
    -------
    CaseResult
    """
    result = CaseResult()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _Deadline(case_timeout):
            try:
                if case.target == "notice":
                    _evaluate_notice(case, result, regions)
                else:
                    _evaluate_alert(case, result)
                    if enrich_alerts:
                        _enrich_each([case], [result])
            except CaseTimeout as exc:  # fired between the guarded calls
                result.failures.append(_failure("timeout", "fuzz", case, exc))
    result.warnings.extend(_warning_key(w) for w in caught)
    return result


def _enrich(cases: Sequence[Case]) -> tuple[int, int, set[int], list[int]]:
    """Enrich the payloads of ``cases`` as one micro-batch.

    Returns the enriched rows, the ``decode_error`` rows, the positions present in the
    output (Kafka offsets are the positions) and the positions of rows whose
    ``decode_error`` is empty.
    """
    out = enrich([c.payload for c in cases], (), topics=["fuzz"] * len(cases),
                 partitions=[0] * len(cases), offsets=list(range(len(cases))))
    errors = out["decode_error"]
    failed = errors.notna().to_numpy()
    offsets = out["kafka_offset"].astype("Int64")
    present = {int(o) for o in offsets.dropna()}
    blank = [int(o) for o, e in zip(offsets[failed], errors[failed], strict=True)
             if not str(e).strip()]
    return int((~failed).sum()), int(failed.sum()), present, blank


def _enrich_each(cases: list[Case], results: list[CaseResult]) -> tuple[int, int]:
    """Enrich a batch; after an exception, payload by payload to find the culprits.
    Records missing payloads and blank reasons as failures; returns (rows, errors)."""
    try:
        rows, errors, present, blank = _enrich(cases)
    except CaseTimeout:
        raise
    except Exception:  # noqa: BLE001 - the culprits are found one by one below
        rows = errors = 0
        for case, result in zip(cases, results, strict=True):
            try:
                r, e, present, blank = _enrich([case])
            except CaseTimeout:
                raise
            except Exception as exc:  # noqa: BLE001 - the fuzzer's job: report, never stop
                result.failures.append(_failure("uncaught", "enrich", case, exc))
                continue
            rows, errors = rows + r, errors + e
            _check_enriched([case], [result], present, blank)
        return rows, errors
    _check_enriched(cases, results, present, blank)
    return rows, errors


def _check_enriched(cases: list[Case], results: list[CaseResult], present: set[int],
                    blank: list[int]) -> None:
    for i, (case, result) in enumerate(zip(cases, results, strict=True)):
        if i not in present:
            result.failures.append(_failure("invariant", "enrich", case, error="dropped",
                                            message="payload missing from the batch output",
                                            where="fink_core/pipeline.py:enrich"))
        if i in blank:
            result.failures.append(_failure("empty_reason", "enrich", case, error="blank",
                                            message="decode_error row without a reason",
                                            where="fink_core/pipeline.py:enrich"))


# --------------------------------------------------------------------------- #
# Runs
# --------------------------------------------------------------------------- #


@dataclass
class Summary:
    """Counts of one run (everything but the timings is deterministic for a seed).

    Attributes
    ----------
    seed : str
    cases : int
    families : Counter
        Cases per seed family.
    outcomes : Counter
        Cases per outcome kind.
    regions : Counter
        Region outcomes of the notices that parsed with a localisation.
    enriched_rows : int
        Enriched rows of the alert batches.
    decode_error_rows : int
        Rows with ``decode_error`` of the alert batches (one per payload refused).
    mutations : Counter
        Mutations applied (by name, first two components).
    failures : int
        Cases that failed (each counted once).
    failure_kinds : Counter
        Failures per category.
    signatures : Counter
        Failures per :attr:`Failure.signature`.
    examples : list of Failure
        The first failures, in full.
    warnings : Counter
        Warnings raised by the code under test, by category and place.
    elapsed_s : float
        Wall time of the cases (not of loading the corpus).
    """

    seed: str
    cases: int = 0
    families: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    regions: Counter[str] = field(default_factory=Counter)
    enriched_rows: int = 0
    decode_error_rows: int = 0
    mutations: Counter[str] = field(default_factory=Counter)
    failures: int = 0
    failure_kinds: Counter[str] = field(default_factory=Counter)
    signatures: Counter[str] = field(default_factory=Counter)
    examples: list[Failure] = field(default_factory=list)
    warnings: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    @property
    def unknown_kinds(self) -> list[str]:
        """Outcome or region kinds outside :data:`KNOWN_KINDS` (should be none)."""
        return sorted((set(self.outcomes) - KNOWN_KINDS)
                      | (set(self.regions) - KNOWN_REGION_KINDS))

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary printed by ``python -m fuzz.run --json``."""
        rate = self.cases / self.elapsed_s if self.elapsed_s > 0 else None
        return {
            "seed": self.seed, "cases": self.cases,
            "families": dict(sorted(self.families.items())),
            "outcomes": dict(sorted(self.outcomes.items())),
            "regions": dict(sorted(self.regions.items())),
            "enriched_rows": self.enriched_rows,
            "decode_error_rows": self.decode_error_rows,
            "mutations": dict(sorted(self.mutations.items())),
            "uncaught": self.failure_kinds.get("uncaught", 0),
            "failures": self.failures,
            "failure_kinds": dict(sorted(self.failure_kinds.items())),
            "failure_signatures": dict(self.signatures.most_common()),
            "examples": [f.to_dict() for f in self.examples],
            "warnings": dict(self.warnings.most_common()),
            "unknown_kinds": self.unknown_kinds,
            "elapsed_s": round(self.elapsed_s, 3),
            "cases_per_s": None if rate is None else round(rate, 1),
            "cpu_count": os.cpu_count(),
        }


class _Watchdog:
    """Thread that ends the process when one case hangs (see :func:`run`)."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.case: Case | None = None
        self.since = time.monotonic()
        threading.Thread(target=self._loop, name="fuzz-watchdog", daemon=True).start()

    def watch(self, case: Case | None) -> None:
        self.case, self.since = case, time.monotonic()

    def _loop(self) -> None:
        while True:
            time.sleep(1.0)
            case = self.case
            if case is not None and time.monotonic() - self.since > self.limit_s:
                print(json.dumps({"watchdog": f"case ran longer than {self.limit_s} s",
                                  "case": case.describe(),
                                  "reproduce": f"python -m fuzz.run --seed {case.seed} "
                                               f"--case {case.index}"}),
                      file=sys.stderr, flush=True)
                os._exit(3)


def _op_name(op: str) -> str:
    """Mutation name without its details (field paths, file names, notes)."""
    op = op.split("(")[0].split(":")[0]
    depth = 2 if op.startswith(("avro.record", "confluent.record")) else 3
    return ".".join(op.split(".")[:depth])


def run(corpus: Corpus, seed: int | str, n_cases: int, *, start: int = 0,
        families: Sequence[str] | None = None, regions: bool = True,
        enrich_alerts: bool = True, case_timeout: float | None = None,
        max_examples: int = MAX_EXAMPLES, progress: bool = False,
        watchdog_s: float | None = None, memory_mb: int | None = None) -> Summary:
    """Run cases ``start .. start + n_cases - 1`` of ``seed`` and count what they gave.

    Parameters
    ----------
    corpus : Corpus
        The seed files (:func:`load_corpus`).
    seed : int or str
        Run seed.
    n_cases : int
        Number of cases.
    start : int, optional
        First case index (runs can be split in slices with the same counts).
    families : sequence of str, optional
        Restrict the seed families.
    regions : bool, optional
        Build regions of the notices that parse.
    enrich_alerts : bool, optional
        Enrich the alert payloads (in batches of :data:`ENRICH_BATCH`).
    case_timeout : float, optional
        Per-case limit in seconds (SIGALRM; main thread only). None: no limit.
    max_examples : int, optional
        Failures kept in full.
    progress : bool, optional
        Print a progress line to stderr every 10,000 cases.
    watchdog_s : float, optional
        If one case runs longer than this (a loop in C code that ``case_timeout``
        cannot interrupt), print the case to stderr and end the process with exit
        code 3. For the command line only: it ends the process.
    memory_mb : int, optional
        Address space the cases may use beyond what the process has when the run
        starts (``RLIMIT_AS``, restored afterwards): a memory bomb becomes a
        ``MemoryError`` failure of its case instead of a visit of the OOM killer.

    Returns
    -------
    Summary
    """
    tally = _Tally(Summary(seed=str(seed)), max_examples)
    summary = tally.summary
    watchdog = _Watchdog(watchdog_s) if watchdog_s else None
    started = time.perf_counter()
    with MemoryCap(memory_mb):
        for case in cases(corpus, seed, n_cases, start, families):
            summary.cases += 1
            summary.families[case.family] += 1
            summary.mutations.update(_op_name(op) for op in case.ops)
            if watchdog is not None:
                watchdog.watch(case)
            result = evaluate(case, regions=regions, enrich_alerts=False,
                              case_timeout=case_timeout)
            if enrich_alerts and case.target == "alert":
                tally.pending.append((case, result))
                if len(tally.pending) >= ENRICH_BATCH:
                    tally.flush()
            else:
                tally.record(case, result)
            if progress and summary.cases % 10_000 == 0:
                rate = summary.cases / (time.perf_counter() - started)
                print(f"fuzz: {summary.cases} cases, {summary.failures} failures, "
                      f"{rate:.0f} cases/s", file=sys.stderr, flush=True)
        if watchdog is not None:
            watchdog.watch(None)
        tally.flush()
    summary.elapsed_s = time.perf_counter() - started
    return summary


@dataclass
class _Tally:
    """Counts results into a :class:`Summary`; holds alert cases until their batch is
    enriched."""

    summary: Summary
    max_examples: int
    pending: list[tuple[Case, CaseResult]] = field(default_factory=list)

    def record(self, case: Case, result: CaseResult) -> None:
        s = self.summary
        if result.kind is not None:
            s.outcomes[result.kind] += 1
        if result.region is not None:
            s.regions[result.region] += 1
        s.warnings.update(result.warnings)
        if result.failures:
            s.failures += 1
            for failure in result.failures:
                s.failure_kinds[failure.category] += 1
                s.signatures[failure.signature] += 1
                if len(s.examples) < self.max_examples:
                    s.examples.append(failure)

    def flush(self) -> None:
        if self.pending:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                rows, errors = _enrich_each([c for c, _ in self.pending],
                                            [r for _, r in self.pending])
            self.summary.enriched_rows += rows
            self.summary.decode_error_rows += errors
            self.summary.warnings.update(_warning_key(w) for w in caught)
        for case, result in self.pending:
            self.record(case, result)
        self.pending.clear()


class MemoryCap:
    """Context manager capping the address space (``RLIMIT_AS``) at the current size
    plus ``extra_mb`` MiB, restored on exit; a no-op when ``extra_mb`` is None or the
    platform has no such limit. A memory bomb in the code under test then raises
    :class:`MemoryError` in its case instead of bringing in the OOM killer.

    Parameters
    ----------
    extra_mb : int or None
        Address space allowed beyond the size at entry, MiB.
    """

    def __init__(self, extra_mb: int | None) -> None:
        self.extra_mb = extra_mb
        self.saved: tuple[int, int] | None = None

    def __enter__(self) -> MemoryCap:
        if not self.extra_mb:
            return self
        try:
            pages = int(Path("/proc/self/statm").read_text().split()[0])
            cap = pages * os.sysconf("SC_PAGE_SIZE") + self.extra_mb * 2**20
            saved = resource.getrlimit(resource.RLIMIT_AS)
            if saved[1] != resource.RLIM_INFINITY:
                cap = min(cap, saved[1])
            resource.setrlimit(resource.RLIMIT_AS, (cap, saved[1]))
            self.saved = saved
        except (OSError, ValueError):
            self.saved = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            resource.setrlimit(resource.RLIMIT_AS, self.saved)


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def parser() -> argparse.ArgumentParser:
    """Argument parser of ``python -m fuzz.run``."""
    p = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.split("\n")[0])
    p.add_argument("--cases", type=int, default=10_000, help="number of cases (default 10000)")
    p.add_argument("--seed", default="1", help="run seed (default 1)")
    p.add_argument("--start", type=int, default=0, help="index of the first case")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--data", help="shared data directory (default: $MM_DATA_DIR or "
                                  "../shared/data)")
    p.add_argument("--families", help=f"comma-separated subset of {','.join(FAMILY_WEIGHTS)}")
    p.add_argument("--no-regions", action="store_true", help="do not build notice regions")
    p.add_argument("--no-enrich", action="store_true", help="do not enrich alert batches")
    p.add_argument("--case", type=int, help="replay this one case and print its traceback")
    p.add_argument("--dump-dir", help="write the payload of --case (or of failures) here")
    p.add_argument("--case-timeout", type=float, default=10.0,
                   help="seconds before one case counts as a timeout failure (0: none)")
    p.add_argument("--watchdog", type=float, default=300.0,
                   help="seconds before a hung case ends the run with exit code 3 (0: none)")
    p.add_argument("--memory-mb", type=int, default=4096,
                   help="address space the cases may use beyond the start-up size, MiB "
                        "(a memory bomb becomes a MemoryError failure; 0: no cap)")
    p.add_argument("--max-examples", type=int, default=MAX_EXAMPLES,
                   help="failures reported in full")
    p.add_argument("--progress", action="store_true", help="progress lines on stderr")
    return p


def _dump(dump_dir: str | None, case: Case) -> str | None:
    if not dump_dir:
        return None
    folder = Path(dump_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"case-{case.seed}-{case.index}.bin"
    path.write_bytes(case.payload)
    return str(path)


def _replay(args: argparse.Namespace, corpus: Corpus, families: list[str] | None) -> int:
    case = make_case(corpus, args.seed, args.case, families)
    with MemoryCap(args.memory_mb or None):
        result = evaluate(case, regions=not args.no_regions, enrich_alerts=not args.no_enrich,
                          case_timeout=args.case_timeout or None)
    out = {"case": case.describe(), "kind": result.kind, "region": result.region,
           "warnings": result.warnings, "payload_file": _dump(args.dump_dir, case),
           "failures": [f.to_dict() for f in result.failures]}
    print(json.dumps(out, indent=None if args.json else 2))
    for failure in result.failures:
        if not args.json and failure.traceback:
            print(failure.traceback, file=sys.stderr)
    return 1 if result.failures else 0


def _text_report(summary: dict[str, Any]) -> str:
    lines = [f"fuzz seed {summary['seed']}: {summary['cases']} cases in "
             f"{summary['elapsed_s']} s ({summary['cases_per_s']} cases/s)"]
    for title in ("families", "outcomes", "regions", "failure_kinds"):
        lines.append(f"{title}:")
        lines.extend(f"  {k:<32} {v}" for k, v in summary[title].items())
    lines.append(f"enriched rows: {summary['enriched_rows']}, "
                 f"decode_error rows: {summary['decode_error_rows']}")
    lines.append(f"failures: {summary['failures']}")
    for sig, n in summary["failure_signatures"].items():
        lines.append(f"  {n:>6}  {sig}")
    for ex in summary["examples"]:
        lines.append(f"  e.g. {ex['reproduce']}: {ex['error']}: {ex['message'][:160]}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the cases, print the summary; exit code 1 on any failure."""
    args = parser().parse_args(argv)
    corpus = load_corpus(args.data)
    families = [f.strip() for f in args.families.split(",")] if args.families else None
    if families and set(families) - set(FAMILY_WEIGHTS):
        print(f"unknown families: {sorted(set(families) - set(FAMILY_WEIGHTS))}",
              file=sys.stderr)
        return 2
    if args.case is not None:
        return _replay(args, corpus, families)
    summary = run(corpus, args.seed, args.cases, start=args.start, families=families,
                  regions=not args.no_regions, enrich_alerts=not args.no_enrich,
                  case_timeout=args.case_timeout or None, max_examples=args.max_examples,
                  progress=args.progress, watchdog_s=args.watchdog or None,
                  memory_mb=args.memory_mb or None)
    if args.dump_dir:
        for failure in summary.examples:
            _dump(args.dump_dir, make_case(corpus, args.seed, failure.case["case"], families))
    report = summary.to_dict()
    report["corpus"] = corpus.size()
    if args.json:
        print(json.dumps(report))
    else:
        print(_text_report(report))
    return 1 if summary.failures or summary.unknown_kinds else 0


if __name__ == "__main__":
    sys.exit(main())
