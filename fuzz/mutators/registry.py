"""Which mutator draws a case of each family, and the deterministic drawing of cases.

:data:`CASE_BUILDERS` is the explicit table (no discovery): a new format gets a
module under :mod:`fuzz.mutators` and a row here, and a family of
:data:`fuzz.corpus.FAMILY_WEIGHTS`. Case ``i`` of seed ``s`` is drawn from
``random.Random(f"{s}:{i}")`` alone (:func:`make_case`), so a case is replayed
without the ones before it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence

from fuzz.case import Case
from fuzz.corpus import FAMILY_WEIGHTS, Corpus
from fuzz.mutators.avro import avro_case
from fuzz.mutators.common import weighted
from fuzz.mutators.confluent import confluent_case
from fuzz.mutators.notice import notice_case

#: A case builder: ``(rng, corpus, family, seed_name, index) -> Case``.
CaseBuilder = Callable[[random.Random, Corpus, str, str, int], Case]

#: The builder of each family's cases.
CASE_BUILDERS: dict[str, CaseBuilder] = {
    "xml": notice_case,  # VOEvent tree and text edits (fuzz.mutators.voevent), bytes
    "json": notice_case,  # JSON document edits (fuzz.mutators.json_notice), bytes
    "gwalert": notice_case,  # the same, and sky map damage (fuzz.mutators.skymap)
    "avro": avro_case,  # records, headers, blocks of Avro containers
    "confluent": confluent_case,  # Confluent frames and their schema registry
}


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
    family = weighted(rng, table)
    return CASE_BUILDERS[family](rng, corpus, family, seed, index)


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
