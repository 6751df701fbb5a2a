"""Our VOEvents 2.0, the face of the VOEvent concern of the publishers.

Three modules, one concern each, whose public names are all importable from here:

:mod:`publishers.voevent_build`
    The documents and their deterministic IVORNs (:func:`counterpart_voevent`,
    :func:`retraction_voevent`, :class:`VOEventDoc`).
:mod:`publishers.voevent_check`
    :func:`check`, passed by every VOEvent before it leaves the process
    (:class:`InvalidVOEvent`, :data:`MAX_BYTES`).
this module
    :class:`VOEventAuthor`, which issues them in order (numbering, ``supersedes``,
    retraction citations), and :func:`write_voevents`.

Examples
--------
>>> from datetime import UTC, datetime
>>> author = VOEventAuthor("ivo://mm-broker.local/counterparts")
>>> author.remember("LVK:S240115ak", 1, counterpart_ivorn(author.author_ivorn,
...                                                       "LVK:S240115ak", 1))
>>> author.issued("LVK:S240115ak")
['ivo://mm-broker.local/counterparts#LVK:S240115ak/r1/1']
>>> author.counterparts([], datetime(2024, 1, 15, tzinfo=UTC))
[]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from mm_broker.core.config import Settings
from publishers.config import PublishConfig
from publishers.voevent_build import (
    POSITION_ERROR_DEG,
    VOEventDoc,
    counterpart_ivorn,
    counterpart_voevent,
    retraction_ivorn,
    retraction_voevent,
)
from publishers.voevent_check import MAX_BYTES, InvalidVOEvent, check

__all__ = ["MAX_BYTES", "POSITION_ERROR_DEG", "InvalidVOEvent", "VOEventAuthor", "VOEventDoc",
           "check", "counterpart_ivorn", "counterpart_voevent", "retraction_ivorn",
           "retraction_voevent", "write_voevents"]


class VOEventAuthor:
    """Issue our VOEvents in order, remembering what was issued per event.

    It numbers the VOEvents of each region version (``issue``), makes every new
    VOEvent of an event supersede our previous one, and cites all of ours in a
    retraction. Feed it records in time order (the replay does); the state can be
    restored with :meth:`remember`.

    Parameters
    ----------
    author_ivorn : str
    max_candidates : int
    reference_url : str, optional
    """

    def __init__(self, author_ivorn: str, *, max_candidates: int = 20,
                 reference_url: str | None = None) -> None:
        self.author_ivorn = author_ivorn
        self.max_candidates = max_candidates
        self.reference_url = reference_url
        self._issued: dict[str, list[str]] = {}
        self._issues: dict[tuple[str, int], int] = {}

    @classmethod
    def from_config(cls, config: PublishConfig) -> VOEventAuthor:
        """An author from ``publish.author_ivorn``, ``voevent_max_candidates`` and
        ``reference_url``."""
        return cls(config.author_ivorn, max_candidates=config.voevent_max_candidates,
                   reference_url=config.reference_url)

    @classmethod
    def from_settings(cls, settings: Settings) -> VOEventAuthor:
        """An author configured from mm_broker's settings."""
        return cls.from_config(PublishConfig.from_settings(settings))

    def issued(self, event_id: str) -> list[str]:
        """Our counterpart VOEvents' IVORNs for ``event_id``, oldest first."""
        return list(self._issued.get(event_id, []))

    def remember(self, event_id: str, region_version: int | None, ivorn: str) -> None:
        """Record a VOEvent issued earlier (e.g. restored from the database); a
        retraction (``region_version`` None) is neither numbered nor cited again."""
        if region_version is None:
            return
        self._issued.setdefault(event_id, []).append(ivorn)
        key = (event_id, region_version)
        self._issues[key] = self._issues.get(key, 0) + 1

    def counterparts(self, records: Iterable[Mapping[str, Any]],
                     authored: datetime) -> list[VOEventDoc]:
        """One VOEvent per ``(event_id, region_version)`` with candidates among ``records``.

        Withdrawn records are ignored (they are announced by the superseding
        VOEvent, or by a retraction). Groups come out in order of first appearance.
        """
        groups: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
        for r in records:
            if r.get("status") == "candidate":
                groups.setdefault((r["event_id"], r["region_version"]), []).append(r)
        docs = []
        for (event_id, region_version), cands in groups.items():
            issue = self._issues.get((event_id, region_version), 0) + 1
            previous = self._issued.get(event_id, [])
            doc = counterpart_voevent(cands, author_ivorn=self.author_ivorn, authored=authored,
                                      issue=issue, supersedes=previous[-1:],
                                      max_candidates=self.max_candidates,
                                      reference_url=self.reference_url)
            self.remember(event_id, region_version, doc.ivorn)
            docs.append(doc)
        return docs

    def retraction(self, record: Mapping[str, Any], authored: datetime) -> VOEventDoc:
        """The retraction VOEvent of an event, citing every VOEvent of ours for it (none
        if we announced no candidate: see :func:`retraction_voevent`)."""
        return retraction_voevent(record, author_ivorn=self.author_ivorn, authored=authored,
                                  retracts=self.issued(record["event_id"]),
                                  reference_url=self.reference_url)


def write_voevents(docs: Iterable[VOEventDoc], directory: str | Path) -> list[Path]:
    """Write each document to ``directory/<filename>`` (created if needed); return paths.

    ``mm-broker replay --out DIR`` passes ``DIR / "voevents"``.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for doc in docs:
        path = folder / doc.filename
        path.write_bytes(doc.xml)
        paths.append(path)
    return paths
