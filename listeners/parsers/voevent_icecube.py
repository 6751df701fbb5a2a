"""IceCube single-neutrino VOEvents: Astrotrack Gold/Bronze and Cascade.

GCN classic packets 173, 174 and 176, published on the AMON stream
``ivo://nasa.gsfc.gcn/AMON``.  Facts used (table below):

* ``event_id = "IceCube:<run_id>_<event_id>"`` (the IceCube run and event numbers).
* ``version`` = ``Rev``, the alert revision.
* The ``WhereWhen`` radius is ``src_error_90``: 90 % containment, statistical only
  (``icecube_track``; cascades ``icecube_cascade``, statistical and systematic).
  ``src_error_50`` is the circle's ``radius50_deg``: :mod:`skymaps` fits the radial
  profile to both radii (and adds the tracks' systematic). Both radii and the
  cascade sky-map URL are also kept in ``extra``.
* ``Retraction`` (group ``Trigger_ID``) true -> a retraction (no localisation).
* ``Test`` or ``InternalTest`` true -> role TEST.
* ``RADec_valid`` is false in every real notice seen, valid positions included, so
  it is recorded in ``extra`` and not used.
* ``FAR`` is per year; ``significance`` gives it per year and in Hz.
"""

from __future__ import annotations

import dataclasses

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
from mm_broker.core.models import Messenger, Notice

__all__ = ["MISSION", "PACKETS", "SECONDS_PER_YEAR", "from_voevent", "parse_icecube"]

MISSION = "IceCube"

#: Julian year in seconds, to convert FAR per year to Hz.
SECONDS_PER_YEAR = 365.25 * 86400.0

# fmt: off
#: IceCube packet types handled here.
PACKETS: dict[int, PacketSpec] = {
    173: PacketSpec(
        "ICECUBE_ASTROTRACK_GOLD", "IceCube", Messenger.NU,
        containment=0.9, convention="icecube_track", id_prefix="IceCube",
    ),
    174: PacketSpec(
        "ICECUBE_ASTROTRACK_BRONZE", "IceCube", Messenger.NU,
        containment=0.9, convention="icecube_track", id_prefix="IceCube",
    ),
    176: PacketSpec(
        "ICECUBE_CASCADE", "IceCube", Messenger.NU,
        containment=0.9, convention="icecube_cascade", id_prefix="IceCube",
    ),
}
# fmt: on

_SIGNIFICANCE: dict[str, Field] = {
    "signalness": ("signalness", None, "float"),
    "far_per_year": ("FAR", None, "float"),
    "energy_tev": ("energy", None, "float"),
}

_EXTRA: dict[str, Field] = {
    "packet_type": ("Packet_Type", None, "int"),
    "pkt_ser_num": ("Pkt_Ser_Num", None, "int"),
    "amon_id": ("AMON_ID", None, "int"),
    "run_id": ("run_id", None, "int"),
    "event_number": ("event_id", None, "int"),
    "event_name": ("event_name", None, "str"),
    "stream_number": ("Stream", None, "int"),
    "src_error_90_deg": ("src_error_90", None, "float"),
    "src_error_50_deg": ("src_error_50", None, "float"),
    "skymap_fits_url": ("skymap_fits", None, "str"),
    "skymap_png_url": ("skymap_png", None, "str"),
    "subtype": ("SubType", "Trigger_ID", "str"),
    "radec_valid_flag": ("RADec_valid", "Trigger_ID", "bool"),
}


def from_voevent(event: VOEvent) -> Notice:
    """Notice from a parsed IceCube Gold/Bronze/Cascade VOEvent.

    Raises
    ------
    UnsupportedNoticeType, SchemaError, NoPosition, BadCoordinates
    """
    _, spec = spec_for(PACKETS, event)
    run = event.require_int("run_id")
    number = event.require_int("event_id")
    if run < 0 or number < 0:
        raise SchemaError(f"{event.ivorn}: negative run_id/event_id {run}/{number}")
    revision = event.require_int("Rev")
    if revision < 0:
        raise SchemaError(f"{event.ivorn}: negative Rev {revision}")
    significance = read_fields(event, _SIGNIFICANCE)
    if "far_per_year" in significance:
        significance["far_hz"] = significance["far_per_year"] / SECONDS_PER_YEAR
    test = bool(event.bool_value("Test", "Trigger_ID")) or bool(
        event.bool_value("InternalTest", "Trigger_ID")
    )
    event_id = f"IceCube:{run}_{number}"
    retraction = bool(event.bool_value("Retraction", "Trigger_ID"))
    extra = read_fields(event, _EXTRA)
    circle = None
    if not retraction:
        circle = circle_from_position(event, spec, context=f"{event_id} {spec.notice_type}")
        r50 = extra.get("src_error_50_deg")
        if isinstance(r50, float):
            circle = dataclasses.replace(circle, radius50_deg=r50)
    return build_notice(
        event,
        spec,
        mission=MISSION,
        event_id=event_id,
        version=revision,
        test=test,
        retraction=retraction,
        significance=significance,
        extra=extra,
        localisation=circle,
    )


def parse_icecube(payload: bytes, *, strict_namespace: bool = False) -> Notice:
    """Parse an IceCube Gold/Bronze/Cascade VOEvent payload into a :class:`Notice`."""
    return from_voevent(load_voevent(payload, strict_namespace=strict_namespace))
