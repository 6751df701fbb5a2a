"""Steps shared by the VOEvent mission parsers: packet tables, localisation checks, Notice.

Each mission module (``voevent_fermi``, ``voevent_swift``, ...) describes its packet
types as data, a table of :class:`PacketSpec` keyed by packet type, and uses the
functions here to turn a :class:`~listeners.parsers.voevent.VOEvent` into a
:class:`~mm_broker.core.models.Notice` with the same rules everywhere.

Localisation rules (:func:`circle_from_position`), in order
------------------------------------------------------------
1. ``Coords_Type`` 0 ("unavailable/inappropriate", GCN) -> :class:`NoPosition`.
2. No ``Position2D`` (or no C1/C2) in ``WhereWhen`` -> :class:`NoPosition`.
3. Units other than degrees, or a frame other than FK5/ICRS -> :class:`SchemaError`.
4. RA or Dec not a number, NaN or infinite, Dec outside [-90, 90], RA outside
   [0, 360] -> :class:`BadCoordinates` (the one rule of
   :func:`mm_broker.core.position.check_position`).  RA 360 is folded to 0.
5. No ``Error2Radius`` -> :class:`NoPosition`.
6. A radius the mission uses to say "no error" (its table of sentinel radii, e.g. SVOM
   GRM's -1) -> :class:`NoPosition` naming the convention.
7. Any other negative, NaN or infinite radius -> :class:`BadCoordinates`.
8. Radius 0 -> :class:`NoPosition` ("0,0 r=0" placeholders of GBM Alert, Konus, AGILE;
   known-source positions without an error of LAT Monitor, Swift FOM/LC).
9. Radius >= 180 deg -> :class:`NoPosition`: the circle covers the whole sky and
   localises nothing (SNEWS publishes r=360 with ``RADec_valid=false``).  This is a
   statement of the mission, not corrupt data, hence not :class:`BadCoordinates`.

Versions
--------
Missions whose notices about one event come from successive localisation stages
(GBM Alert -> Flight -> Ground -> Final, Swift BAT -> XRT -> UVOT, ...) get
``version = stage * VERSION_STRIDE + serial`` (:func:`stage_version`), where
``serial`` is the packet's own serial number (GCN ``Pkt_Ser_Num``).  A later stage
therefore always supersedes an earlier one, and within a stage the packet's own
order holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from listeners.parsers.voevent import VOEvent
from mm_broker.core.errors import (
    BadCoordinates,
    NoPosition,
    SchemaError,
    UnsupportedNoticeType,
)
from mm_broker.core.models import Circle, Localisation, Messenger, Notice, Role
from mm_broker.core.position import check_position

__all__ = [
    "ONE_SIGMA",
    "VERSION_STRIDE",
    "Field",
    "NoticeParts",
    "build_notice",
    "gcn_event_id",
    "gcn_stage_version",
    "PacketSpec",
    "circle_from_position",
    "citation_extra",
    "gcn_packet_type",
    "make_notice",
    "notice_times",
    "read_fields",
    "role_for",
    "spec_for",
    "stage_version",
]

#: Multiplier of the localisation stage in :func:`stage_version`.
VERSION_STRIDE = 1_000_000

#: Containment of a 1-sigma radius (2-D Gaussian convention used by GCN: 68.27 %).
ONE_SIGMA = 0.6827

_FRAMES = frozenset({"FK5", "ICRS"})
_TIME_SCALES = frozenset({"UTC"})
_ROLES = {"observation": Role.OBSERVATION, "test": Role.TEST, "utility": Role.UTILITY}


@dataclass(frozen=True)
class PacketSpec:
    """What a mission says about one of its packet types.

    Attributes
    ----------
    notice_type : str
        Name of the notice type (GCN classic name where there is one, e.g.
        ``"FERMI_GBM_FIN_POS"``; it is also the suffix of its Kafka topic).
    instrument : str
        Instrument that produced it.
    messenger : Messenger
        Kind of trigger.
    stage : int
        Localisation stage within an event (see :func:`stage_version`).
    containment : float or None
        Probability content of the published error radius.
    convention : str or None
        Identifier of the mission's error convention, read by :mod:`skymaps`.
    systematic_deg : float or None
        Systematic radius published separately from the statistical one, if any.
    test : bool
        The packet type itself is a test type (e.g. ``SWIFT_BAT_GRB_POS_TEST``).
    retraction : bool
        The packet type withdraws an event.
    no_position : str or None
        When set, the packet type never carries a usable localisation and this
        sentence says why (a :class:`NoPosition` is raised with it).
    id_prefix : str
        Prefix of the event identifier (``"Fermi-GBM"`` gives ``"Fermi-GBM:<id>"``).
    id_param : str
        Param holding the mission's event number (GCN: ``TrigID``).
    """

    notice_type: str
    instrument: str
    messenger: Messenger
    stage: int = 0
    containment: float | None = None
    convention: str | None = None
    systematic_deg: float | None = None
    test: bool = False
    retraction: bool = False
    no_position: str | None = None
    id_prefix: str = ""
    id_param: str = "TrigID"


def gcn_packet_type(event: VOEvent) -> int | None:
    """The ``Packet_Type`` Param as an int, ``None`` when the packet has none."""
    return event.int_value("Packet_Type")


def spec_for(table: Mapping[int, PacketSpec], event: VOEvent) -> tuple[int, PacketSpec]:
    """Look up the packet's ``Packet_Type`` in a mission table.

    Raises
    ------
    SchemaError
        No ``Packet_Type`` Param.
    UnsupportedNoticeType
        A packet type the table does not list.
    """
    packet_type = gcn_packet_type(event)
    if packet_type is None:
        raise SchemaError(f"{event.ivorn}: no Packet_Type Param")
    spec = table.get(packet_type)
    if spec is None:
        raise UnsupportedNoticeType(
            f"VOEvent stream {event.stream} packet type {packet_type} is not handled "
            f"by this parser (known: {sorted(table)})"
        )
    return packet_type, spec


def stage_version(stage: int, serial: int, *, what: str = "serial number") -> int:
    """Version number ``stage * VERSION_STRIDE + serial``.

    Parameters
    ----------
    stage : int
        Localisation stage (0, 1, 2, ...).
    serial : int
        The packet's own serial number within the stage (``0 <= serial <
        VERSION_STRIDE``).
    what : str, optional
        Name of the serial field, for the error message.

    Raises
    ------
    SchemaError
        If ``serial`` is negative or does not fit below :data:`VERSION_STRIDE`.

    Examples
    --------
    >>> stage_version(3, 5)
    3000005
    """
    if not 0 <= serial < VERSION_STRIDE:
        raise SchemaError(f"{what} {serial} outside [0, {VERSION_STRIDE})")
    return stage * VERSION_STRIDE + serial


def _time_scale(event: VOEvent) -> str | None:
    system = event.coord_system()
    if not system:
        return None
    return system.split("-")[0].upper()


def notice_times(
    event: VOEvent, *, trigger_time: datetime | None = None
) -> tuple[datetime, datetime]:
    """Trigger time (``WhereWhen`` ISOTime unless given) and issue time (``Who/Date``).

    Raises
    ------
    SchemaError
        Missing ISOTime or Who/Date, or a time scale other than UTC.
    """
    scale = _time_scale(event)
    if scale is not None and scale not in _TIME_SCALES:
        raise SchemaError(f"time scale {scale} of {event.coord_system()} is not supported")
    if trigger_time is None:
        trigger_time = event.iso_time()
        if trigger_time is None:
            raise SchemaError(f"{event.ivorn}: no WhereWhen ISOTime")
    issue_time = event.who_date()
    if issue_time is None:
        raise SchemaError(f"{event.ivorn}: no Who/Date")
    return trigger_time, issue_time


def role_for(event: VOEvent, *, test: bool = False) -> Role:
    """Role from the VOEvent ``role`` attribute, forced to TEST by a mission test flag.

    Parameters
    ----------
    event : VOEvent
        The packet.
    test : bool, optional
        The mission says the packet is a test (a test packet type, a
        ``Test_Submission`` flag, a mock superevent id, ...).

    Raises
    ------
    UnsupportedNoticeType
        For ``role="prediction"`` or any role outside observation/test/utility.
    """
    role = _ROLES.get(event.role.strip().lower())
    if role is None:
        raise UnsupportedNoticeType(
            f"VOEvent role {event.role!r} is not accepted (observation, test, utility)"
        )
    if test and role is Role.OBSERVATION:
        return Role.TEST
    return role


def _number(value: float | None, what: str, context: str) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value):
        raise BadCoordinates(f"{context}: {what} is {value}")
    return value


def circle_from_position(
    event: VOEvent,
    spec: PacketSpec,
    *,
    context: str,
    no_error_radii: Mapping[float, str] | None = None,
) -> Circle:
    """The mission's error circle from ``WhereWhen``, checked by the module rules.

    Parameters
    ----------
    event : VOEvent
        The packet.
    spec : PacketSpec
        Its packet type (gives containment, convention, systematic).
    context : str
        Names the notice in error messages (event id and notice type).
    no_error_radii : Mapping[float, str], optional
        Radii the mission uses to mean "no error radius", with the sentence to say so.

    Raises
    ------
    NoPosition, BadCoordinates, SchemaError
        As described in the module documentation.
    """
    if spec.containment is None or spec.convention is None:
        raise SchemaError(f"{context}: packet table gives no error convention")
    coords_type = event.int_value("Coords_Type")
    if coords_type == 0:
        label = event.value("Coords_String") or "unavailable"
        raise NoPosition(f"{context}: Coords_Type 0 ({label}): the notice has no position")
    try:
        position = event.position()
    except SchemaError as exc:
        raise BadCoordinates(f"{context}: {exc.message}") from exc
    if position is None or position.ra is None or position.dec is None:
        raise NoPosition(f"{context}: no WhereWhen Position2D")
    unit = (position.unit or "deg").strip().lower()
    if unit not in {"deg", "degree", "degrees"}:
        raise SchemaError(f"{context}: Position2D unit {position.unit!r} is not deg")
    if position.coord_system:
        parts = position.coord_system.upper().split("-")
        if len(parts) < 2 or parts[1] not in _FRAMES:
            raise SchemaError(f"{context}: coordinate system {position.coord_system} not supported")
    ra, _ = check_position(position.ra, position.dec, context)
    radius = _number(position.error_radius, "Error2Radius", context)
    if radius is None:
        raise NoPosition(f"{context}: no Error2Radius at RA={position.ra} Dec={position.dec}")
    for sentinel, sentence in (no_error_radii or {}).items():
        if radius == sentinel:
            raise NoPosition(f"{context}: Error2Radius {radius:g} ({sentence})")
    if radius < 0:
        raise BadCoordinates(f"{context}: negative Error2Radius {radius:g} deg")
    if radius == 0:
        if position.ra == 0 and position.dec == 0:
            raise NoPosition(f"{context}: placeholder position 0,0 with Error2Radius 0")
        raise NoPosition(
            f"{context}: Error2Radius 0 at RA={position.ra} Dec={position.dec}: no error region"
        )
    if radius >= 180.0:
        raise NoPosition(f"{context}: Error2Radius {radius:g} deg covers the whole sky")
    return Circle(
        ra=ra,
        dec=position.dec,
        radius_deg=radius,
        containment=spec.containment,
        systematic_deg=spec.systematic_deg,
        convention=spec.convention,
    )


def citation_extra(event: VOEvent) -> list[dict[str, str]]:
    """Citations as JSON-ready dicts ``{"ivorn", "cite"}``."""
    return [{"ivorn": c.ivorn, "cite": c.cite} for c in event.citations()]


@dataclass(frozen=True)
class NoticeParts:
    """Mission-specific values handed to :func:`make_notice`."""

    event_id: str
    mission: str
    spec: PacketSpec
    version: int
    role: Role
    localisation: Localisation | None
    retraction: bool = False
    trigger_time: datetime | None = None
    significance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def make_notice(event: VOEvent, parts: NoticeParts) -> Notice:
    """Assemble the :class:`Notice` with the shared fields filled the same way.

    ``extra`` receives, besides the mission's own facts, the IVORN ``stream``, the
    ``citations`` and, for archive-form packets, the ``namespace_note``.  ``None``
    values are dropped from ``significance`` and ``extra``.

    Raises
    ------
    SchemaError
        Missing times (see :func:`notice_times`).
    NoPosition
        A non-retraction without localisation.
    """
    trigger_time, issue_time = notice_times(event, trigger_time=parts.trigger_time)
    if parts.localisation is None and not parts.retraction:
        raise NoPosition(f"{parts.event_id} {parts.spec.notice_type}: no localisation")
    extra: dict[str, Any] = {"stream": event.stream}
    citations = citation_extra(event)
    if citations:
        extra["citations"] = citations
    if event.namespace_note:
        extra["namespace_note"] = event.namespace_note
    extra.update(parts.extra)
    return Notice(
        event_id=parts.event_id,
        messenger=parts.spec.messenger,
        mission=parts.mission,
        instrument=parts.spec.instrument,
        notice_type=parts.spec.notice_type,
        role=parts.role,
        trigger_time=trigger_time,
        issue_time=issue_time,
        version=parts.version,
        retraction=parts.retraction,
        localisation=None if parts.retraction else parts.localisation,
        ivorn=event.ivorn,
        significance={k: v for k, v in parts.significance.items() if v is not None},
        extra={k: v for k, v in extra.items() if v is not None},
    )


# --------------------------------------------------------------------------- #
# GCN classic packets (Packet_Type / Pkt_Ser_Num / TrigID)
# --------------------------------------------------------------------------- #


def gcn_event_id(event: VOEvent, spec: PacketSpec) -> str:
    """``"<id_prefix>:<number>"`` from the Param named by ``spec.id_param``.

    Raises
    ------
    SchemaError
        Missing, non-integer or negative event number.
    """
    number = event.require_int(spec.id_param)
    if number < 0:
        raise SchemaError(f"{event.ivorn}: {spec.id_param} {number} is negative")
    return f"{spec.id_prefix}:{number}"


def gcn_stage_version(event: VOEvent, spec: PacketSpec) -> int:
    """:func:`stage_version` of the packet's stage and its ``Pkt_Ser_Num``."""
    return stage_version(spec.stage, event.require_int("Pkt_Ser_Num"), what="Pkt_Ser_Num")


