"""SVOM VOEvents from the French Science Center (stream ``ivo://org.svom/fsc``).

Facts used (table below):

* ``event_id = "SVOM:<Burst_Id>"`` (``Svom_Identifiers/Burst_Id``, e.g. ``sb26042101``),
  shared by the GRM, ECLAIRs and MXT notices and the retraction of one burst.
* ``Pkt_Ser_Num`` is 1 in every notice seen, so the version is
  ``stage * VERSION_STRIDE + Pkt_Ser_Num`` with stages GRM trigger 0, ECLAIRs
  wake-up/catalogue 1, slewing/not-slewing 2, MXT initial 3, MXT update 4,
  retraction 9.
* Errors: ECLAIRs and MXT radii are 90 % (``svom_eclairs``, ``svom_mxt``).
  GRM triggers carry no position, or ``Error2Radius`` -1 which SVOM uses for "no
  error radius": :class:`NoPosition` either way.
* Retraction (219): no localisation (the position it repeats is ignored); the
  retracted IVORNs (``<Citations>`` with ``cite="retraction"``) are listed in
  ``extra["retracted_ivorns"]``.
* ECLAIRs catalogue triggers (203) are flares of known X-ray sources: messenger X.
* Packet types other than those seen in real notices are not guessed: they raise
  :class:`UnsupportedNoticeType` naming the type.
"""

from __future__ import annotations

import re

from listeners.parsers.voevent import VOEvent, load_voevent
from listeners.parsers.voevent_common import (
    Field,
    PacketSpec,
    build_notice,
    read_fields,
    spec_for,
    stage_version,
)
from mm_broker.core.errors import SchemaError
from mm_broker.core.models import Messenger, Notice

__all__ = ["MISSION", "NO_ERROR_RADII", "PACKETS", "from_voevent", "parse_svom"]

MISSION = "SVOM"
_ECL = "svom_eclairs"
_MXT = "svom_mxt"

# fmt: off
#: SVOM packet types handled here.
PACKETS: dict[int, PacketSpec] = {
    201: PacketSpec(
        "SVOM_GRM_TRIGGER", "GRM", Messenger.GRB, stage=0,
        containment=0.9, convention="generic", id_prefix="SVOM",
    ),
    202: PacketSpec(
        "SVOM_ECLAIRS_WAKEUP", "ECLAIRs", Messenger.GRB, stage=1,
        containment=0.9, convention=_ECL, id_prefix="SVOM",
    ),
    203: PacketSpec(
        "SVOM_ECLAIRS_CATALOG", "ECLAIRs", Messenger.X, stage=1,
        containment=0.9, convention=_ECL, id_prefix="SVOM",
    ),
    204: PacketSpec(
        "SVOM_ECLAIRS_SLEWING", "ECLAIRs", Messenger.GRB, stage=2,
        containment=0.9, convention=_ECL, id_prefix="SVOM",
    ),
    205: PacketSpec(
        "SVOM_ECLAIRS_NOT_SLEWING", "ECLAIRs", Messenger.GRB, stage=2,
        containment=0.9, convention=_ECL, id_prefix="SVOM",
    ),
    209: PacketSpec(
        "SVOM_MXT_INITIAL", "MXT", Messenger.GRB, stage=3,
        containment=0.9, convention=_MXT, id_prefix="SVOM",
    ),
    210: PacketSpec(
        "SVOM_MXT_UPDATE", "MXT", Messenger.GRB, stage=4,
        containment=0.9, convention=_MXT, id_prefix="SVOM",
    ),
    219: PacketSpec(
        "SVOM_RETRACTION", "SVOM", Messenger.GRB, stage=9, retraction=True, id_prefix="SVOM",
    ),
}
# fmt: on

#: Radii SVOM writes to mean "no error radius".
NO_ERROR_RADII: dict[float, str] = {-1.0: "SVOM's value for no error radius"}

_BURST_ID = re.compile(r"^sb\d{8}$")

_SIGNIFICANCE: dict[str, Field] = {
    "snr": ("SNR", "Detection_Info", "float"),
    "trigger_type": ("Trigger_Type", "Detection_Info", "str"),
    "slew_status": ("Slew_Status", "Satellite_Info", "str"),
    "within_eclairs_r90": ("Within_ECLAIRs_R90", "Target_Info", "bool"),
}

_EXTRA: dict[str, Field] = {
    "packet_type": ("Packet_Type", None, "int"),
    "pkt_ser_num": ("Pkt_Ser_Num", None, "int"),
    "notice_level": ("Notice_Level", "Svom_Identifiers", "str"),
    "alert_seq_t0": ("Alert_Seq_T0", "Svom_Identifiers", "str"),
    "timescale_s": ("Timescale", "Detection_Info", "float"),
    "time_window_start": ("Time_Window_Start", "Detection_Info", "str"),
    "time_window_end": ("Time_Window_End", "Detection_Info", "str"),
    "lower_energy_kev": ("Lower_Energy_Bound", "Detection_Info", "float"),
    "upper_energy_kev": ("Upper_Energy_Bound", "Detection_Info", "float"),
    "triggered_grds": ("Triggered_GRDs", "Detection_Info", "str"),
    "mean_flux": ("Mean_Flux", "Detection_Info", "float"),
    "flux_error": ("Flux_Error", "Detection_Info", "float"),
    "source_name": ("Source_Name", "Target_Info", "str"),
    "onboard_catalog_id": ("Onboard_Catalog_Id", "Target_Info", "int"),
    "eclairs_angle_arcmin": ("ECLAIRs_Angle", "Target_Info", "float"),
}


def from_voevent(event: VOEvent) -> Notice:
    """Notice from a parsed SVOM VOEvent (see the module documentation).

    Raises
    ------
    UnsupportedNoticeType, SchemaError, NoPosition, BadCoordinates
    """
    _, spec = spec_for(PACKETS, event)
    burst_id = event.require("Burst_Id", "Svom_Identifiers")
    if not _BURST_ID.match(burst_id):
        raise SchemaError(f"{event.ivorn}: Burst_Id {burst_id!r} is not an SVOM burst id")
    extra = read_fields(event, _EXTRA)
    instrument = event.value("Instrument")
    if instrument:
        extra["instrument_param"] = instrument
    if spec.retraction:
        extra["retracted_ivorns"] = [
            citation.ivorn for citation in event.citations() if citation.cite == "retraction"
        ]
        reason = (event.root.findtext("Citations/Description") or "").strip()
        if reason:
            extra["retraction_reason"] = reason
    version = stage_version(spec.stage, event.require_int("Pkt_Ser_Num"), what="Pkt_Ser_Num")
    return build_notice(
        event,
        spec,
        mission=MISSION,
        event_id=f"SVOM:{burst_id}",
        version=version,
        significance=read_fields(event, _SIGNIFICANCE),
        extra=extra,
        no_error_radii=NO_ERROR_RADII,
    )


def parse_svom(payload: bytes, *, strict_namespace: bool = False) -> Notice:
    """Parse an SVOM VOEvent payload into a :class:`Notice`."""
    return from_voevent(load_voevent(payload, strict_namespace=strict_namespace))
