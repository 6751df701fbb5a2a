"""Which parser reads which JSON notice: explicit tables, no discovery.

Dispatch in :func:`parse_json`:

1. by Kafka **topic** when the transport knows it (:data:`TOPIC_PARSERS`);
2. else by the GCN **``$schema``** URL of the message, version stripped
   (:data:`SCHEMA_PARSERS`) — files replayed from disk have no topic;
3. else by **shape**: ``superevent_id`` + ``alert_type`` is an ``igwn.gwalert``
   message (LVK sends no ``$schema``);
4. else :class:`~mm_broker.core.errors.UnsupportedNoticeType`, naming the topic,
   schema or keys seen. Known non-trigger messages (heartbeats, optical reports,
   monitoring of known sources, schema components) are refused the same way, with
   the reason from :data:`NOT_TRIGGERS`.

Every parser is a pure function ``bytes -> Notice``.

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

from listeners.parsers import (
    json_einstein_probe,
    json_gcn_unified,
    json_icecube,
    json_km3net,
    json_lvk,
    json_superk,
    json_swift,
)
from listeners.parsers.json_common import doc_schema_path, load_json
from mm_broker.core.errors import UnsupportedNoticeType
from mm_broker.core.models import Notice

#: A parser: raw message bytes to a Notice (or a NoticeError).
Parser = Callable[[bytes], Notice]

#: Kafka topic -> parser.
TOPIC_PARSERS: dict[str, Parser] = {
    "igwn.gwalert": json_lvk.parse,
    "gcn.notices.einstein_probe.wxt.alert": json_einstein_probe.parse,
    "gcn.notices.icecube.lvk_nu_track_search": json_icecube.parse_lvk_nu_track_search,
    "gcn.notices.icecube.gold_bronze_track_alerts": json_icecube.parse_gold_bronze,
    "gcn.notices.swift.bat.guano": json_swift.parse_guano,
    "gcn.notices.superk.sn_alert": json_superk.parse,
    # KM3NeT topics are announced, not confirmed: this is GCN's naming convention.
    "gcn.notices.km3net.alert": json_km3net.parse,
    "gcn.notices.maxi.gsc.known": json_gcn_unified.parse_maxi_gsc,
    "gcn.notices.maxi.gsc.unknown": json_gcn_unified.parse_maxi_gsc,
}

#: GCN unified ``$schema`` path (URL without ``https://gcn.nasa.gov/schema/<version>/``)
#: -> parser.
SCHEMA_PARSERS: dict[str, Parser] = {
    "gcn/notices/einstein_probe/wxt/alert.schema.json": json_einstein_probe.parse,
    "gcn/notices/icecube/lvk_nu_track_search.schema.json": json_icecube.parse_lvk_nu_track_search,
    "gcn/notices/icecube/LvkNuTrackSearch.schema.json": json_icecube.parse_lvk_nu_track_search,
    "gcn/notices/icecube/LVK_nu_track_search.schema.json": json_icecube.parse_lvk_nu_track_search,
    "gcn/notices/icecube/gold_bronze_track_alerts.schema.json": json_icecube.parse_gold_bronze,
    "gcn/notices/icecube/single_neutrino_alerts.schema.json": json_icecube.parse_gold_bronze,
    "gcn/notices/icecube/GoldAndBronze.schema.json": json_icecube.parse_gold_bronze,
    "gcn/notices/swift/bat/Guano.schema.json": json_swift.parse_guano,
    "gcn/notices/superk/sn_alert.schema.json": json_superk.parse,
    "gcn/notices/km3net/alert.schema.json": json_km3net.parse,
    "gcn/notices/km3net/km3net_alert.schema.json": json_km3net.parse,
    "gcn/notices/maxi/gsc.known.schema.json": json_gcn_unified.parse_maxi_gsc,
    "gcn/notices/maxi/gsc.unknown.schema.json": json_gcn_unified.parse_maxi_gsc,
    "gcn/notices/fermi/gbm/trigger.schema.json": json_gcn_unified.parse_fermi_gbm,
    "gcn/notices/svom/trigger.schema.json": json_gcn_unified.parse_svom_trigger,
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
    if topic is not None and topic in TOPIC_PARSERS:
        return TOPIC_PARSERS[topic](payload)
    if topic is not None and topic in NOT_TRIGGERS:
        raise _refuse("topic", topic)
    # A topic we have no parser for (a new GCN topic, a test topic) or none at all:
    # the message's own $schema or shape decides.
    doc = load_json(payload)
    path = doc_schema_path(doc)
    if path is not None:
        parser = SCHEMA_PARSERS.get(path)
        if parser is None:
            raise _refuse("$schema", path)
        return parser(payload)
    if json_lvk.looks_like_gwalert(doc):
        return json_lvk.parse(payload)
    keys = sorted(doc)
    shown = ", ".join(k[:40] for k in keys[:_KEYS_SHOWN]) + (
        ", ..." if len(keys) > _KEYS_SHOWN else ""
    )
    raise UnsupportedNoticeType(
        f"no topic, no $schema and an unrecognised JSON shape (keys: {shown or 'none'})"
    )
