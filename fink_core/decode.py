"""Decode ZTF and Rubin/LSST Avro alerts and flatten them to the alert model.

This module is the face of decoding: :func:`decode_avro` (bytes -> records),
:func:`recognise` (record -> survey and schema version), :func:`flatten` (records ->
model DataFrame) and :func:`decode_payloads` (a batch of any survey, failures kept).
The work is done by one module per concern:

- :mod:`fink_core.wire` — the wire formats: Avro object container files (ZTF, Fink's
  re-serialisation of ZTF and LSST, the LSST sample packets) and the Confluent wire
  format of the Rubin stream (schema id, writer schema from the registry);
- :mod:`fink_core.ztf` and :mod:`fink_core.lsst` — each survey's schema versions, how
  to tell them, and its flattener;
- :mod:`fink_core.rows` — what both flatteners share (history summary,
  ``survey_fields`` JSON, the model DataFrame);
- :mod:`fink_core.times` — leap seconds, TAI/UTC, JD/MJD;
- :mod:`fink_core.files` — alerts read from Avro and Fink Parquet files (replay).

Schema recognition
------------------
ZTF: ``schemavsn`` of the record, or for pre-v3 packets (no ``schemavsn``) the
``version`` attribute of the writer schema. LSST: ``lsst_schema_version`` (Fink) or
the ``lsst.vX_Y`` namespace of the writer schema. Versions outside
:data:`fink_core.ztf.ZTF_SCHEMA_VERSIONS` / :data:`fink_core.lsst.LSST_SCHEMA_VERSIONS`
raise :class:`~mm_broker.core.errors.UnknownSchema`; unreadable bytes raise
:class:`~mm_broker.core.errors.CorruptAlert`. Nothing is dropped silently: a row with
bad coordinates is kept with ``bad_coordinates = True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from fink_core import lsst, model, ztf
from fink_core.rows import META_KEY, concat_frames, model_frame
from fink_core.wire import read_records
from mm_broker.core.errors import CorruptAlert, UnknownSchema

#: Flattener of each survey (one record -> one model row dict).
_FLATTENERS = {"ztf": ztf.flatten_record, "lsst": lsst.flatten_record}


@dataclass(frozen=True)
class DecodeFailure:
    """A payload that could not be decoded, kept for the caller to store.

    Attributes
    ----------
    index : int
        Position of the payload in the input.
    error : str
        Name of the exception class (``CorruptAlert`` or ``UnknownSchema``).
    reason : str
        The exception message.
    """

    index: int
    error: str
    reason: str


def decode_avro(
    payload: bytes, *, writer_schemas: Mapping[int, Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Decode one Avro alert payload into its records.

    Parameters
    ----------
    payload : bytes
        An Avro object container file (ZTF, Fink, LSST samples) or a Confluent-framed
        message (Rubin stream: ``0x00`` + 4-byte schema id + Avro body).
    writer_schemas : mapping of int to dict, optional
        Schema registry content for Confluent-framed messages: schema id -> Avro
        schema. Hand in schemas already parsed with ``fastavro.parse_schema`` (done
        once, driver side): a raw dict is parsed again for every message.

    Returns
    -------
    list of dict
        The records (one per alert; ZTF and LSST packets hold one). Each record gets
        an extra key :data:`META_KEY` = ``{"survey", "schema_version"}``.

    Raises
    ------
    CorruptAlert
        Truncated, garbled, or neither framing.
    UnknownSchema
        Decodes, but the survey/version is not one we flatten (or the Confluent schema
        id is not in ``writer_schemas``).

    Examples
    --------
    >>> decode_avro(b"not avro")
    Traceback (most recent call last):
    ...
    mm_broker.core.errors.CorruptAlert: corrupt alert: not an Avro container nor a Confluent frame
    """
    records, writer = read_records(payload, writer_schemas)
    for rec in records:
        survey, version = recognise(rec, writer)
        rec[META_KEY] = {"survey": survey, "schema_version": version}
    return records


def recognise(
    record: Mapping[str, Any], writer_schema: Mapping[str, Any] | None = None
) -> tuple[str, str]:
    """Tell the survey and schema version of a decoded alert record.

    Parameters
    ----------
    record : mapping
        A decoded alert (or a row of a Fink Parquet file).
    writer_schema : mapping, optional
        The Avro writer schema, used when the record does not carry its version.

    Returns
    -------
    (str, str)
        ``("ztf", "4.02")``, ``("lsst", "9.0")``...

    Raises
    ------
    UnknownSchema
        Unknown layout, or a known survey with an unknown version (named).
    """
    meta = record.get(META_KEY)
    if isinstance(meta, Mapping):
        return str(meta["survey"]), str(meta["schema_version"])
    writer = writer_schema or {}
    version = ztf.recognise(record, writer)
    if version is not None:
        return "ztf", version
    version = lsst.recognise(record, writer)
    if version is not None:
        return "lsst", version
    raise UnknownSchema(None, record.get("schemavsn") or writer.get("version"))


def flatten(records: Sequence[Mapping[str, Any]], survey: str) -> pd.DataFrame:
    """Flatten decoded alert records into the alert model.

    Parameters
    ----------
    records : sequence of mapping
        Output of :func:`decode_avro` (or rows of a Fink Parquet file).
    survey : {"ztf", "lsst"}
        The survey the records come from (checked against each record).

    Returns
    -------
    pandas.DataFrame
        One row per record, columns :data:`fink_core.model.COLUMN_NAMES` in order.

    Raises
    ------
    UnknownSchema
        A record of an unknown layout or version.
    ValueError
        ``survey`` is not a survey we know, or a record is of another survey.
    """
    if survey not in model.SURVEYS:
        raise ValueError(f"survey must be one of {model.SURVEYS}, not {survey!r}")
    flatten_record = _FLATTENERS[survey]
    rows = []
    for rec in records:
        rec_survey, version = recognise(rec)
        if rec_survey != survey:
            raise ValueError(f"a {rec_survey} alert was handed to flatten(..., {survey!r})")
        rows.append(flatten_record(rec, version))
    return model_frame(rows)


def decode_payloads(payloads: Iterable[bytes]) -> tuple[pd.DataFrame, list[DecodeFailure]]:
    """Decode and flatten a batch of payloads of any survey, keeping the failures.

    Parameters
    ----------
    payloads : iterable of bytes
        Kafka message values or file contents.

    Returns
    -------
    (pandas.DataFrame, list of DecodeFailure)
        The flattened alerts (ZTF rows first, then LSST, each in input order) and one
        :class:`DecodeFailure` per payload that raised ``CorruptAlert`` or
        ``UnknownSchema`` (the caller stores them; nothing is dropped silently).
    """
    by_survey: dict[str, list[dict[str, Any]]] = {s: [] for s in model.SURVEYS}
    failures: list[DecodeFailure] = []
    for index, payload in enumerate(payloads):
        try:
            records = decode_avro(payload)
        except (CorruptAlert, UnknownSchema) as exc:
            failures.append(DecodeFailure(index, type(exc).__name__, str(exc)))
            continue
        for rec in records:
            by_survey[rec[META_KEY]["survey"]].append(rec)
    frames = [flatten(recs, s) for s, recs in by_survey.items() if recs]
    return concat_frames(frames), failures


__all__ = ["META_KEY", "DecodeFailure", "concat_frames", "decode_avro", "decode_payloads",
           "flatten", "recognise"]
