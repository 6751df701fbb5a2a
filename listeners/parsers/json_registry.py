"""Which parser reads which JSON notice: explicit tables, no discovery.

Dispatch in :func:`parse_json`:

1. by Kafka **topic** when the transport knows it (:data:`TOPIC_PARSERS`);
2. else by the GCN **``$schema``** URL of the message, version stripped
   (:data:`SCHEMA_PARSERS`) — files replayed from disk have no topic; a
   ``gcn/notices/...`` schema in no table (a mission GCN added since) is read by the
   table's fallback, :data:`GENERIC_PARSER` (the core-schema rules of
   :mod:`~listeners.parsers.json_gcn_generic`), unless it is a known non-trigger or
   a core schema component (``gcn/notices/core/...``), refused with its reason;
3. else by **shape**: ``superevent_id`` + ``alert_type`` is an ``igwn.gwalert``
   message (LVK sends no ``$schema``);
4. else :class:`~mm_broker.core.errors.UnsupportedNoticeType`, naming the topic,
   schema or keys seen. Known non-trigger messages (heartbeats, optical reports,
   monitoring of known sources, schema components) are refused the same way, with
   the reason from :data:`NOT_TRIGGERS`.

The payload is decoded once, here (:func:`~listeners.parsers.json_common.load_json`,
with its size, depth, NUL, duplicate-key and non-finite-number guards); the tables
hold each mission's step after decoding, a pure function ``document -> Notice``
(``json_lvk.from_doc``, ...). Each has a ``bytes -> Notice`` twin in its module
(``json_lvk.parse``, ...) that decodes and calls it.

Examples
--------
>>> notice = parse_json(b'{"alert_type": "RETRACTION", "time_created": "2026-06-05T12:10:57Z",'
...                     b' "superevent_id": "MS260605l", "event": null}')
>>> notice.event_id, notice.retraction
('LVK:MS260605l', True)
>>> try:
...     parse_json(b'{}', topic="gcn.heartbeat")
... except UnsupportedNoticeType as exc:
...     print(exc)
unsupported_type: topic 'gcn.heartbeat': GCN heartbeat, not a notice
"""

from __future__ import annotations

from collections.abc import Callable

import listeners.parsers.json_einstein_probe as json_einstein_probe
import listeners.parsers.json_gcn_generic as json_gcn_generic
import listeners.parsers.json_gcn_unified as json_gcn_unified
import listeners.parsers.json_icecube as json_icecube
import listeners.parsers.json_km3net as json_km3net
import listeners.parsers.json_lvk as json_lvk
import listeners.parsers.json_superk as json_superk
import listeners.parsers.json_swift as json_swift
from listeners.parsers.json_common import JSONObject, load_json
from listeners.parsers.json_values import doc_schema_path
from mm_broker.core.errors import UnsupportedNoticeType
from mm_broker.core.models import Notice

#: A mission parser: the document decoded by :func:`load_json` to a Notice (or a
#: NoticeError).
Parser = Callable[[JSONObject], Notice]

_ICECUBE_LVK = json_icecube.lvk_nu_track_search_from_doc

#: Kafka topic -> parser.
TOPIC_PARSERS: dict[str, Parser] = {
    "igwn.gwalert": json_lvk.from_doc,
    "gcn.notices.einstein_probe.wxt.alert": json_einstein_probe.from_doc,
    "gcn.notices.icecube.lvk_nu_track_search": json_icecube.lvk_nu_track_search_from_doc,
    "gcn.notices.icecube.gold_bronze_track_alerts": json_icecube.gold_bronze_from_doc,
    "gcn.notices.swift.bat.guano": json_swift.guano_from_doc,
    "gcn.notices.superk.sn_alert": json_superk.from_doc,
    # KM3NeT topics are announced, not confirmed: this is GCN's naming convention.
    "gcn.notices.km3net.alert": json_km3net.from_doc,
    "gcn.notices.maxi.gsc.known": json_gcn_unified.maxi_gsc_from_doc,
    "gcn.notices.maxi.gsc.unknown": json_gcn_unified.maxi_gsc_from_doc,
}

#: GCN unified ``$schema`` path (URL without ``https://gcn.nasa.gov/schema/<version>/``)
#: -> parser.
SCHEMA_PARSERS: dict[str, Parser] = {
    "gcn/notices/einstein_probe/wxt/alert.schema.json": json_einstein_probe.from_doc,
    "gcn/notices/icecube/lvk_nu_track_search.schema.json": _ICECUBE_LVK,
    "gcn/notices/icecube/LvkNuTrackSearch.schema.json": _ICECUBE_LVK,
    "gcn/notices/icecube/LVK_nu_track_search.schema.json": _ICECUBE_LVK,
    "gcn/notices/icecube/gold_bronze_track_alerts.schema.json": json_icecube.gold_bronze_from_doc,
    "gcn/notices/icecube/single_neutrino_alerts.schema.json": json_icecube.gold_bronze_from_doc,
    "gcn/notices/icecube/GoldAndBronze.schema.json": json_icecube.gold_bronze_from_doc,
    "gcn/notices/swift/bat/Guano.schema.json": json_swift.guano_from_doc,
    "gcn/notices/superk/sn_alert.schema.json": json_superk.from_doc,
    "gcn/notices/km3net/alert.schema.json": json_km3net.from_doc,
    "gcn/notices/km3net/km3net_alert.schema.json": json_km3net.from_doc,
    "gcn/notices/maxi/gsc.known.schema.json": json_gcn_unified.maxi_gsc_from_doc,
    "gcn/notices/maxi/gsc.unknown.schema.json": json_gcn_unified.maxi_gsc_from_doc,
    "gcn/notices/fermi/gbm/trigger.schema.json": json_gcn_unified.fermi_gbm_from_doc,
    "gcn/notices/svom/trigger.schema.json": json_gcn_unified.svom_trigger_from_doc,
}

