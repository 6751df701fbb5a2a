"""Byte-level mutations, shared by every family.

Bit flips, set, delete, insert (tokens of the payload's syntax or random bytes),
duplicate, truncate, and splices with another seed; positions biased to the head and
tail of the payload, where the structure is.
"""

from __future__ import annotations

import random

from fuzz.formats import varint
from fuzz.mutators.common import position, weighted

#: Bytes that mean something in each syntax (set in place of one byte).
INTERESTING_BYTES = {
    "json": b'{}[]",:0-+eE.\\ntfu\x00\xff \x7f',
    "xml": b"<>/=\"'&;!?[]:-#x\x00\xff \x0b",
    "avro": bytes([0x00, 0x01, 0x02, 0x7F, 0x80, 0xFE, 0xFF]),
}
#: Tokens of each syntax (inserted), and Avro varint bombs.
TOKENS = {
    "json": [b"null", b'"', b"\\u0000", b"\\ud800", b"1e999", b"NaN", b"[", b"{", b"}",
             b"],", b",,", b"\\", b"\xc3\x28", b"\xef\xbb\xbf", b"-", b"00"],
    "xml": [b"<", b"</a>", b"&", b"&amp;", b"&#0;", b"]]>", b"<!--", b"<![CDATA[",
            b"\xef\xbb\xbf", b"\xff\xfe", b"\xc3\x28", b"<a>", b'"', b"/>", b"xmlns=\"\""],
    "avro": [varint(2**62), varint(-1), b"\xff" * 10 + b"\x01", varint(0),
             varint(2**31), b"Obj\x01", bytes(16)],
}


def kind_of(family: str) -> str:
    """The syntax of a family's payloads: ``json``, ``xml`` or ``avro``."""
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
    kind = kind_of(family)
    ops = [("flip", 30), ("set", 15), ("delete", 12), ("insert", 15), ("duplicate", 6),
           ("truncate", 12)]
    if other is not None:
        ops.append(("splice", 10))
    op = weighted(rng, ops) if data else "insert"
    size = len(data)
    if op == "flip":
        pos = position(rng, size)
        for _ in range(rng.choice((1, 1, 1, 2, 4, 8))):
            where = min(size - 1, pos + rng.randrange(8))
            data[where] ^= 1 << rng.randrange(8)
    elif op == "set":
        data[position(rng, size)] = rng.choice(INTERESTING_BYTES[kind])
    elif op == "delete":
        pos = position(rng, size)
        del data[pos : pos + rng.choice((1, 1, 2, 4, 16, 64, 4096))]
    elif op == "insert":
        pos = position(rng, size) if size else 0
        token = (rng.choice(TOKENS[kind]) if rng.random() < 0.6
                 else rng.randbytes(rng.randint(1, 16)))
        data[pos:pos] = token
    elif op == "duplicate":
        start = position(rng, size)
        chunk = bytes(data[start : start + rng.choice((1, 8, 64, 512))])
        at = position(rng, size)
        data[at:at] = chunk * rng.choice((1, 2, 16))
    elif op == "truncate":
        del data[position(rng, size) :]
    else:
        assert other is not None
        cut = position(rng, size)
        start = position(rng, len(other)) if other else 0
        data[cut:] = other[start:]
    return f"bytes.{op}"
