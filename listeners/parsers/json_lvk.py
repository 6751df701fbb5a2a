"""LIGO/Virgo/KAGRA alerts (``igwn.gwalert``, JSON), the only live GW stream.

Shape (LVK user guide, "Alert contents")::

    {"alert_type": "PRELIMINARY" | "INITIAL" | "UPDATE" | "RETRACTION" (| "EARLYWARNING"),
     "time_created": ISO time, "superevent_id": "S230518h", "urls": {"gracedb": ...},
     "event": {"time", "far", "significant", "instruments", "group", "pipeline",
               "search", "properties", "classification", "duration",
               "central_frequency", "skymap": base64 multi-order FITS} | null,
     "external_coinc": {"gcn_notice_id", "ivorn", "observatory", "search",
                        "time_difference", "time_coincidence_far",
                        "time_sky_position_coincidence_far",
                        "combined_skymap": base64} | null}

Rules
-----
event id
    ``LVK:<superevent_id>``; the id must look like ``[M|T]S<yymmdd><letters>``.
role
    ``Role.TEST`` when the superevent id starts with ``M`` (mock, MDC) or ``T``
    (test), when ``event.search`` is ``MDC``, or when an ``alert_tense`` key (not sent
    by LVK today, honoured if it appears) is other than ``current``; else observation.
version
    From the notice's own fields: ``epoch_seconds(time_created) * 10 + rank``, rank =
    0 EARLYWARNING, 1 PRELIMINARY, 2 INITIAL, 3 UPDATE, 4 RETRACTION. A later notice
    has a higher version; in the same second, the alert type order decides. (Two
    notices of the same type in the same second get the same version.) The last digit
    is the alert type, e.g. S230518h INITIAL of 2023-05-18T16:07:18Z -> 16844260382.
trigger time
    ``event.time``; a retraction has no event: its ``time_created`` stands in and
    ``extra["trigger_time_source"]`` says so.
issue time
    ``time_created``.
localisation
    :class:`~mm_broker.core.models.SkyMap` with the decoded bytes of ``event.skymap``
    (uncompressed multi-order FITS today; gzip is accepted); ``None`` for a retraction.
    An ``external_coinc.combined_skymap`` (GW+GRB map) is decoded to check it, counted
    in ``extra``, and not used as the localisation: the GW-only map does not depend
    on the GRB association being real. The raw journal keeps both maps.
significance
    ``far_hz``, ``significant``, ``classification``, ``properties`` and, with an
    external coincidence, ``external_coinc_time_far_hz`` and
    ``external_coinc_time_sky_far_hz``.
instrument
    The detectors joined with commas (``"H1,L1"``); ``"LVK"`` for a retraction,
    which names none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from listeners.parsers.json_common import (
    JSONObject,
    has,
    load_json,
    number_map,
    opt_bool,
    opt_int,
    opt_number,
    opt_obj,
    opt_str,
    opt_str_list,
    req_number,
    req_obj,
    req_str,
)
from listeners.parsers.json_values import (
    EPOCH,
    decode_fits_base64,
    epoch_seconds,
    format_time,
    parse_time,
)
from mm_broker.core.errors import SchemaError
from mm_broker.core.models import Messenger, Notice, Role, SkyMap

#: Kafka topic of LVK alerts.
TOPIC = "igwn.gwalert"

#: Alert types in the order LVK issues them (the rank in the version number).
ALERT_TYPE_RANK: dict[str, int] = {
    "EARLYWARNING": 0,
    "PRELIMINARY": 1,
    "INITIAL": 2,
    "UPDATE": 3,
    "RETRACTION": 4,
}

#: Superevent id prefixes of mock (``M``, MDC) and test (``T``) events.
TEST_PREFIXES = ("M", "T")

#: ``event.search`` values that only occur for simulated events.
MOCK_SEARCHES = frozenset({"MDC"})

#: Superevent ids: optional M/T, S, yymmdd, lower-case suffix.
SUPEREVENT_ID = re.compile(r"[MT]?S\d{6}[a-z]{1,4}")

#: Sky map convention for the embedded multi-order maps.
SKYMAP_CONVENTION = "lvk_multiorder"

#: Mission and fallback instrument name.
MISSION = "LVK"


def looks_like_gwalert(doc: Mapping[str, Any]) -> bool:
    """True for a document with the shape of an ``igwn.gwalert`` message."""
    return "superevent_id" in doc and "alert_type" in doc


def version_of(alert_type: str, time_created: datetime) -> int:
    """Version number of an LVK notice from its own fields (see module docstring).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> version_of("INITIAL", datetime(2023, 5, 18, 16, 7, 18, tzinfo=timezone.utc))
    16844260382
    """
    return epoch_seconds(time_created) * 10 + ALERT_TYPE_RANK[alert_type]


def _role(doc: Mapping[str, Any], superevent_id: str, event: Mapping[str, Any] | None) -> Role:
    tense = opt_str(doc, "alert_tense")
    if superevent_id.startswith(TEST_PREFIXES):
        return Role.TEST
    if tense is not None and tense.lower() != "current":
        return Role.TEST
    if event is not None and opt_str(event, "search", "event") in MOCK_SEARCHES:
        return Role.TEST
    return Role.OBSERVATION


def _external_coinc(doc: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``external_coinc`` block: (extra entries, significance entries)."""
    block = opt_obj(doc, "external_coinc")
    if block is None:
        return {}, {}
    ctx = "external_coinc"
    kept: dict[str, Any] = {k: v for k, v in block.items() if k != "combined_skymap"}
    for key in ("ivorn", "observatory", "search"):
        opt_str(block, key, ctx)
    opt_int(block, "gcn_notice_id", ctx, maximum=2**63 - 1)
    opt_number(block, "time_difference", ctx)
    sig: dict[str, Any] = {}
    for key, name in (
        ("time_coincidence_far", "external_coinc_time_far_hz"),
        ("time_sky_position_coincidence_far", "external_coinc_time_sky_far_hz"),
    ):
        value = opt_number(block, key, ctx)
        if value is not None:
            if value < 0:
                raise SchemaError(f"{ctx}.{key} = {value:g} Hz is negative")
            sig[name] = value
    if has(block, "combined_skymap"):
        combined = decode_fits_base64(block["combined_skymap"], "external_coinc.combined_skymap")
        kept["combined_skymap_bytes"] = len(combined)
    return {"external_coinc": kept}, sig


