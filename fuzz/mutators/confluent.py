"""Cases of the ``confluent`` family: Confluent-framed schemaless Avro bodies.

A frame is the magic byte, a 4-byte schema id and the record's body (possibly with one
value changed, :func:`fuzz.mutators.avro.mutate_record`); the case's schema registry
holds the right writer schema, none, another id's, or another alert's schema. The
frame's magic byte is then damaged, the frame cut short, or its bytes mutated.
"""

from __future__ import annotations

import io
import random
from typing import Any

import fastavro

from fuzz.case import Case
from fuzz.corpus import AvroSeed, Corpus
from fuzz.mutators.avro import mutate_record
from fuzz.mutators.binary import mutate_bytes
from fuzz.mutators.common import draw_n_ops


def confluent_case(rng: random.Random, corpus: Corpus, family: str, seed_name: str,
                   index: int) -> Case:
    """Draw a case of the ``confluent`` family.

    Parameters
    ----------
    rng : random.Random
        Source of every choice.
    corpus : Corpus
        The seed files.
    family : str
        ``"confluent"``.
    seed_name : str
        Run seed recorded in the case.
    index : int
        Case index recorded in the case.

    Returns
    -------
    Case
        Its ``writer_schemas`` is the schema registry handed to the decoder.
    """
    seed: AvroSeed = rng.choice(corpus.seeds[family])
    assert seed.body is not None
    schema_id = rng.choice((1, 7, 2**31 - 1, 0xFFFFFFFF))
    ops: list[str] = []
    body = seed.body
    if seed.record is not None and rng.random() < 0.4:
        record, where = mutate_record(rng, seed)
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
    for _ in range(draw_n_ops(rng) - (1 if ops else 0)):
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
