"""Cases of the notice families (``xml``, ``json``, ``gwalert``).

A case takes one notice seed and the topic it is handed to the parser with (its own,
none, another one, or a name no broker would use), then one to three mutations:
structured ones first (by the format's module of :data:`STRUCTURED`), byte-level ones
last (:func:`fuzz.mutators.binary.mutate_bytes`, sometimes a splice with another
notice).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from fuzz.case import Case
from fuzz.corpus import NOTICE_FAMILIES, Corpus, NoticeSeed
from fuzz.mutators import json_notice, voevent
from fuzz.mutators.binary import mutate_bytes
from fuzz.mutators.common import draw_n_ops

#: A structured mutator: ``(rng, seed, count) -> (payload, ops)``, or None when the
#: seed cannot be edited structurally.
StructuredMutator = Callable[[random.Random, NoticeSeed, int], tuple[bytes, list[str]] | None]

#: Structured mutator of each notice family, and the share of a case's mutations that
#: are structured (the others are byte-level).
STRUCTURED: dict[str, tuple[StructuredMutator, float]] = {
    "xml": (voevent.structured, 0.6),
    "json": (json_notice.structured, 0.6),
    "gwalert": (json_notice.structured, 0.8),
}


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


def notice_case(rng: random.Random, corpus: Corpus, family: str, seed_name: str,
                index: int) -> Case:
    """Draw a case of a notice family.

    Parameters
    ----------
    rng : random.Random
        Source of every choice.
    corpus : Corpus
        The seed files.
    family : str
        ``"xml"``, ``"json"`` or ``"gwalert"``.
    seed_name : str
        Run seed recorded in the case.
    index : int
        Case index recorded in the case.

    Returns
    -------
    Case
    """
    seeds = corpus.seeds[family]
    seed: NoticeSeed = rng.choice(seeds)
    topic = _topic(rng, corpus, seed)
    source = seed.rel
    if rng.random() < 0.03:
        return Case(seed_name, index, family, source, ("none",), seed.data, topic)
    n_ops = draw_n_ops(rng)
    mutator, structured_share = STRUCTURED[family]
    kinds = ["structured" if rng.random() < structured_share else "bytes" for _ in range(n_ops)]
    kinds.sort(key=lambda k: k != "structured")  # structured edits first, bytes last
    ops: list[str] = []
    payload = seed.data
    n_structured = kinds.count("structured")
    if n_structured:
        edited = mutator(rng, seed, n_structured)
        if edited is None:
            kinds = ["bytes"] * len(kinds)
        else:
            payload, ops = edited
    data = bytearray(payload)
    for kind in kinds:
        if kind != "bytes":
            continue
        other = None
        if rng.random() < 0.15:
            # Families in sorted order: a set's order changes with the hash seed, and the
            # case must be the same in the process that replays it.
            pool = seeds if rng.random() < 0.8 else [
                s for f in sorted(NOTICE_FAMILIES) for s in corpus.seeds.get(f, ())]
            partner: NoticeSeed = rng.choice(pool)
            other = partner.data
            source = f"{source} + {partner.rel}"
        ops.append(mutate_bytes(rng, data, family, other))
    return Case(seed_name, index, family, source, tuple(ops), bytes(data), topic)
