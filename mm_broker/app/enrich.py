"""``mm-broker alerts enrich PATH... --out DIR``: the batch form of the enrichment.

Alert files (Avro packets, folders of them, and Fink's Parquet alert tables) go
through the same pure pandas enrichment as the streaming pipeline — decode, quality
flags, context, features, cross-matches, Fink's science modules, classification
(:func:`fink_core.pipeline.enrich`, :func:`fink_core.pipeline.enrich_frame`) — and
come out as Parquet files under ``DIR``, in the columns of the enriched archive
(:func:`fink_core.pipeline.enriched_arrow_schema`), stamped with the run's provenance:

``DIR/enriched-00000.parquet``...  one per input Parquet file, and one per
                                   :data:`AVRO_CHUNK` Avro packets (in sorted order);
                                   every row has its ``alert_id``; ``kafka_topic``
                                   holds the path of an Avro packet's file
``DIR/decode_errors.jsonl``        one line per payload that did not decode
                                   (``path``, ``reason``): it has no alert id, so no
                                   row in the Parquet files
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fink_core.catalogues import Catalogue, load_default_catalogues
from fink_core.files import ALERT_SUFFIXES, read_alert_files
from fink_core.pipeline import enrich, enrich_frame, enriched_arrow_schema
from mm_broker.app.provenance import rule_versions
from mm_broker.core.config import Settings
from mm_broker.core.provenance import Provenance

#: Avro packets enriched (and written) together.
AVRO_CHUNK = 2000


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.suffix in ALERT_SUFFIXES))
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such alert file or folder: {p}")
    return out


def enrich_files(paths: Sequence[str | Path], out_dir: str | Path,
                 catalogues: Sequence[Catalogue], provenance: Provenance) -> dict[str, Any]:
    """Enrich alert files into Parquet files under ``out_dir`` (see the module docstring).

    Parameters
    ----------
    paths : sequence of str or Path
        Avro files, Fink Parquet files, or folders of them (searched recursively).
    out_dir : str or Path
        Output folder (created).
    catalogues : sequence of Catalogue
        Loaded catalogues.
    provenance : Provenance
        The run's provenance (stamped on every row).

    Returns
    -------
    dict
        ``out``, ``files`` (written, relative to ``out``), ``rows``, ``inputs``,
        ``decode_errors``.

    Raises
    ------
    FileNotFoundError
        If a path does not exist.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    schema = enriched_arrow_schema([c.key for c in catalogues])
    inputs = _expand(paths)
    written: list[str] = []
    rows = 0
    errors: list[dict[str, str]] = []

    def write(frame: Any) -> None:
        nonlocal rows
        name = f"enriched-{len(written):05d}.parquet"
        pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False),
                       out / name)
        written.append(name)
        rows += len(frame)

    for parquet in (p for p in inputs if p.suffix == ".parquet"):
        write(enrich_frame(read_alert_files([parquet]), catalogues, provenance=provenance))
    avro = [p for p in inputs if p.suffix == ".avro"]
    for start in range(0, len(avro), AVRO_CHUNK):
        chunk = avro[start:start + AVRO_CHUNK]
        frame = enrich([p.read_bytes() for p in chunk], catalogues,
                       topics=[str(p) for p in chunk], provenance=provenance)
        bad = frame["decode_error"].notna()
        errors += [{"path": str(t), "reason": str(r)} for t, r in
                   zip(frame.loc[bad, "kafka_topic"], frame.loc[bad, "decode_error"],
                       strict=True)]
        if (~bad).any():
            write(frame[~bad])
    with open(out / "decode_errors.jsonl", "w", encoding="utf-8") as fh:
        for e in errors:
            fh.write(json.dumps(e) + "\n")
    return {"out": str(out), "files": written, "rows": rows, "inputs": len(inputs),
            "decode_errors": len(errors)}


def enrich_command(settings: Settings, paths: Sequence[str | Path],
                   out_dir: str | Path) -> dict[str, Any]:
    """``alerts enrich``: the default catalogues and this run's provenance, then
    :func:`enrich_files`."""
    catalogues = load_default_catalogues(settings.catalogue_dir())
    provenance = Provenance.from_settings(settings, catalogues, rule_versions())
    return enrich_files(paths, out_dir, catalogues, provenance)


__all__ = ["AVRO_CHUNK", "enrich_command", "enrich_files"]
