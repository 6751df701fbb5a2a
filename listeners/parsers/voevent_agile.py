"""AGILE VOEvents (GCN classic, stream ``ivo://nasa.gsfc.gcn/AGILE``).

Only the MCAL alert (packet type 105, ``AGILE_MCAL_ALERT``) is registered: it is the
AGILE packet in the shared data.  MCAL is a calorimeter without imaging; its alerts
carry the placeholder position 0,0 r=0, so they raise :class:`NoPosition` (with the
event id in the message).  The SuperAGILE position packets (100-102) are not
registered until their error convention is checked against real packets; they raise
:class:`UnsupportedNoticeType`.  ``event_id = "AGILE:<TrigID>"``.
"""

from __future__ import annotations

from listeners.parsers.voevent import VOEvent, load_voevent
from listeners.parsers.voevent_common import (
    PacketSpec,
    build_notice,
    gcn_event_id,
    gcn_stage_version,
    spec_for,
)
from mm_broker.core.models import Messenger, Notice

__all__ = ["MISSION", "PACKETS", "from_voevent", "parse_agile"]

MISSION = "AGILE"

# fmt: off
#: AGILE packet types handled here.
PACKETS: dict[int, PacketSpec] = {
    105: PacketSpec(
        "AGILE_MCAL_ALERT", "MCAL", Messenger.GRB, id_prefix="AGILE",
        no_position="MCAL alerts are not localised (placeholder position, Error2Radius 0)",
    ),
}
# fmt: on


def from_voevent(event: VOEvent) -> Notice:
    """Notice from a parsed AGILE VOEvent (see the module documentation).

    Raises
    ------
    UnsupportedNoticeType, SchemaError, NoPosition
    """
    _, spec = spec_for(PACKETS, event)
    return build_notice(
        event,
        spec,
        mission=MISSION,
        event_id=gcn_event_id(event, spec),
        version=gcn_stage_version(event, spec),
    )


def parse_agile(payload: bytes, *, strict_namespace: bool = False) -> Notice:
    """Parse an AGILE VOEvent payload into a :class:`Notice`."""
    return from_voevent(load_voevent(payload, strict_namespace=strict_namespace))
