"""Shared helpers of the VOEvent parser tests: the expected-outcome table and file walk.

``voevent_outcomes.csv`` (next to this file) lists every XML file under
``notices/`` and ``triggers/`` of the shared data with its expected outcome:

* ``notice`` and the expected ``event_id``, or
* the ``reason`` code of the expected :class:`NoticeError` subclass and the start
  of its message.

A parser change that changes any outcome changes a row of that table.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from listeners.parsers.voevent_registry import parse_voevent
from mm_broker.core.errors import NoticeError
from mm_broker.core.models import Notice

HERE = Path(__file__).resolve().parent
OUTCOMES_CSV = HERE / "voevent_outcomes.csv"
#: Folders of the shared data holding notices, walked recursively for ``*.xml``.
XML_FOLDERS = ("notices", "triggers")


@dataclass(frozen=True)
class Expected:
    """One row of the outcome table."""

    path: str
    outcome: str
    expect: str


def expected_outcomes() -> dict[str, Expected]:
    """The outcome table keyed by path relative to the data folder."""
    with OUTCOMES_CSV.open(newline="") as handle:
        rows = [Expected(r["path"], r["outcome"], r["expect"]) for r in csv.DictReader(handle)]
    return {row.path: row for row in rows}


def xml_files(data_dir: Path) -> list[str]:
    """Every ``*.xml`` under the notice folders, relative to ``data_dir``, sorted."""
    found = []
    for folder in XML_FOLDERS:
        for path in (data_dir / folder).rglob("*.xml"):
            found.append(str(path.relative_to(data_dir)))
    return sorted(found)


def outcome(payload: bytes, **kwargs: object) -> Notice | NoticeError:
    """Parse and return the Notice or the named error (any other exception escapes)."""
    try:
        return parse_voevent(payload, **kwargs)  # type: ignore[arg-type]
    except NoticeError as exc:
        return exc
