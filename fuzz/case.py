"""One fuzz case (a mutated payload and how to feed it), and how to replay it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fuzz.corpus import NOTICE_FAMILIES


def reproduce_command(seed: str, index: int) -> str:
    """The command that replays case ``index`` of run ``seed`` alone, with its traceback.

    Parameters
    ----------
    seed : str
        Run seed.
    index : int
        Case index.

    Returns
    -------
    str
    """
    return f"python -m fuzz.run --seed {seed} --case {index}"


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
        Family of the seed file (:data:`fuzz.corpus.FAMILY_WEIGHTS`).
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
