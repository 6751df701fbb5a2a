"""Swift BAT, XRT and UVOT VOEvents (GCN classic, stream ``ivo://nasa.gsfc.gcn/SWIFT``).

Facts used (table below):

* One event per BAT trigger: ``event_id = "Swift:<TrigID>"``; XRT and UVOT notices
  carry the same ``TrigID`` as the BAT trigger they follow up.
* Errors are 90 % radii: BAT (``swift_bat``, on-board position, systematic
  included), XRT (``swift_xrt``), UVOT (``swift_uvot``).
* Versions: ``stage * VERSION_STRIDE + Pkt_Ser_Num`` with stages BAT QuickLook 1,
  BAT position 2, XRT 3, UVOT 4: each finer instrument supersedes the coarser one.
* Time: for BAT notices ``WhereWhen`` ISOTime is the trigger time.  XRT and UVOT
  notices carry the time of their own observation there (the BAT t0 is not in the
  packet); it is kept as ``trigger_time`` and flagged by
  ``extra["isotime_meaning"] = "observation"``.
* BAT light-curve (63), FOM (65) and spacecraft-slew (66) notices repeat the BAT
  position without an error radius: :class:`NoPosition`.
* ``SWIFT_BAT_GRB_POS_TEST`` (82) and ``Test_Submission`` are test notices.
* BAT transients (84) are hard X-ray transients, messenger X.
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

__all__ = ["MISSION", "PACKETS", "from_voevent", "parse_swift"]

MISSION = "Swift"
_ID = "Swift"
_BAT = "swift_bat"
_REPEAT = "repeats the BAT position without an error radius (no new localisation)"

# fmt: off
#: Swift packet types handled here.
PACKETS: dict[int, PacketSpec] = {
    61: PacketSpec(
        "SWIFT_BAT_GRB_POS_ACK", "BAT", Messenger.GRB, stage=2,
        containment=0.9, convention=_BAT, id_prefix=_ID,
    ),
    63: PacketSpec(
        "SWIFT_BAT_GRB_LC", "BAT", Messenger.GRB, stage=2, id_prefix=_ID,
        no_position=f"the BAT light-curve notice {_REPEAT}",
    ),
    65: PacketSpec(
        "SWIFT_FOM_OBS", "BAT", Messenger.GRB, stage=2, id_prefix=_ID,
        no_position=f"the figure-of-merit decision notice {_REPEAT}",
    ),
    66: PacketSpec(
        "SWIFT_SC_SLEW", "BAT", Messenger.GRB, stage=2, id_prefix=_ID,
        no_position=f"the spacecraft-slew notice {_REPEAT}",
    ),
    67: PacketSpec(
        "SWIFT_XRT_POSITION", "XRT", Messenger.GRB, stage=3,
        containment=0.9, convention="swift_xrt", id_prefix=_ID,
    ),
    81: PacketSpec(
        "SWIFT_UVOT_POS", "UVOT", Messenger.GRB, stage=4,
        containment=0.9, convention="swift_uvot", id_prefix=_ID,
    ),
    82: PacketSpec(
        "SWIFT_BAT_GRB_POS_TEST", "BAT", Messenger.GRB, stage=2, test=True,
        containment=0.9, convention=_BAT, id_prefix=_ID,
    ),
    84: PacketSpec(
        "SWIFT_BAT_TRANS", "BAT", Messenger.X, stage=2,
        containment=0.9, convention=_BAT, id_prefix=_ID,
    ),
    97: PacketSpec(
        "SWIFT_BAT_QL_POS", "BAT", Messenger.GRB, stage=1,
        containment=0.9, convention=_BAT, id_prefix=_ID,
    ),
}
# fmt: on

#: Packet types whose ISOTime is the instrument's observation time, not the BAT t0.
OBSERVATION_TIME_TYPES = frozenset({67, 81})

_SIGNIFICANCE: dict[str, Field] = {
    "rate_significance_sigma": ("Rate_Signif", None, "float"),
    "image_significance_sigma": ("Image_Signif", None, "float"),
    "detection_significance_sigma": ("Det_Signif", None, "float"),
    "grb_identified": ("GRB_Identified", "Solution_Status", "bool"),
    "point_source": ("Point_Source", "Solution_Status", "bool"),
    "def_not_a_grb": ("Def_NOT_a_GRB", "Solution_Status", "bool"),
    "target_in_flight_catalog": ("Target_in_Flt_Catalog", "Solution_Status", "bool"),
    "target_in_ground_catalog": ("Target_in_Gnd_Catalog", "Solution_Status", "bool"),
    "cosmic_ray": ("Cosmic_Ray", "Solution_Status", "bool"),
}

_EXTRA: dict[str, Field] = {
    "packet_type": ("Packet_Type", None, "int"),
    "pkt_ser_num": ("Pkt_Ser_Num", None, "int"),
    "trig_id": ("TrigID", None, "int"),
    "segment_num": ("Segment_Num", None, "int"),
    "burst_intensity": ("Burst_Inten", None, "float"),
    "integration_time_s": ("Integ_Time", None, "float"),
    "phi_deg": ("Phi", None, "float"),
    "theta_deg": ("Theta", None, "float"),
    "catalog_number": ("Cat_Num", None, "int"),
    "uvot_magnitude_centimag": ("Burst_Mag", None, "float"),
    "uvot_magnitude_error_centimag": ("Mag_Error", None, "float"),
    "uvot_filter": ("Filter", None, "int"),
    "updated_notice": ("Updated_Notice", "Misc_Flags", "bool"),
}


def from_voevent(event: VOEvent) -> Notice:
    """Notice from a parsed Swift VOEvent (see the module documentation).

    Raises
    ------
    UnsupportedNoticeType, SchemaError, NoPosition, BadCoordinates
    """
    packet_type, spec = spec_for(PACKETS, event)
    extra = read_fields(event, _EXTRA)
    if packet_type in OBSERVATION_TIME_TYPES:
        extra["isotime_meaning"] = "observation"
    return build_notice(
        event,
        spec,
        mission=MISSION,
        event_id=gcn_event_id(event, spec),
        version=gcn_stage_version(event, spec),
        test=bool(event.bool_value("Test_Submission", "Solution_Status")),
        significance=read_fields(event, _SIGNIFICANCE),
        extra=extra,
    )


def parse_swift(payload: bytes, *, strict_namespace: bool = False) -> Notice:
    """Parse a Swift VOEvent payload into a :class:`Notice`."""
    return from_voevent(load_voevent(payload, strict_namespace=strict_namespace))