def _event_fields(event: JSONObject) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validated ``event`` block: (significance, extra)."""
    ctx = "event"
    far = req_number(event, "far", ctx)
    if far < 0:
        raise SchemaError(f"event.far = {far:g} Hz is negative")
    sig: dict[str, Any] = {"far_hz": far}
    significant = opt_bool(event, "significant", ctx)
    if significant is not None:
        sig["significant"] = significant
    for key in ("classification", "properties"):
        table = number_map(event, key, ctx)
        if table is not None:
            sig[key] = table
    extra: dict[str, Any] = {}
    for key in ("group", "pipeline", "search"):
        value = opt_str(event, key, ctx)
        if value is not None:
            extra[key] = value
    for key in ("duration", "central_frequency"):
        number = opt_number(event, key, ctx)
        if number is not None:
            extra[key] = number
    return sig, extra


def parse(payload: bytes) -> Notice:
    """Parse an ``igwn.gwalert`` JSON notice.

    Parameters
    ----------
    payload : bytes
        The Kafka message value.

    Returns
    -------
    Notice
        ``event_id="LVK:<superevent_id>"``, ``messenger=GW``; a :class:`SkyMap`
        with the decoded FITS bytes, or ``localisation=None`` for a retraction.

    Raises
    ------
    MalformedPayload
        Not JSON.
    SchemaError
        A missing or mistyped key (``superevent_id``, ``alert_type``, ``time_created``,
        ``event``, ``event.time``, ``event.far``, ``event.skymap``...).
    BadSkyMap
        ``event.skymap`` (or ``external_coinc.combined_skymap``) is not base64 FITS.

    Examples
    --------
    >>> n = parse(b'{"alert_type": "RETRACTION", "time_created": "2018-11-01T23:36:23Z",'
    ...           b' "superevent_id": "MS181101ab", "event": null, "external_coinc": null}')
    >>> n.event_id, n.retraction, n.localisation, n.role.value
    ('LVK:MS181101ab', True, None, 'test')
    """
    return from_doc(load_json(payload))


def from_doc(doc: JSONObject) -> Notice:
    """:func:`parse` after decoding: a document read by :func:`load_json` in.

    The registry calls this with the document it decoded once.
    """
    superevent_id = req_str(doc, "superevent_id").strip()
    if SUPEREVENT_ID.fullmatch(superevent_id) is None:
        raise SchemaError(f"superevent_id {superevent_id[:40]!r} is not an LVK superevent id")
    kind = req_str(doc, "alert_type").strip().upper()
    if kind not in ALERT_TYPE_RANK:
        raise SchemaError(f"alert_type {kind[:40]!r} is not one of {', '.join(ALERT_TYPE_RANK)}")
    if not has(doc, "time_created"):
        raise SchemaError("missing required key 'time_created'")
    created = parse_time(doc["time_created"], "time_created")
    if created < EPOCH:
        raise SchemaError(f"time_created {format_time(created)} is before 1970")
    retraction = kind == "RETRACTION"
    urls = opt_obj(doc, "urls")
    extra: dict[str, Any] = {"superevent_id": superevent_id, "alert_type": kind}
    if urls is not None:
        extra["urls"] = urls
    coinc_extra, coinc_sig = _external_coinc(doc)
    extra.update(coinc_extra)

    event = opt_obj(doc, "event")
    significance: dict[str, Any] = {}
    if retraction:
        trigger_time = created
        extra["trigger_time_source"] = "time_created (a retraction carries no event time)"
        instrument = MISSION
        localisation = None
    else:
        if event is None:
            raise SchemaError(f"missing required key 'event' (null in a {kind} alert)")
        event = req_obj(doc, "event")
        if not has(event, "time"):
            raise SchemaError("missing required key 'event.time'")
        trigger_time = parse_time(event["time"], "time", "event")
        significance, event_extra = _event_fields(event)
        extra.update(event_extra)
        instruments = opt_str_list(event, "instruments", "event") or []
        extra["instruments"] = instruments
        instrument = ",".join(i.strip() for i in instruments if i.strip()) or MISSION
        skymap = req_str(event, "skymap", "event")
        data = decode_fits_base64(skymap, "event.skymap")
        extra["skymap_bytes"] = len(data)
        localisation = SkyMap(data=data, url=None, convention=SKYMAP_CONVENTION)
    significance.update(coinc_sig)

    return Notice(
        event_id=f"LVK:{superevent_id}",
        messenger=Messenger.GW,
        mission=MISSION,
        instrument=instrument,
        notice_type=kind,
        role=_role(doc, superevent_id, event),
        trigger_time=trigger_time,
        issue_time=created,
        version=version_of(kind, created),
        retraction=retraction,
        localisation=localisation,
        significance=significance,
        extra=extra,
    )
