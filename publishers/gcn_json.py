"""Our counterpart candidates in GCN's own JSON form (``mm.gcn.counterparts``).

BOOM publishes its optical counterparts to GCN as ``gcn.notices.boom.alert``, a JSON
schema built from GCN's core schema. We publish ours the same way, so a user of
gcn-kafka reads them with the tools they already have: one JSON message per
counterpart record, valid against our schema file
``publishers/schemas/gcn-counterpart-v1.schema.json`` (JSON Schema draft 2020-12),
which reuses the core schema's field names (``$schema``, ``mission``, ``instrument``,
``messenger``, ``alert_datetime``, ``alert_type``, ``alert_tense``, ``id``,
``record_number``, ``trigger_time``, ``ra``, ``dec``, ``ra_dec_error``,
``containment_probability``, ``systematic_included``) and adds BOOM's ``data``
(targets and photometry) and our association figures.

A withdrawn record becomes ``alert_type = "retraction"``. Every message is validated
before it is sent (:func:`encode` raises :class:`jsonschema.ValidationError`
otherwise). Kafka key: the Avro counterpart's (``event_id|region_version|alert_id``),
so the outbox that guards the Avro record guards this message too.

Examples
--------
>>> schema()["$id"] == SCHEMA_ID
True
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

__all__ = ["SCHEMA_FILE", "SCHEMA_ID", "encode", "message", "schema", "validate"]

#: Our JSON schema file in ``publishers/schemas/``.
SCHEMA_FILE = "gcn-counterpart-v1.schema.json"

#: Its ``$id`` (every message's ``$schema``).
SCHEMA_ID = "https://mm-broker.local/schema/gcn/notices/mm_broker/counterpart.schema.json"

#: Typical astrometric error of each survey's positions, degrees, with its containment:
#: ZTF ~0.1 arcsec (Masci et al. 2019), Rubin/LSST ~0.05 arcsec (design), 1-sigma.
SURVEY_ERROR_DEG: dict[str, float] = {"ZTF": 0.1 / 3600.0, "LSST": 0.05 / 3600.0}
_DEFAULT_ERROR_DEG = 0.5 / 3600.0
_CONTAINMENT = 0.6827

_MJD0 = datetime(1858, 11, 17, tzinfo=UTC)


@cache
def schema() -> dict[str, Any]:
    """Our JSON schema (parsed once)."""
    text = resources.files("publishers").joinpath("schemas", SCHEMA_FILE).read_text("utf-8")
    out: dict[str, Any] = json.loads(text)
    return out


@cache
def _validator() -> jsonschema.Draft202012Validator:
    s = schema()
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(
        s, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def validate(msg: Mapping[str, Any]) -> None:
    """Raise :class:`jsonschema.ValidationError` unless ``msg`` is valid."""
    _validator().validate(dict(msg))


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def _iso(value: Any) -> str:
    return _time(value).isoformat().replace("+00:00", "Z")


def _opt(record: Mapping[str, Any], name: str) -> Any:
    v = record.get(name)
    return None if v is None else v


def message(record: Mapping[str, Any], issued: datetime) -> dict[str, Any]:
    """The GCN-style message of one counterpart record (candidate or withdrawn).

    Parameters
    ----------
    record : mapping
        A counterpart record (fields of ``counterpart-vN.avsc``).
    issued : datetime
        ``alert_datetime`` (the replay's clock, or now).
    """
    survey = str(record["survey"])
    alert_time = _time(record["alert_time"])
    region_version = int(record["region_version"])
    withdrawn = record["status"] == "withdrawn"
    cls = record.get("classification")
    target: dict[str, Any] = {"name": str(record["object_id"]), "ra": float(record["ra"]),
                              "dec": float(record["dec"]),
                              "gcn_crossmatch": [str(record["event_id"])]}
    if cls:
        target["classifications"] = [{"classification": str(cls), "probability": None}]
    photometry: list[dict[str, Any]] = []
    if record.get("mag") is not None or record.get("band") is not None:
        photometry.append({
            "target_name": str(record["object_id"]),
            "date_obs": (alert_time - _MJD0).total_seconds() / 86400.0,
            "instrument": survey, "bandpass": _opt(record, "band"),
            "brightness": _opt(record, "mag"), "brightness_error": _opt(record, "mag_err"),
            "unit": "AB mag"})
    association = {
        "event_id": str(record["event_id"]), "messenger": str(record["messenger"]),
        "mission": str(record["mission"]), "instrument": str(record["instrument"]),
        "notice_version": int(record["notice_version"]), "region_version": region_version,
        "status": str(record["status"]), "event_trigger_time": _iso(record["trigger_time"]),
        "delta_t_s": float(record["delta_t_s"]), "rank": int(record["rank"]),
    }
    for name in ("separation_deg", "separation_ratio", "credible_level", "prob_density_deg2",
                 "p_chance", "newness", "classification", "trigger_ivorn", "notice_ivorn"):
        if name in record:
            association[name] = record[name]
    return {
        "$schema": SCHEMA_ID,
        "mission": "mm_broker",
        "instrument": survey,
        "messenger": "EM",
        "alert_datetime": _iso(issued),
        "alert_type": "retraction" if withdrawn else "initial" if region_version <= 1
        else "update",
        "alert_tense": "current" if record["role"] == "observation" else "test",
        "id": [str(record["object_id"]), str(record["alert_id"]), str(record["event_id"])],
        "record_number": region_version,
        "trigger_time": _iso(alert_time),
        "ra": float(record["ra"]),
        "dec": float(record["dec"]),
        "ra_dec_error": SURVEY_ERROR_DEG.get(survey.upper(), _DEFAULT_ERROR_DEG),
        "containment_probability": _CONTAINMENT,
        "systematic_included": False,
        "data": {"targets": [target], "photometry": photometry},
        "association": association,
    }


def encode(record: Mapping[str, Any], issued: datetime) -> tuple[str, str, bytes]:
    """``(role, key, JSON bytes)`` of a counterpart record's message, validated.

    Raises
    ------
    jsonschema.ValidationError
        The message does not satisfy our schema.
    """
    msg = message(record, issued)
    validate(msg)
    key = f"{record['event_id']}|{record['region_version']}|{record['alert_id']}"
    return str(record["role"]), key, json.dumps(msg, sort_keys=True).encode()
