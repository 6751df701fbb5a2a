"""Konus-Wind VOEvents (GCN classic, stream ``ivo://nasa.gsfc.gcn/KONUS``).

Konus-Wind has no imaging: its only notice, the light curve (packet type 59,
``KONUS_LC``), carries ``Coords_Type`` 0 and the placeholder position 0,0 r=0.  It
therefore raises :class:`NoPosition` (the message names the event,
``"Konus:<TrigID>"``); its time still matters to IPN triangulations that come later
as other notices.
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

__all__ = ["MISSION", "PACKETS", "from_voevent", "parse_konus"]

MISSION = "Konus-Wind"

# fmt: off
#: Konus packet types handled here.
PACKETS: dict[int, PacketSpec] = {
    59: PacketSpec(
        "KONUS_LC", "Konus", Messenger.GRB, id_prefix="Konus",
        no_position="Konus-Wind light curves carry no position (Coords_Type 0, 0,0 r=0)",
    ),
}
# fmt: on


def from_voevent(event: VOEvent) -> Notice:
    """Notice from a parsed Konus-Wind VOEvent (see the module documentation).

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


def parse_konus(payload: bytes, *, strict_namespace: bool = False) -> Notice:
    """Parse a Konus-Wind VOEvent payload into a :class:`Notice`."""
    return from_voevent(load_voevent(payload, strict_namespace=strict_namespace))
