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
* ``AMON_NU_EM_COINC`` (172): the containment is read from the notice, never
  assumed. ``src_error_90`` is the radius at 90 % (with ``src_error_50``, when given,
  as the 50 % radius: :mod:`skymaps` fits the radial profile to both), else
  ``src_error_50`` the radius at 50 %; a packet with neither states no containment
  and is rejected (:class:`~mm_broker.core.errors.SchemaError`). The ``WhereWhen``
  position is the centre; ``extra["containment_stated"] = True``. Convention
  ``amon_nu_em``.
* The retired HESE, EHE and multiplet packets (157, 158, 169) carry no statement of
  containment: their ``WhereWhen`` radius is taken as 90 %, the AMON convention for
  its published radii, flagged in ``extra["containment_stated"] = False``.
* ``Retraction``/``Test``/``InternalTest`` flags as for IceCube.
"""

from __future__ import annotations

from listeners.parsers.voevent import VOEvent, load_voevent
from listeners.parsers.voevent_common import (
    Field,
    PacketSpec,
    build_notice,
    circle_from_position,
    read_fields,
    spec_for,
)
from mm_broker.core.errors import SchemaError
from mm_broker.core.models import Circle, Messenger, Notice

__all__ = [
    "MISSION", "PACKETS", "PLACEHOLDER_TRIGID", "STATED_CONTAINMENT", "from_voevent",
    "parse_amon",
]

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
    # Containment read from src_error_90 / src_error_50 (see _stated_circle); the
    # 0.9 here only lets circle_from_position read and check the position.
    172: PacketSpec(
        "AMON_NU_EM_COINC", "AMON", Messenger.NU,
        containment=0.9, convention="amon_nu_em", id_prefix="AMON-NU_EM_COINC",
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
    "src_error_90_deg": ("src_error_90", None, "float"),
    "src_error_50_deg": ("src_error_50", None, "float"),
}

#: Packet types whose containment the notice states (``src_error_90``/``_50``).
STATED_CONTAINMENT = frozenset({172})


def _stated_circle(event: VOEvent, spec: PacketSpec, extra: dict[str, object],
                   context: str) -> Circle:
    """The circle at the containment the notice states (``src_error_90``, else
    ``src_error_50``) around the ``WhereWhen`` position."""
    position = circle_from_position(event, spec, context=context)
    r90, r50 = extra.get("src_error_90_deg"), extra.get("src_error_50_deg")
    if isinstance(r90, float):
        return Circle(position.ra, position.dec, r90, 0.9, None, spec.convention or "",
                      r50 if isinstance(r50, float) else None)
    if isinstance(r50, float):
        return Circle(position.ra, position.dec, r50, 0.5, None, spec.convention or "")
    raise SchemaError(f"{context}: no src_error_90 or src_error_50: the notice states no "
                      "containment for its radius")


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
    packet, spec = spec_for(PACKETS, event)
    revision = event.require_int("Rev")
    if revision < 0:
        raise SchemaError(f"{event.ivorn}: negative Rev {revision}")
    extra = read_fields(event, _EXTRA)
    stated = packet in STATED_CONTAINMENT
    extra["containment_stated"] = stated
    test = bool(event.bool_value("Test", "Trigger_ID")) or bool(
        event.bool_value("InternalTest", "Trigger_ID")
    )
    event_id = _event_id(event, spec)
    retraction = bool(event.bool_value("Retraction", "Trigger_ID"))
    circle = (_stated_circle(event, spec, extra, f"{event_id} {spec.notice_type}")
              if stated and not retraction else None)
    return build_notice(
        event,
        spec,
        mission=MISSION,
        event_id=event_id,
        version=revision,
        test=test,
        retraction=retraction,
        significance=read_fields(event, _SIGNIFICANCE),
        extra=extra,
        localisation=circle,
    )


def parse_amon(payload: bytes, *, strict_namespace: bool = False) -> Notice:
    """Parse an AMON VOEvent payload into a :class:`Notice`."""
    return from_voevent(load_voevent(payload, strict_namespace=strict_namespace))
