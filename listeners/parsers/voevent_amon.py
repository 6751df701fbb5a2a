"""AMON VOEvents other than the IceCube single-neutrino tracks and cascades.

GCN classic packets on ``ivo://nasa.gsfc.gcn/AMON``: the retired IceCube HESE (158)
and EHE (169) streams, IceCube multiplets (157, ``AMON_ICECUBE_COINC``) and the
neutrino-electromagnetic coincidences (172, ``AMON_NU_EM_COINC``: IceCube+HAWC,
ANTARES+Fermi).  The Gold/Bronze/Cascade packets on the same stream are read by
:mod:`listeners.parsers.voevent_icecube`.

Facts used (table below):

* ``event_id = "AMON-<kind>:<TrigID>"``.  The HESE stream wrote ``TrigID``
  2147483647 (the largest 32-bit integer, a placeholder) in its notices; for such a
  packet the identifier is the event time instead,
  ``"AMON-<kind>:<ISOTime as YYYY-MM-DDTHH:MM:SS.ff>"``.
* ``version`` = ``Rev``, the alert revision.
* Radii are taken as 90 % containment (convention ``generic``).  The packets seen carry no
  statement of containment; this is the AMON convention for its published radii
  and is flagged in ``extra["containment_stated"] = False``.
* ``Retraction``/``Test``/``InternalTest`` flags as for IceCube.
"""

from __future__ import annotations

from listeners.parsers.voevent import VOEvent, load_voevent
from listeners.parsers.voevent_common import (
    Field,
    PacketSpec,
    build_notice,
    read_fields,
    spec_for,
)
from mm_broker.core.errors import SchemaError
from mm_broker.core.models import Messenger, Notice

__all__ = ["MISSION", "PACKETS", "PLACEHOLDER_TRIGID", "from_voevent", "parse_amon"]

MISSION = "AMON"

#: ``TrigID`` written by the HESE stream when it had no trigger number (2**31 - 1).
PLACEHOLDER_TRIGID = 2**31 - 1

# fmt: off
#: AMON packet types handled here.
PACKETS: dict[int, PacketSpec] = {
    157: PacketSpec(
        "AMON_ICECUBE_COINC", "IceCube", Messenger.NU,
        containment=0.9, convention="generic", id_prefix="AMON-ICECUBE_COINC",
    ),
    158: PacketSpec(
        "AMON_ICECUBE_HESE", "IceCube", Messenger.NU,
        containment=0.9, convention="generic", id_prefix="AMON-ICECUBE_HESE",
    ),
    169: PacketSpec(
        "AMON_ICECUBE_EHE", "IceCube", Messenger.NU,
        containment=0.9, convention="generic", id_prefix="AMON-ICECUBE_EHE",
    ),
    172: PacketSpec(
        "AMON_NU_EM_COINC", "AMON", Messenger.NU,
        containment=0.9, convention="generic", id_prefix="AMON-NU_EM_COINC",
    ),
}
# fmt: on

_SIGNIFICANCE: dict[str, Field] = {
    "signalness": ("signalness", None, "float"),
    "false_positive_rate": ("False_pos", None, "float"),
    "far_per_year": ("FAR", None, "float"),
    "p_value": ("pvalue", None, "float"),
    "charge_pe": ("charge", None, "float"),
}

_EXTRA: dict[str, Field] = {
    "packet_type": ("Packet_Type", None, "int"),
    "pkt_ser_num": ("Pkt_Ser_Num", None, "int"),
    "trig_id": ("TrigID", None, "int"),
    "stream_number": ("Stream", None, "int"),
    "n_events": ("Nevents", None, "int"),
    "delta_t_s": ("deltaT", None, "float"),
    "sigma_t_s": ("sigmaT", None, "float"),
    "hese_type_index": ("hesetypeindex", None, "int"),
    "subtype": ("SubType", "Trigger_ID", "str"),
}


def _event_id(event: VOEvent, spec: PacketSpec) -> str:
    number = event.require_int("TrigID")
    if number < 0:
        raise SchemaError(f"{event.ivorn}: negative TrigID {number}")
    if number != PLACEHOLDER_TRIGID:
        return f"{spec.id_prefix}:{number}"
    when = event.iso_time()
    if when is None:
        raise SchemaError(f"{event.ivorn}: placeholder TrigID and no WhereWhen ISOTime")
    return f"{spec.id_prefix}:{when.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-4]}"


def from_voevent(event: VOEvent) -> Notice:
    """Notice from a parsed AMON VOEvent (see the module documentation).

    Raises
    ------
    UnsupportedNoticeType, SchemaError, NoPosition, BadCoordinates
    """
    _, spec = spec_for(PACKETS, event)
    revision = event.require_int("Rev")
    if revision < 0:
        raise SchemaError(f"{event.ivorn}: negative Rev {revision}")
    extra = read_fields(event, _EXTRA)
    extra["containment_stated"] = False
    test = bool(event.bool_value("Test", "Trigger_ID")) or bool(
        event.bool_value("InternalTest", "Trigger_ID")
    )
    return build_notice(
        event,
        spec,
        mission=MISSION,
        event_id=_event_id(event, spec),
        version=revision,
        test=test,
        retraction=bool(event.bool_value("Retraction", "Trigger_ID")),
        significance=read_fields(event, _SIGNIFICANCE),
        extra=extra,
    )


def parse_amon(payload: bytes, *, strict_namespace: bool = False) -> Notice:
    """Parse an AMON VOEvent payload into a :class:`Notice`."""
    return from_voevent(load_voevent(payload, strict_namespace=strict_namespace))
