"""KM3NeT neutrino VOEvents (stream ``ivo://KM3NeT_Neutrino``).

KM3NeT writes VOEvents with voevent-parse and without a GCN ``Packet_Type``; the
fields follow the GCN unified schema (``Alert_Type``, ``Alert_Tense``,
``record_number``).  Facts used (table below):

* ``event_id = "KM3NeT:<Event_Name>"`` (e.g. ``KM3-240901A``).
* ``notice_type`` from ``Alert_Type`` (initial, update, retraction).
* ``version`` = ``record_number``.
* The ``WhereWhen`` radius is ``src_error_90``: 90 % containment (convention ``generic``).
* ``Alert_Tense`` ``test`` or ``planned`` -> role TEST.
* ``FAR`` is per year; ``significance`` gives it per year and in Hz.
"""

from __future__ import annotations

import dataclasses
import re

from listeners.parsers.voevent import VOEvent, load_voevent
from listeners.parsers.voevent_common import Field, PacketSpec, build_notice, read_fields
from mm_broker.core.errors import SchemaError, UnsupportedNoticeType
from mm_broker.core.models import Messenger, Notice

__all__ = ["ALERT_TYPES", "MISSION", "from_voevent", "parse_km3net"]

MISSION = "KM3NeT"
SECONDS_PER_YEAR = 365.25 * 86400.0

# fmt: off
#: KM3NeT alert types handled here (the packets have no GCN Packet_Type).
ALERT_TYPES: dict[str, PacketSpec] = {
    "initial": PacketSpec(
        "KM3NET_INITIAL", "KM3NeT", Messenger.NU, containment=0.9, convention="generic"
    ),
    "update": PacketSpec(
        "KM3NET_UPDATE", "KM3NeT", Messenger.NU, containment=0.9, convention="generic"
    ),
    "retraction": PacketSpec("KM3NET_RETRACTION", "KM3NeT", Messenger.NU, retraction=True),
}
# fmt: on

#: ``Alert_Tense`` values that make a notice a test.
TEST_TENSES = frozenset({"test", "planned"})

_EVENT_NAME = re.compile(r"^KM3-\d{6}[A-Z]+$")

_SIGNIFICANCE: dict[str, Field] = {
    "far_per_year": ("FAR", None, "float"),
    "n_events": ("N_events", None, "int"),
    "potential_counterpart": ("potential_counterpart", None, "bool"),
}

_EXTRA: dict[str, Field] = {
    "trig_id": ("TrigID", None, "int"),
    "pipeline": ("Pipeline", None, "str"),
    "topology": ("alert_topology", None, "str"),
    "alert_tense": ("Alert_Tense", None, "str"),
    "src_error_90_deg": ("src_error_90", None, "float"),
    "src_error_50_deg": ("src_error_50", None, "float"),
    "healpix_url": ("healpix_url", None, "str"),
}


def from_voevent(event: VOEvent) -> Notice:
    """Notice from a parsed KM3NeT VOEvent (see the module documentation).

    Raises
    ------
    UnsupportedNoticeType, SchemaError, NoPosition, BadCoordinates
    """
    alert_type = (event.value("Alert_Type") or "").strip().lower()
    spec = ALERT_TYPES.get(alert_type)
    if spec is None:
        raise UnsupportedNoticeType(
            f"VOEvent stream {event.stream} Alert_Type {alert_type!r} is not handled "
            f"(known: {sorted(ALERT_TYPES)})"
        )
    name = event.require("Event_Name")
    if not _EVENT_NAME.match(name):
        raise SchemaError(f"{event.ivorn}: Event_Name {name!r} is not a KM3NeT alert name")
    record = event.require_int("record_number")
    if record < 0:
        raise SchemaError(f"{event.ivorn}: negative record_number {record}")
    instrument = event.value("Instrument")
    if instrument:
        spec = dataclasses.replace(spec, instrument=instrument)
    significance = read_fields(event, _SIGNIFICANCE)
    if "far_per_year" in significance:
        significance["far_hz"] = significance["far_per_year"] / SECONDS_PER_YEAR
    tense = (event.value("Alert_Tense") or "current").strip().lower()
    return build_notice(
        event,
        spec,
        mission=MISSION,
        event_id=f"KM3NeT:{name}",
        version=record,
        test=tense in TEST_TENSES,
        significance=significance,
        extra=read_fields(event, _EXTRA),
    )


def parse_km3net(payload: bytes, *, strict_namespace: bool = False) -> Notice:
    """Parse a KM3NeT VOEvent payload into a :class:`Notice`."""
    return from_voevent(load_voevent(payload, strict_namespace=strict_namespace))
