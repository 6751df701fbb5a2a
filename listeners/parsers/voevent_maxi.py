"""MAXI GSC VOEvents (GCN classic, stream ``ivo://nasa.gsfc.gcn/MAXI``).

Facts used (table below):

* Packet types 134 (``MAXI_UNKNOWN``, a transient with no catalogued source),
  135 (``MAXI_KNOWN``, a flare of a catalogued source) and 136 (``MAXI_TEST``).
* ``event_id = "MAXI:<TrigID>"``; ``version`` = ``Pkt_Ser_Num``.
* Errors: GSC radii are 90 % including the systematic error (``maxi_gsc``).
* Messenger X.

No real MAXI VOEvent is in the shared data (only GCN JSON examples), so this parser
is tested on a packet built with voevent-parse in the same GCN classic layout.
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
from mm_broker.core.models import Messenger, Notice

__all__ = ["MISSION", "PACKETS", "from_voevent", "parse_maxi"]

MISSION = "MAXI"
_GSC = "maxi_gsc"

# fmt: off
#: MAXI packet types handled here.
PACKETS: dict[int, PacketSpec] = {
    134: PacketSpec(
        "MAXI_UNKNOWN", "GSC", Messenger.X, containment=0.9, convention=_GSC, id_prefix="MAXI",
    ),
    135: PacketSpec(
        "MAXI_KNOWN", "GSC", Messenger.X, containment=0.9, convention=_GSC, id_prefix="MAXI",
    ),
    136: PacketSpec(
        "MAXI_TEST", "GSC", Messenger.X, test=True,
        containment=0.9, convention=_GSC, id_prefix="MAXI",
    ),
}
# fmt: on

_SIGNIFICANCE: dict[str, Field] = {
    "flux_mcrab": ("Event_Flux", None, "float"),
    "timescale": ("Event_TimeScale", None, "str"),
    "energy_band": ("Event_EBand", None, "str"),
}

_EXTRA: dict[str, Field] = {
    "packet_type": ("Packet_Type", None, "int"),
    "pkt_ser_num": ("Pkt_Ser_Num", None, "int"),
    "trig_id": ("TrigID", None, "int"),
    "source_name": ("Source_Name", None, "str"),
}


def from_voevent(event: VOEvent) -> Notice:
    """Notice from a parsed MAXI VOEvent (see the module documentation).

    Raises
    ------
    UnsupportedNoticeType, SchemaError, NoPosition, BadCoordinates
    """
    _, spec = spec_for(PACKETS, event)
    return build_notice(
        event,
        spec,
        mission=MISSION,
        event_id=gcn_event_id(event, spec),
        version=gcn_stage_version(event, spec),
        test=bool(event.bool_value("Test_Submission", "Trigger_ID")),
        significance=read_fields(event, _SIGNIFICANCE),
        extra=read_fields(event, _EXTRA),
    )


def parse_maxi(payload: bytes, *, strict_namespace: bool = False) -> Notice:
    """Parse a MAXI VOEvent payload into a :class:`Notice`."""
    return from_voevent(load_voevent(payload, strict_namespace=strict_namespace))