def build_notice(
    event: VOEvent,
    spec: PacketSpec,
    *,
    mission: str,
    event_id: str,
    version: int,
    test: bool = False,
    retraction: bool = False,
    significance: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    no_error_radii: Mapping[float, str] | None = None,
    trigger_time: datetime | None = None,
    localisation: Localisation | None = None,
) -> Notice:
    """The common path of a circle-localised notice (or a retraction).

    The role comes from :func:`role_for` (``test`` or ``spec.test`` force TEST); a
    retraction (``retraction`` or ``spec.retraction``) has no localisation; otherwise
    the localisation is ``localisation`` when given, else the ``WhereWhen`` circle
    checked by :func:`circle_from_position`, and a ``spec.no_position`` type raises
    :class:`NoPosition`.
    """
    context = f"{event_id} {spec.notice_type}"
    role = role_for(event, test=test or spec.test)
    is_retraction = retraction or spec.retraction
    if not is_retraction and localisation is None:
        if spec.no_position:
            raise NoPosition(f"{context}: {spec.no_position}")
        localisation = circle_from_position(
            event, spec, context=context, no_error_radii=no_error_radii
        )
    return make_notice(
        event,
        NoticeParts(
            event_id=event_id,
            mission=mission,
            spec=spec,
            version=version,
            role=role,
            localisation=None if is_retraction else localisation,
            retraction=is_retraction,
            trigger_time=trigger_time,
            significance=dict(significance or {}),
            extra=dict(extra or {}),
        ),
    )


#: How :func:`read_fields` reads one Param: ``(param name, group or None, kind)`` with
#: kind one of ``"float"``, ``"int"``, ``"bool"``, ``"str"``.
Field = tuple[str, str | None, str]


def read_fields(event: VOEvent, fields: Mapping[str, Field]) -> dict[str, Any]:
    """Read several Params into a dict ``{output key: typed value}``.

    Params that are absent or empty are left out.  This is how the mission modules
    declare, as data, which Params become ``significance`` and ``extra`` entries.

    Raises
    ------
    SchemaError
        A value that does not have the declared kind.
    """
    out: dict[str, Any] = {}
    for key, (name, group, kind) in fields.items():
        param = event.param(name, group)
        if param is None:
            continue
        value: Any
        if kind == "float":
            value = param.as_float()
            if value is not None and not math.isfinite(value):
                raise SchemaError(f"Param {name} is {value}")
        elif kind == "int":
            value = param.as_int()
        elif kind == "bool":
            value = param.as_bool()
        else:
            value = param.value or None
        if value is not None:
            out[key] = value
    return out
