"""Wire-format helpers shared by the corpus and the mutators.

Avro's zig-zag varints and the container header (magic, metadata map, sync marker),
written and read without fastavro so that a mutator can rewrite a header fastavro
would refuse; and paths to the values inside a decoded JSON document or Avro record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: A path to a value inside a decoded JSON document or Avro record.
JSONPath = tuple[str | int, ...]


def get_path(doc: Any, path: JSONPath) -> Any:
    """The value at ``path`` inside ``doc`` (keys and list indices, in order).

    Parameters
    ----------
    doc : object
        A decoded JSON document or Avro record.
    path : tuple of str or int
        Keys and indices from the top.

    Returns
    -------
    object
    """
    for step in path:
        doc = doc[step]
    return doc


def record_leaves(node: Any, prefix: JSONPath = ()) -> list[JSONPath]:
    """Paths of a record's values that record mutations change.

    Containers and non-null, non-bytes scalars; only the first three items of a list.

    Parameters
    ----------
    node : object
        A decoded Avro record (or a part of one).
    prefix : tuple, optional
        Path of ``node`` in the whole record.

    Returns
    -------
    list of tuple
    """
    found: list[JSONPath] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict | list):
                found.append((*prefix, key))
                found.extend(record_leaves(value, (*prefix, key)))
            elif value is not None and not isinstance(value, bytes):
                found.append((*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            found.extend(record_leaves(value, (*prefix, index)))
    return found


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode the zig-zag varint at ``pos``; returns (value, next position).

    Raises
    ------
    ValueError
        Truncated, or longer than a 64-bit long.
    """
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


def varint(value: int) -> bytes:
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
        count, pos = read_varint(data, pos)
        if count == 0:
            break
        if count < 0:
            count = -count
            _, pos = read_varint(data, pos)
        for _ in range(count):
            klen, pos = read_varint(data, pos)
            key = data[pos : pos + klen]
            pos += klen
            vlen, pos = read_varint(data, pos)
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
        out += varint(len(meta))
        for key, value in meta.items():
            raw = key.encode("utf-8", "surrogateescape")
            out += varint(len(raw)) + raw + varint(len(value)) + value
    out += varint(0) + sync
    return bytes(out)
