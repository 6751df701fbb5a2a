"""Random choices shared by the mutators (every choice comes from the case's ``rng``)."""

from __future__ import annotations

import random
from collections.abc import Sequence


def weighted(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    """A name of ``table`` drawn with its weight.

    Parameters
    ----------
    rng : random.Random
        Source of the choice.
    table : sequence of (str, int)
        Names and integer weights, in a fixed order.

    Returns
    -------
    str
    """
    total = sum(w for _, w in table)
    pick = rng.randrange(total)
    for name, weight in table:
        if pick < weight:
            return name
        pick -= weight
    return table[-1][0]


def position(rng: random.Random, size: int, head: int = 2000, tail: int = 500) -> int:
    """A position in ``[0, size)``, biased to the head and tail of the payload."""
    roll = rng.random()
    if roll < 0.4:
        return rng.randrange(min(size, head))
    if roll < 0.6:
        return rng.randrange(max(0, size - tail), size)
    return rng.randrange(size)


def draw_n_ops(rng: random.Random) -> int:
    """Number of mutations of one case: 1 (60 %), 2 (30 %) or 3 (10 %)."""
    return int(weighted(rng, [("1", 60), ("2", 30), ("3", 10)]))
