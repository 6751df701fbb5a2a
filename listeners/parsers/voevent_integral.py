"""INTEGRAL IBAS VOEvents (GCN classic, stream ``ivo://nasa.gsfc.gcn/INTEGRAL``).

Facts used (table below):

* The event number is the IBAS trigger number written in the IVORN local id,
  ``<Type>_Pos_<trigger:6 digits>-<sequence>-<serial>``: the ``TrigID`` Param is
  not stable across one burst's notices (Wakeup_Pos_010472 has ``TrigID`` 10472,
  the Refined_Pos_010472 that follows it has ``TrigID`` 76008).  Hence
  ``event_id = "INTEGRAL:<number from the IVORN>"``; a packet whose IVORN lacks that
  pattern falls back to ``TrigID``.
* Errors: IBIS/IBAS radii are 90 % statistical (``integral_ibas``).
* Versions: ``stage * VERSION_STRIDE + Pkt_Ser_Num`` with stages Weak 0, Wakeup 1,
  Refined 2, Offline 3.
* ``Test_Notice`` (group ``Test_mpos``) marks a test notice.
"""

from __future__ import annotations

import re

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

__all__ = ["MISSION", "PACKETS", "from_voevent", "parse_integral"]

MISSION = "INTEGRAL"
_ID = "INTEGRAL"
_IBAS = "integral_ibas"

# fmt: off
#: INTEGRAL packet types handled here.
PACKETS: dict[int, PacketSpec] = {
    53: PacketSpec(
        "INTEGRAL_WAKEUP", "IBIS", Messenger.GRB, stage=1,
        containment=0.9, convention=_IBAS, id_prefix=_ID,
    ),
    54: PacketSpec(
        "INTEGRAL_REFINED", "IBIS", Messenger.GRB, stage=2,
        containment=0.9, convention=_IBAS, id_prefix=_ID,
    ),
    55: PacketSpec(
        "INTEGRAL_OFFLINE", "IBIS", Messenger.GRB, stage=3,
        containment=0.9, convention=_IBAS, id_prefix=_ID,
    ),
    56: PacketSpec(
        "INTEGRAL_WEAK", "IBIS", Messenger.GRB, stage=0,
        containment=0.9, convention=_IBAS, id_prefix=_ID,
    ),
}
# fmt: on

_IVORN_TRIGGER = re.compile(r"_Pos_(\d{6})-(\d+)-\d+$")

_SIGNIFICANCE: dict[str, Field] = {
    "significance_sigma": ("Inten_Sigma", None, "float"),
    "def_not_a_grb": ("Def_NOT_a_GRB", "Test_mpos", "bool"),
}

_EXTRA: dict[str, Field] = {
    "packet_type": ("Packet_Type", None, "int"),
    "pkt_ser_num": ("Pkt_Ser_Num", None, "int"),
    "trig_id": ("TrigID", None, "int"),
    "time_error_s": ("Time_Error", None, "float"),
    "time_scale_s": ("Time_Scale", None, "float"),
    "pointing_ra_deg": ("SC_Pnt_Ra", None, "float"),
    "pointing_dec_deg": ("SC_Pnt_Dec", None, "float"),
}


def _event_id(event: VOEvent, spec: PacketSpec) -> tuple[str, int | None]:
    match = _IVORN_TRIGGER.search(event.local_id)
    if match is None:
        return gcn_event_id(event, spec), None
    return f"{_ID}:{int(match.group(1))}", int(match.group(2))


def from_voevent(event: VOEvent) -> Notice:
    """Notice from a parsed INTEGRAL VOEvent (see the module documentation).

    Raises
    ------
    UnsupportedNoticeType, SchemaError, NoPosition, BadCoordinates
    """
    _, spec = spec_for(PACKETS, event)
    event_id, sequence = _event_id(event, spec)
    extra = read_fields(event, _EXTRA)
    if sequence is not None:
        extra["ivorn_sequence"] = sequence
    return build_notice(
        event,
        spec,
        mission=MISSION,
        event_id=event_id,
        version=gcn_stage_version(event, spec),
        test=bool(event.bool_value("Test_Notice", "Test_mpos")),
        significance=read_fields(event, _SIGNIFICANCE),
        extra=extra,
    )


def parse_integral(payload: bytes, *, strict_namespace: bool = False) -> Notice:
    """Parse an INTEGRAL VOEvent payload into a :class:`Notice`."""
    return from_voevent(load_voevent(payload, strict_namespace=strict_namespace))
