"""Mutations of an Avro alert container (ZTF, LSST), and the cases of the ``avro`` family.

Records re-encoded with one value changed (out-of-range floats and ints, odd
strings, emptied or doubled lists, nulled records), header rewrites (codec, schema
JSON, metadata keys, sync marker), truncation and byte flips aimed at the header,
the first block and the sync marker, varint bombs, and splices with another alert.
"""

from __future__ import annotations

import io
import json
import math
import random
from typing import Any

import fastavro

from fuzz.case import Case
from fuzz.corpus import AvroSeed, Corpus
from fuzz.formats import JSONPath, get_path, read_header, write_header
from fuzz.mutators.binary import INTERESTING_BYTES, TOKENS, mutate_bytes
from fuzz.mutators.common import draw_n_ops, weighted

#: Replacement values of record fields, by Avro type.
_FLOATS = (math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0, -0.0, -999.0, 5e-324, 360.0,
           400.0, -91.0, 1e20, 2400000.5, -1.0, 2460000.5)
_INTS = (0, -1, 1, -999, 2**31 - 1, -(2**31), 99, 3, 2)
_STRS = ("", "x", "null", "t", "f", "0", "1", "\u00e9" * 3, "\u0000", "a" * 1000, "9.99",
         "4.02", "3.3", "ZTF24aaaaaaa", "lsst.v99_0")

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


def mutate_record(rng: random.Random, seed: AvroSeed) -> tuple[dict[str, Any], str]:
    """A copy of the seed's record with one value changed (keeping its Avro type)."""
    assert seed.record is not None
    leaves = seed.leaves
    if not leaves:
        return seed.record, "none"
    # Favour the fields the flattening reads.
    keyed = [p for p in leaves if p[-1] in _READ_FIELDS]
    path = rng.choice(keyed if keyed and rng.random() < 0.8 else leaves)
    record = _copy_along(seed.record, path)
    parent = get_path(record, path[:-1])
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
    op = weighted(rng, [("codec", 25), ("schema", 45), ("drop_schema", 5), ("junk_key", 8),
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
    op = weighted(rng, [("flip_header", 22), ("flip_block", 18), ("flip_sync", 8),
                        ("truncate", 16), ("varint", 12), ("set", 8)])
    if op == "truncate":
        cut = rng.choice((rng.randrange(size), max(0, header_end - rng.randint(0, 3)),
                          min(size, header_end + rng.randint(0, 40)),
                          max(0, size - rng.randint(1, 16)), rng.randrange(max(1, header_end))))
        del data[cut:]
    elif op == "varint":
        at = min(size, header_end + rng.choice((0, 0, 1, 2, 3, 4, 5, 8)))
        bomb = rng.choice(TOKENS["avro"][:5])
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
            data[at] = rng.choice(INTERESTING_BYTES["avro"])
        else:
            for _ in range(rng.choice((1, 1, 2, 4))):
                data[min(size - 1, at + rng.randrange(4))] ^= 1 << rng.randrange(8)
    return f"avro.{op}"


def avro_case(rng: random.Random, corpus: Corpus, family: str, seed_name: str,
              index: int) -> Case:
    """Draw a case of the ``avro`` family: a seed container mutated one to three times.

    Parameters
    ----------
    rng : random.Random
        Source of every choice.
    corpus : Corpus
        The seed files.
    family : str
        ``"avro"``.
    seed_name : str
        Run seed recorded in the case.
    index : int
        Case index recorded in the case.

    Returns
    -------
    Case
    """
    seed: AvroSeed = rng.choice(corpus.seeds[family])
    ops: list[str] = []
    if rng.random() < 0.03:
        return Case(seed_name, index, family, seed.rel, ("none",), seed.data)
    payload = seed.data
    n_ops = draw_n_ops(rng)
    if seed.record is not None and rng.random() < 0.3:
        record, where = mutate_record(rng, seed)
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
