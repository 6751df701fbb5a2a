"""Download formats of an event's candidates: JSON, CSV and VOTable.

The columns are the contract fields of the counterpart record (ARCHITECTURE.md), in
contract order, then the other scalar fields the records carry, sorted; nested
values (provenance maps, significance) are JSON text in CSV and VOTable.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from astropy.io.votable import from_table, writeto
from astropy.table import Table

#: The contract fields, in contract order.
CONTRACT_FIELDS = ("event_id", "messenger", "mission", "instrument", "notice_version",
                   "region_version", "role", "status", "trigger_time", "survey",
                   "object_id", "alert_id", "alert_time", "ra", "dec", "delta_t_s",
                   "separation_deg", "credible_level", "prob_density_deg2", "p_chance",
                   "rank", "newness")


def columns(records: Sequence[dict[str, Any]]) -> list[str]:
    """Contract fields first, then every other key present, sorted."""
    extra = sorted({k for r in records for k in r} - set(CONTRACT_FIELDS))
    return list(CONTRACT_FIELDS) + extra


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def to_csv(records: Sequence[dict[str, Any]]) -> str:
    """The records as CSV text (header line, then one line per record)."""
    buf = io.StringIO()
    cols = columns(records)
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for rec in records:
        writer.writerow(["" if rec.get(c) is None else _cell(rec.get(c)) for c in cols])
    return buf.getvalue()


def _column_values(records: Sequence[dict[str, Any]], name: str) -> list[Any]:
    values = [_cell(r.get(name)) for r in records]
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return [bool(v) if v is not None else False for v in values]
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return [float("nan") if v is None else float(v) for v in values]
    return ["" if v is None else str(v) for v in values]


def to_votable(records: Sequence[dict[str, Any]], event_id: str) -> bytes:
    """The records as a VOTable 1.4 document (one table, one row per record)."""
    cols = columns(records)
    table = Table({c: _column_values(records, c) for c in cols} if records
                  else {c: [] for c in cols})
    table.meta["description"] = f"mm_broker counterpart candidates of {event_id}"
    for unit_col, unit in (("ra", "deg"), ("dec", "deg"), ("separation_deg", "deg"),
                           ("delta_t_s", "s"), ("prob_density_deg2", "deg-2")):
        if unit_col in table.colnames and records:
            table[unit_col].unit = unit
    buf = io.BytesIO()
    writeto(from_table(table), buf)
    return buf.getvalue()
