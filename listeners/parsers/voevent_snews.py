"""SNEWS supernova neutrino VOEvents (GCN classic, stream ``ivo://nasa.gsfc.gcn/SNEWS``).

Facts used (table below):

* Packet type 149 (``SNEWS``); ``event_id = "SNEWS:<TrigID>"``; ``version`` =
  ``Pkt_Ser_Num``.
* Decision on the SNEWS "position": SNEWS alerts are coincidences of MeV-neutrino
  bursts; they normally have no direction and say so with ``RADec_valid`` false and
  ``Error2Radius`` 360.  Such a notice raises :class:`NoPosition` ("no direction:
  RADec_valid=false, Error2Radius 360 deg covers the whole sky"), not
  :class:`BadCoordinates`: the values are the mission's statement that there is no
  localisation, not corrupt data.  A notice with ``RADec_valid`` true and a radius
  below 180 deg would be read as a 90 % circle (convention ``generic``).
* ``Test`` (group ``Trigger_ID``) marks a test alert; ``Retraction`` a retraction.
"""

from __future__ import annotations

from listeners.parsers.voevent import VOEvent, load_voevent
from listeners.parsers.voevent_common import (
    Field,
    PacketSpec,
    build_notice,
    gcn_event_id,
    gcn_stage_version,
    read_fields,
    spec_for,
)
from mm_broker.core.errors import NoPosition
from mm_broker.core.models import Messenger, Notice

__all__ = ["MISSION", "PACKETS", "from_voevent", "parse_snews"]

MISSION = "SNEWS"

# fmt: off
#: SNEWS packet types handled here.
PACKETS: dict[int, PacketSpec] = {
    149: PacketSpec(
        "SNEWS", "SNEWS", Messenger.NU, containment=0.9, convention="generic", id_prefix="SNEWS",
    ),
}
# fmt: on

_SIGNIFICANCE: dict[str, Field] = {
    "event_signal_counts": ("Event_Signal", None, "float"),
    "subtype": ("SubType", "Trigger_ID", "str"),
}

_EXTRA: dict[str, Field] = {
    "packet_type": ("Packet_Type", None, "int"),
    "pkt_ser_num": ("Pkt_Ser_Num", None, "int"),
    "trig_id": ("TrigID", None, "int"),
    "radec_valid": ("RADec_valid", "Trigger_ID", "bool"),
}


def from_voevent(event: VOEvent) -> Notice:
    """Notice from a parsed SNEWS VOEvent (see the module documentation).

    Raises
    ------
    UnsupportedNoticeType, SchemaError, NoPosition, BadCoordinates
    """
    _, spec = spec_for(PACKETS, event)
    event_id = gcn_event_id(event, spec)
    retraction = bool(event.bool_value("Retraction", "Trigger_ID"))
    if not retraction and event.bool_value("RADec_valid", "Trigger_ID") is False:
        position = event.position()
        radius = None if position is None else position.error_radius
        raise NoPosition(
            f"{event_id} {spec.notice_type}: no direction: RADec_valid=false"
            + (f", Error2Radius {radius:g} deg covers the whole sky" if radius is not None else "")
        )
    return build_notice(
        event,
        spec,
        mission=MISSION,
        event_id=event_id,
        version=gcn_stage_version(event, spec),
        test=bool(event.bool_value("Test", "Trigger_ID")),
        retraction=retraction,
        significance=read_fields(event, _SIGNIFICANCE),
        extra=read_fields(event, _EXTRA),
    )


def parse_snews(payload: bytes, *, strict_namespace: bool = False) -> Notice:
    """Parse a SNEWS VOEvent payload into a :class:`Notice`."""
    return from_voevent(load_voevent(payload, strict_namespace=strict_namespace))
