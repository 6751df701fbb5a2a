"""LIGO/Virgo/KAGRA classic VOEvents (``ivo://gwnet/LVC``, O2 ``ivo://gwnet/gcn_sender``).

LVK stopped its VOEvents on 2026-07-08 (``igwn.gwalert`` JSON is the live format);
this parser reads the archived ones.  Facts used (table below):

* ``event_id = "LVK:<GraceID>"`` (superevent id, or the G-event id of O2 notices).
* ``notice_type`` is the ``AlertType`` in the JSON spelling: ``EARLYWARNING``,
  ``PRELIMINARY``, ``INITIAL``, ``UPDATE``, ``RETRACTION``.
* ``version`` = ``Pkt_Ser_Num`` (LVK numbers the notices of a superevent 1, 2, ...).
* Localisation: the sky map is only referenced by URL, in the ``GW_SKYMAP`` group
  (``skymap_fits``; O2 packets give ``skymap_fits_basic``/``_x509``/``_shib``):
  ``SkyMap(data=None, url=...)``.  The URL is kept as written (GraceDB file
  versions such as ``,0`` included).  No URL -> :class:`NoPosition`.
* Retraction: packet type 164, ``AlertType`` Retraction or the O2 ``Retraction``
  flag; no localisation.
* Role: mock and test superevents (ids starting with ``M`` or ``T``, e.g.
  ``MS181101ab``) and hardware injections (``HardwareInj`` 1) are TEST whatever the
  ``role`` attribute says.
* ``significance``: ``far_hz``, ``significant``, ``classification`` (BNS, NSBH,
  BBH, MassGap, Terrestrial), ``properties`` (HasNS, HasRemnant, HasMassGap), the
  search ``group``/``pipeline``/``search``.  The external-coincidence block (RAVEN)
  and the joint sky-map URL go to ``extra``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from listeners.parsers.voevent import Group, VOEvent, load_voevent
from listeners.parsers.voevent_common import (
    Field,
    PacketSpec,
    build_notice,
    read_fields,
    spec_for,
)
from mm_broker.core.errors import NoPosition, SchemaError
from mm_broker.core.models import Messenger, Notice, SkyMap

__all__ = ["MISSION", "PACKETS", "SKYMAP_CONVENTION", "from_voevent", "parse_lvk"]

MISSION = "LVK"
SKYMAP_CONVENTION = "lvk_gw_skymap"

# fmt: off
#: LVK packet types handled here.
PACKETS: dict[int, PacketSpec] = {
    163: PacketSpec("EARLYWARNING", "LVK", Messenger.GW, id_prefix="LVK", id_param="GraceID"),
    150: PacketSpec("PRELIMINARY", "LVK", Messenger.GW, id_prefix="LVK", id_param="GraceID"),
    151: PacketSpec("INITIAL", "LVK", Messenger.GW, id_prefix="LVK", id_param="GraceID"),
    152: PacketSpec("UPDATE", "LVK", Messenger.GW, id_prefix="LVK", id_param="GraceID"),
    164: PacketSpec(
        "RETRACTION", "LVK", Messenger.GW, retraction=True, id_prefix="LVK", id_param="GraceID"
    ),
}
# fmt: on

#: First letters of mock (MDC) and test superevent ids.
TEST_ID_PREFIXES = ("M", "T")
#: Params naming the sky-map file, in order of preference.
SKYMAP_PARAMS = ("skymap_fits", "skymap_fits_basic", "skymap_fits_x509", "skymap_fits_shib")
CLASSIFICATION_KEYS = ("BNS", "NSBH", "BBH", "MassGap", "Terrestrial")
PROPERTY_KEYS = ("HasNS", "HasRemnant", "HasMassGap", "ProbHasNS", "ProbHasRemnant")

_GRACE_ID = re.compile(r"^[A-Za-z]{1,3}\d{4,}[a-z]*$|^G\d+$")

_SIGNIFICANCE: dict[str, Field] = {
    "far_hz": ("FAR", None, "float"),
    "significant": ("Significant", None, "bool"),
    "group": ("Group", None, "str"),
    "pipeline": ("Pipeline", None, "str"),
    "search": ("Search", None, "str"),
    "vetted": ("Vetted", None, "bool"),
}

_EXTRA: dict[str, Field] = {
    "packet_type": ("Packet_Type", None, "int"),
    "pkt_ser_num": ("Pkt_Ser_Num", None, "int"),
    "alert_type": ("AlertType", None, "str"),
    "event_page": ("EventPage", None, "str"),
    "hardware_injection": ("HardwareInj", None, "bool"),
    "open_alert": ("OpenAlert", None, "bool"),
    "internal": ("internal", None, "bool"),
}


def _probabilities(event: VOEvent, group_name: str, keys: tuple[str, ...]) -> dict[str, float]:
    found: dict[str, float] = {}
    group = event.group(group_name)
    for key in keys:
        param = group.params.get(key) if group is not None else None
        if param is None:
            param = event.param(key)  # O2 packets keep them at top level
        if param is None:
            continue
        value = param.as_float()
        if value is None:
            continue
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise SchemaError(f"{event.ivorn}: {key} probability {value} outside [0, 1]")
        found[key] = value
    return found


def _skymap_url(event: VOEvent) -> tuple[str, str | None] | None:
    for group in event.groups_of_type("GW_SKYMAP"):
        for name in SKYMAP_PARAMS:
            url = group.value(name)
            if url:
                return url, group.name
    return None


def _external(event: VOEvent) -> dict[str, Any] | None:
    group: Group | None = event.group("External Coincidence")
    if group is None:
        return None
    return {name: param.value for name, param in group.params.items() if param.value}


def from_voevent(event: VOEvent) -> Notice:
    """Notice from a parsed LVK VOEvent (see the module documentation).

    Raises
    ------
    UnsupportedNoticeType, SchemaError, NoPosition
    """
    _, spec = spec_for(PACKETS, event)
    grace_id = event.require("GraceID")
    if not _GRACE_ID.match(grace_id):
        raise SchemaError(f"{event.ivorn}: GraceID {grace_id!r} is not a GraceDB identifier")
    event_id = f"LVK:{grace_id}"
    serial = event.require_int("Pkt_Ser_Num")
    if serial < 0:
        raise SchemaError(f"{event.ivorn}: negative Pkt_Ser_Num {serial}")
    instruments = event.value("Instruments")
    if instruments:
        spec = dataclasses.replace(spec, instrument=instruments)
    retraction = (
        spec.retraction
        or (event.value("AlertType") or "").lower() == "retraction"
        or bool(event.bool_value("Retraction"))
    )
    test = grace_id.startswith(TEST_ID_PREFIXES) or bool(event.bool_value("HardwareInj"))

    significance: dict[str, Any] = read_fields(event, _SIGNIFICANCE)
    classification = _probabilities(event, "Classification", CLASSIFICATION_KEYS)
    if classification:
        significance["classification"] = classification
    properties = _probabilities(event, "Properties", PROPERTY_KEYS)
    if properties:
        significance["properties"] = properties
    if instruments:
        significance["instruments"] = [item.strip() for item in instruments.split(",")]

    extra = read_fields(event, _EXTRA)
    extra["mock_or_test_id"] = grace_id.startswith(TEST_ID_PREFIXES)
    external = _external(event)
    if external:
        extra["external_coincidence"] = external
        if external.get("joint_skymap_fits"):
            extra["joint_skymap_url"] = external["joint_skymap_fits"]

    localisation = None
    if not retraction:
        found = _skymap_url(event)
        if found is None:
            raise NoPosition(f"{event_id} {spec.notice_type}: no GW_SKYMAP sky-map URL")
        url, skymap_name = found
        extra["skymap_name"] = skymap_name
        localisation = SkyMap(data=None, url=url, convention=SKYMAP_CONVENTION)

    notice = build_notice(
        event,
        spec,
        mission=MISSION,
        event_id=event_id,
        version=serial,
        test=test,
        retraction=retraction,
        significance=significance,
        extra=extra,
        localisation=localisation,
    )
    # The map is only linked: ingest fetches it (Notice.skymap_url).
    if localisation is None:
        return notice
    return dataclasses.replace(notice, skymap_url=localisation.url)


def parse_lvk(payload: bytes, *, strict_namespace: bool = False) -> Notice:
    """Parse a classic LVK VOEvent payload into a :class:`Notice`."""
    return from_voevent(load_voevent(payload, strict_namespace=strict_namespace))
