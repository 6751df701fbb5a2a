"""ZTF alerts: the schema versions we flatten, how to tell them, and the flattener.

A ZTF record has ``candidate`` and ``objectId``; its version is ``schemavsn``, or for
pre-v3 packets (no ``schemavsn``) the ``version`` attribute of the writer schema.
Times are UTC Julian dates already (``jd``); ZTF writes -999 for "none" in some
float and integer fields, which become NaN / null here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from fink_core import model
from fink_core.rows import HistPoint, bad_coordinates, num, summarise, survey_fields_json
from mm_broker.core.errors import UnknownSchema

#: ZTF schema versions whose layout we flatten (all verified on real packets).
#: Adding one is one line here once a real packet of it has been checked.
ZTF_SCHEMA_VERSIONS: dict[str, str] = {
    "1.8": "pre-v3 packets (2018): no schemavsn field, version read from the Avro schema",
    "3.2": "ZTF public alerts 2018-2019",
    "3.3": "adds drb/drbversion (2019-)",
    "4.02": "current ZTF schema (fp_hists not used)",
}

_ZTF_BANDS = {1: "g", 2: "r", 3: "i"}


def recognise(record: Mapping[str, Any], writer: Mapping[str, Any]) -> str | None:
    """Schema version of a ZTF record, or None when the record is not of ZTF's layout.

    Parameters
    ----------
    record : mapping
        A decoded alert (or a row of a Fink Parquet file).
    writer : mapping
        The Avro writer schema (``{}`` when unknown).

    Returns
    -------
    str or None
        One of :data:`ZTF_SCHEMA_VERSIONS`; None if ``record`` is no ZTF alert.

    Raises
    ------
    UnknownSchema
        A ZTF layout with a version not in :data:`ZTF_SCHEMA_VERSIONS`.

    Examples
    --------
    >>> recognise({"candidate": {}, "objectId": "ZTF18abc"}, {"version": "1.8"})
    '1.8'
    >>> recognise({"diaSource": {}}, {}) is None
    True
    """
    if "candidate" not in record or "objectId" not in record:
        return None
    version = record.get("schemavsn") or writer.get("version")
    version = None if version is None else str(version)
    if version not in ZTF_SCHEMA_VERSIONS:
        raise UnknownSchema("ztf", version)
    return version


def _clean(value: Any) -> float:
    """ZTF float with its -999 'none' convention turned into NaN."""
    out = num(value)
    return math.nan if out == -999.0 else out


def _negative(isdiffpos: Any) -> bool:
    return str(isdiffpos) in ("f", "0")


def flatten_record(rec: Mapping[str, Any], version: str) -> dict[str, Any]:
    """One ZTF record as a row dict of the alert model.

    Parameters
    ----------
    rec : mapping
        Decoded ZTF alert (``candidate``, ``prv_candidates``...).
    version : str
        Its schema version (:func:`recognise`).

    Returns
    -------
    dict
        Model column -> value (``obs_time`` excepted, see
        :func:`fink_core.rows.model_frame`), the ``ztf_*`` promoted columns included.
    """
    cand = rec["candidate"]
    candid = rec.get("candid", cand.get("candid"))
    obs_jd = float(cand["jd"])
    ra, dec = num(cand.get("ra")), num(cand.get("dec"))
    band = _ZTF_BANDS.get(int(cand["fid"]))
    points: list[HistPoint] = []
    for prv in rec.get("prv_candidates") or ():
        jd = prv.get("jd")
        if jd is None or (prv.get("candid") is not None and prv.get("candid") == candid):
            continue
        pband = _ZTF_BANDS.get(int(prv["fid"])) if prv.get("fid") is not None else None
        if prv.get("candid") is None or prv.get("magpsf") is None:
            points.append((float(jd), num(prv.get("diffmaglim")), math.nan, str(pband), True,
                           False))
        else:
            points.append(
                (
                    float(jd),
                    num(prv["magpsf"]),
                    num(prv.get("sigmapsf")),
                    str(pband),
                    False,
                    _negative(prv.get("isdiffpos")),
                )
            )
    is_negative = _negative(cand.get("isdiffpos"))
    points.append(
        (obs_jd, num(cand.get("magpsf")), num(cand.get("sigmapsf")), str(band), False, is_negative)
    )
    row: dict[str, Any] = {
        "alert_id": str(candid),
        "object_id": rec.get("objectId"),
        "survey": "ztf",
        "schema_version": version,
        "obs_jd": obs_jd,
        "ra": ra,
        "dec": dec,
        "bad_coordinates": bad_coordinates(ra, dec),
        "mag": num(cand.get("magpsf")),
        "mag_err": num(cand.get("sigmapsf")),
        "band": band,
        "is_negative": is_negative,
        "reliability": num(cand.get("rb")),
        "survey_fields": survey_fields_json(rec),
    }
    row.update(summarise(points, obs_jd))
    for column, (field, typ) in model.ZTF_PROMOTED.items():
        value = cand.get(field)
        if pa.types.is_string(typ):
            row[column] = None if value in (None, "null") else str(value)
        elif pa.types.is_integer(typ):
            row[column] = None if value is None or value == -999 else int(value)
        else:
            row[column] = _clean(value)
    return row


__all__ = ["ZTF_SCHEMA_VERSIONS", "flatten_record", "recognise"]