#: Topics and schema paths that are well-formed GCN messages but not triggers.
NOT_TRIGGERS: dict[str, str] = {
    "gcn.heartbeat": "GCN heartbeat, not a notice",
    "gcn/notices/boom/alert.schema.json": (
        "BOOM optical-survey report (ZTF/LSST objects matched to GCN events), not a trigger"
    ),
    "gcn/notices/fermi/lat/flare.schema.json": (
        "Fermi-LAT flare of a known gamma-ray source (monitoring), not a GW/GRB/NU/X trigger"
    ),
}

#: Schema paths under this prefix are building blocks of the unified schema.
CORE_SCHEMA_PREFIX = "gcn/notices/core/"

#: The fallback of :data:`SCHEMA_PARSERS` for any other schema under this prefix.
GENERIC_PREFIX = json_gcn_generic.NOTICES_PREFIX

#: Parser of a ``gcn/notices/`` schema that no table names (mission parsers win).
GENERIC_PARSER: Parser = json_gcn_generic.from_doc

#: Number of top-level keys named in an "unrecognised shape" message.
_KEYS_SHOWN = 8


def _refuse(what: str, key: str) -> UnsupportedNoticeType:
    if key in NOT_TRIGGERS:
        return UnsupportedNoticeType(f"{what} {key!r}: {NOT_TRIGGERS[key]}")
    if key.startswith(CORE_SCHEMA_PREFIX):
        return UnsupportedNoticeType(f"{what} {key!r}: a core schema component, not a notice")
    return UnsupportedNoticeType(f"no JSON parser for {what} {key!r}")


def parser_for_topic(topic: str) -> Parser:
    """The parser registered for a Kafka topic.

    Raises
    ------
    UnsupportedNoticeType
        No parser for that topic.
    """
    try:
        return TOPIC_PARSERS[topic]
    except KeyError:
        raise _refuse("topic", topic) from None


def schema_parser(path: str) -> Parser:
    """The parser of a ``$schema`` path: its table entry, else the generic core-schema
    parser for ``gcn/notices/`` schemas that are neither non-triggers nor core parts.

    Raises
    ------
    UnsupportedNoticeType
        A non-trigger, a core schema component, or a schema outside ``gcn/notices/``.

    Examples
    --------
    >>> schema_parser("gcn/notices/chime/frb.schema.json") is GENERIC_PARSER
    True
    """
    if path in SCHEMA_PARSERS:
        return SCHEMA_PARSERS[path]
    if path in NOT_TRIGGERS or path.startswith(CORE_SCHEMA_PREFIX) or \
            not path.startswith(GENERIC_PREFIX):
        raise _refuse("$schema", path)
    return GENERIC_PARSER


def parse_json(payload: bytes, topic: str | None = None) -> Notice:
    """Parse one JSON notice with the parser its topic, ``$schema`` or shape selects.

    Parameters
    ----------
    payload : bytes
        The raw message.
    topic : str, optional
        Kafka topic it came from; ``None`` for files replayed from disk.

    Returns
    -------
    Notice

    Raises
    ------
    NoticeError
        :class:`UnsupportedNoticeType` when nothing selects a parser, or whatever
        named error the parser raises. Nothing else escapes.
    """
    if topic is not None and topic in NOT_TRIGGERS:
        raise _refuse("topic", topic)
    doc = load_json(payload)  # the one decoding of the payload
    if topic is not None and topic in TOPIC_PARSERS:
        return TOPIC_PARSERS[topic](doc)
    # A topic we have no parser for (a new GCN topic, a test topic) or none at all:
    # the message's own $schema or shape decides.
    path = doc_schema_path(doc)
    if path is not None:
        return schema_parser(path)(doc)
    if json_lvk.looks_like_gwalert(doc):
        return json_lvk.from_doc(doc)
    keys = sorted(doc)
    shown = ", ".join(k[:40] for k in keys[:_KEYS_SHOWN]) + (
        ", ..." if len(keys) > _KEYS_SHOWN else ""
    )
    raise UnsupportedNoticeType(
        f"no topic, no $schema and an unrecognised JSON shape (keys: {shown or 'none'})"
    )
