"""Alerts from files, for batch replay: Avro packets and Fink Parquet tables.

:func:`read_alert_files` reads folders or files of alert packets (``*.avro``, each
decoded with :func:`fink_core.decode.decode_avro`) and of Fink's Parquet alert
tables (``*.parquet``: raw or science-enriched, ZTF ``candidate``/``prv_candidates``
or LSST ``diaSource`` layout), and flattens them to the alert model.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fink_core.decode import decode_avro, flatten, recognise
from fink_core.rows import CUTOUT_KEYS, concat_frames
from mm_broker.core.errors import CorruptAlert

#: File suffixes searched in folders.
ALERT_SUFFIXES = (".avro", ".parquet")


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.suffix in ALERT_SUFFIXES))
        else:
            out.append(p)
    return out


def _parquet_records(path: Path) -> list[dict[str, Any]]:
    """Rows of a Fink Parquet file as alert records (cutouts not read)."""
    schema = pq.read_schema(path)
    columns = [n for n in schema.names if n not in CUTOUT_KEYS]
    table = pq.read_table(path, columns=columns)
    records = table.to_pylist()
    maps = [f.name for f in table.schema if pa.types.is_map(f.type)]
    for rec in records:
        for name in maps:
            if rec[name] is not None:
                rec[name] = dict(rec[name])
    return records


def read_alert_files(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Read alerts for batch replay from Avro files and Fink Parquet files.

    Parameters
    ----------
    paths : iterable of str or Path
        Files or folders (folders are searched recursively for ``*.avro`` and
        ``*.parquet``, in sorted order). Avro files are decoded with
        :func:`fink_core.decode.decode_avro`. Parquet files are Fink's alert tables
        (raw or science-enriched, ZTF ``candidate``/``prv_candidates`` or LSST
        ``diaSource`` layout): the alert part is mapped to the model like a decoded
        packet, and Fink's added columns (``cdsxmatch``, ``roid``, ``mag_rate``...) go
        into ``survey_fields`` with the rest of the record.

    Returns
    -------
    pandas.DataFrame
        The model, rows in file order. Duplicated alerts are kept.

    Raises
    ------
    CorruptAlert, UnknownSchema
        On the first unreadable file (named in the message for Avro).
    """
    frames: list[pd.DataFrame] = []
    for path in _expand(paths):
        if path.suffix == ".parquet":
            records = _parquet_records(path)
        else:
            try:
                records = decode_avro(path.read_bytes())
            except CorruptAlert as exc:
                raise CorruptAlert(f"{path}: {exc.reason}") from exc
        by_survey: dict[str, list[dict[str, Any]]] = {}
        for rec in records:
            survey, _ = recognise(rec)
            by_survey.setdefault(survey, []).append(rec)
        frames.extend(flatten(recs, s) for s, recs in by_survey.items())
    return concat_frames(frames)


__all__ = ["ALERT_SUFFIXES", "read_alert_files"]
