"""Typed readers for VOEvent 2.0 packets, on the safe XML parser.

:func:`load_voevent` parses a payload with :func:`listeners.parsers.xml.parse_xml`
(size, declaration, depth and element limits), checks that the document is a VOEvent 2.0 packet and
returns a :class:`VOEvent` reader with helpers for Params (top level and in Groups)
as typed values, the WhereWhen position and time, Who/Date, the Citations and the
role.

Namespace policy
----------------
A VOEvent 1.1 packet (``version="1.1"`` or the v1.1 namespace) is refused with
``UnsupportedFormat("VOEvent 1.1")``.  A root ``<VOEvent>`` without the VOEvent 2.0
namespace is refused with ``UnsupportedFormat("no namespace ...")``, with one
exception, recognised exactly: the in-memory form of voevent-parse
(``voeventparse.loads`` removes the root prefix and records it in an
``<original_prefix>`` child) written out without ``voeventparse.dumps``.  Archives
such as fink-mm's notice store hold VOEvents in that form (for instance the January
2024 GCN notices of ``triggers/voevents/fink-mm_2024-01``).  Such a packet is accepted
when it says ``version="2.0"``; the marker element is removed and
:attr:`VOEvent.namespace_note` records what was done.  ``strict_namespace=True``
refuses it as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree  # noqa: S410 - trees come from parse_xml, hardened there

from listeners.parsers.xml import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_ELEMENTS,
    parse_xml,
)
from mm_broker.core.errors import (
    SchemaError,
    UnsupportedFormat,
)

__all__ = [
    "VOEVENT_NS",
    "VOEVENT_NS_V11",
    "Citation",
    "Group",
    "Param",
    "Position",
    "VOEvent",
    "load_voevent",
    "parse_utc",
]

#: Namespace of VOEvent 2.0 (the only version accepted).
VOEVENT_NS = "http://www.ivoa.net/xml/VOEvent/v2.0"
#: Namespace of VOEvent 1.1 (recognised to be refused by name).
VOEVENT_NS_V11 = "http://www.ivoa.net/xml/VOEvent/v1.1"

_VOEPARSE_MARKER = "original_prefix"


# --------------------------------------------------------------------------- #
# Values
# --------------------------------------------------------------------------- #


def parse_utc(text: str, *, what: str = "time") -> datetime:
    """Parse an ISO 8601 time as a timezone-aware UTC :class:`datetime`.

    A time without offset is taken as UTC (VOEvent times are UTC by their
    coordinate system); a time with an offset is converted to UTC.

    Parameters
    ----------
    text : str
        ISO 8601 string, e.g. ``"2022-08-30T17:00:17.49"`` or ``"...Z"``.
    what : str, optional
        Name of the field, for the error message.

    Raises
    ------
    SchemaError
        If ``text`` is not an ISO 8601 date-time.

    Examples
    --------
    >>> parse_utc("2022-08-30T17:00:17.49")
    datetime.datetime(2022, 8, 30, 17, 0, 17, 490000, tzinfo=datetime.timezone.utc)
    """
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise SchemaError(f"{what} {value!r} is not an ISO 8601 date-time") from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _float(text: str | None, what: str) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise SchemaError(f"{what} {text.strip()!r} is not a number") from exc


_TRUE = frozenset({"true", "1", "yes", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "f", "n"})


@dataclass(frozen=True)
class Param:
    """One VOEvent ``<Param>``: name, raw value and its declared metadata."""

    name: str
    value: str | None
    unit: str | None = None
    ucd: str | None = None
    data_type: str | None = None

    def as_float(self) -> float | None:
        """Value as a float (``None`` when empty); :class:`SchemaError` if not numeric."""
        return _float(self.value, f"Param {self.name}")

    def as_int(self) -> int | None:
        """Value as an int; accepts ``0x`` hexadecimal; :class:`SchemaError` otherwise."""
        if self.value is None or not self.value.strip():
            return None
        text = self.value.strip()
        try:
            return int(text, 16) if text.lower().startswith("0x") else int(text)
        except ValueError as exc:
            raise SchemaError(f"Param {self.name} {text!r} is not an integer") from exc

    def as_bool(self) -> bool | None:
        """Value as a bool (true/false/1/0/yes/no, any case); :class:`SchemaError` otherwise."""
        if self.value is None or not self.value.strip():
            return None
        text = self.value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise SchemaError(f"Param {self.name} {self.value.strip()!r} is not a boolean")

    def typed(self) -> str | int | float | bool | None:
        """Value converted by its ``dataType`` attribute (string when none is declared)."""
        kind = (self.data_type or "string").lower()
        if kind in {"int", "long", "short"}:
            return self.as_int()
        if kind in {"float", "double"}:
            return self.as_float()
        if kind == "boolean":
            return self.as_bool()
        return self.value


@dataclass(frozen=True)
class Group:
    """One ``<What><Group>``: its ``name`` and ``type`` attributes and its Params."""

    name: str | None
    type: str | None
    params: Mapping[str, Param]

    def value(self, name: str) -> str | None:
        """Raw value of Param ``name`` in this group, or ``None``."""
        param = self.params.get(name)
        return None if param is None else param.value


@dataclass(frozen=True)
class Position:
    """The ``WhereWhen`` Position2D as written (numbers not yet validated).

    Attributes
    ----------
    ra, dec : float or None
        ``C1`` and ``C2`` (``None`` when the element is empty or missing).
    error_radius : float or None
        ``Error2Radius`` (``None`` when absent).
    unit : str or None
        ``Position2D/@unit``.
    coord_system : str or None
        ``AstroCoords/@coord_system_id``, e.g. ``"UTC-FK5-GEO"``.
    """

    ra: float | None
    dec: float | None
    error_radius: float | None
    unit: str | None
    coord_system: str | None


@dataclass(frozen=True)
class Citation:
    """A ``<Citations><EventIVORN cite=...>``: the cited IVORN and the relation."""

    ivorn: str
    cite: str


def _text(element: etree._Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    text = element.text.strip()
    return text or None


def _param(element: etree._Element) -> Param | None:
    name = element.get("name")
    if not name:
        return None
    value = element.get("value")
    return Param(
        name=name,
        value=None if value is None else value.strip(),
        unit=element.get("unit"),
        ucd=element.get("ucd"),
        data_type=element.get("dataType"),
    )


@dataclass(frozen=True, eq=False)
class VOEvent:
    """A parsed VOEvent 2.0 packet with typed accessors.

    Build it with :func:`load_voevent`.

    Attributes
    ----------
    ivorn : str
        The packet's IVORN (``ivo://authority/stream#local-id``).
    role : str
        The ``role`` attribute (``"observation"`` when absent, the VOEvent default).
    params : Mapping[str, Param]
        Top-level ``<What><Param>`` elements by name.
    groups : tuple of Group
        ``<What><Group>`` elements in document order.
    namespace_note : str or None
        Set when the packet was accepted in voevent-parse's archive form (see the
        module documentation).
    """

    ivorn: str
    role: str
    params: Mapping[str, Param]
    groups: tuple[Group, ...]
    root: etree._Element = field(repr=False)
    namespace_note: str | None = None

    # -- identity ---------------------------------------------------------- #

    @property
    def stream(self) -> str:
        """IVORN without its local part, e.g. ``"ivo://nasa.gsfc.gcn/Fermi"``."""
        return self.ivorn.split("#", 1)[0]

    @property
    def local_id(self) -> str:
        """IVORN part after ``#`` (empty when there is none)."""
        parts = self.ivorn.split("#", 1)
        return parts[1] if len(parts) == 2 else ""

    # -- Params ------------------------------------------------------------ #

    def group(self, name: str) -> Group | None:
        """First group whose ``name`` (or, failing that, ``type``) is ``name``."""
        for group in self.groups:
            if group.name == name:
                return group
        for group in self.groups:
            if group.type == name:
                return group
        return None

    def groups_of_type(self, type_: str) -> tuple[Group, ...]:
        """All groups with ``type`` attribute ``type_``."""
        return tuple(group for group in self.groups if group.type == type_)

    def param(self, name: str, group: str | None = None) -> Param | None:
        """Param ``name`` at top level, or inside group ``group`` when given."""
        if group is None:
            return self.params.get(name)
        found = self.group(group)
        return None if found is None else found.params.get(name)

    def value(self, name: str, group: str | None = None) -> str | None:
        """Raw (stripped) value of a Param, or ``None`` when absent or empty."""
        param = self.param(name, group)
        if param is None or param.value is None or param.value == "":
            return None
        return param.value

    def float_value(self, name: str, group: str | None = None) -> float | None:
        """Param value as float, ``None`` when absent; :class:`SchemaError` if not numeric."""
        param = self.param(name, group)
        return None if param is None else param.as_float()

    def int_value(self, name: str, group: str | None = None) -> int | None:
        """Param value as int, ``None`` when absent; :class:`SchemaError` if not an int."""
        param = self.param(name, group)
        return None if param is None else param.as_int()

    def bool_value(self, name: str, group: str | None = None) -> bool | None:
        """Param value as bool, ``None`` when absent; :class:`SchemaError` if not a bool."""
        param = self.param(name, group)
        return None if param is None else param.as_bool()

    def require(self, name: str, group: str | None = None) -> str:
        """Raw value of a Param that must be present; :class:`SchemaError` otherwise."""
        value = self.value(name, group)
        if value is None:
            where = f" in Group {group}" if group else ""
            raise SchemaError(f"required Param {name}{where} is missing or empty")
        return value

    def require_int(self, name: str, group: str | None = None) -> int:
        """Param that must be present and an integer."""
        self.require(name, group)
        value = self.int_value(name, group)
        assert value is not None  # present: checked by require()
        return value

    # -- Who / WhereWhen / Citations ---------------------------------------- #

    def who_date(self) -> datetime | None:
        """``Who/Date`` as UTC datetime (``None`` when absent)."""
        text = _text(self.root.find("Who/Date"))
        return None if text is None else parse_utc(text, what="Who/Date")

    def _astro_coords(self) -> etree._Element | None:
        return self.root.find("WhereWhen/ObsDataLocation/ObservationLocation/AstroCoords")

    def coord_system(self) -> str | None:
        """``coord_system_id`` of the observation location, e.g. ``"UTC-ICRS-GEO"``."""
        coords = self._astro_coords()
        if coords is not None and coords.get("coord_system_id"):
            return coords.get("coord_system_id")
        system = self.root.find("WhereWhen/ObsDataLocation/ObservationLocation/AstroCoordSystem")
        return None if system is None else system.get("id")

    def iso_time(self) -> datetime | None:
        """``WhereWhen`` ``TimeInstant/ISOTime`` as UTC datetime (``None`` when absent)."""
        coords = self._astro_coords()
        if coords is None:
            return None
        text = _text(coords.find("Time/TimeInstant/ISOTime"))
        return None if text is None else parse_utc(text, what="WhereWhen ISOTime")

    def position(self) -> Position | None:
        """``WhereWhen`` ``Position2D`` as written, or ``None`` when there is none.

        Raises
        ------
        SchemaError
            If C1, C2 or Error2Radius is present but not a number.
        """
        coords = self._astro_coords()
        if coords is None:
            return None
        pos = coords.find("Position2D")
        if pos is None:
            return None
        return Position(
            ra=_float(_text(pos.find("Value2/C1")), "Position2D C1"),
            dec=_float(_text(pos.find("Value2/C2")), "Position2D C2"),
            error_radius=_float(_text(pos.find("Error2Radius")), "Error2Radius"),
            unit=pos.get("unit"),
            coord_system=self.coord_system(),
        )

    def citations(self) -> tuple[Citation, ...]:
        """All ``Citations/EventIVORN`` with their ``cite`` relation."""
        found = []
        for element in self.root.findall("Citations/EventIVORN"):
            ivorn = _text(element)
            if ivorn is not None:
                found.append(Citation(ivorn=ivorn, cite=(element.get("cite") or "").strip()))
        return tuple(found)

    def description(self) -> str | None:
        """Top-level or ``What`` description text, if any."""
        return _text(self.root.find("What/Description")) or _text(self.root.find("Description"))


def _strip_voevent_namespace(root: etree._Element) -> None:
    prefix = "{" + VOEVENT_NS + "}"
    for element in root.iter():
        tag = element.tag
        if isinstance(tag, str) and tag.startswith(prefix):
            element.tag = tag[len(prefix) :]


def _check_root(root: etree._Element, *, strict_namespace: bool) -> str | None:
    """Check the root is a VOEvent 2.0 element; return a note if the namespace was restored."""
    qname = etree.QName(root)
    if qname.localname != "VOEvent":
        raise UnsupportedFormat(f"not a VOEvent: root element is <{qname.localname}>")
    version = (root.get("version") or "").strip()
    if qname.namespace == VOEVENT_NS_V11 or version == "1.1":
        raise UnsupportedFormat("VOEvent 1.1: only VOEvent 2.0 is accepted")
    note = None
    if qname.namespace is None:
        marker = root.find(_VOEPARSE_MARKER)
        if marker is None or strict_namespace:
            raise UnsupportedFormat(
                f"no namespace: root <VOEvent> is not in the VOEvent 2.0 namespace {VOEVENT_NS}"
                + (
                    " (voevent-parse archive form refused in strict mode)"
                    if marker is not None
                    else ""
                )
            )
        root.remove(marker)
        note = (
            "namespace-less voevent-parse archive form (<original_prefix> marker) "
            "read as VOEvent 2.0"
        )
    elif qname.namespace != VOEVENT_NS:
        raise UnsupportedFormat(f"unknown VOEvent namespace {qname.namespace!r}")
    if version != "2.0":
        raise UnsupportedFormat(f"VOEvent version {version!r}: only 2.0 is accepted")
    return note


def load_voevent(
    payload: bytes,
    *,
    strict_namespace: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> VOEvent:
    """Parse a VOEvent 2.0 payload safely and return a :class:`VOEvent` reader.

    Parameters
    ----------
    payload : bytes
        Raw payload.
    strict_namespace : bool, optional
        Also refuse voevent-parse's namespace-less archive form (see the module
        documentation).  Default ``False``.
    max_bytes, max_depth, max_elements : int, optional
        Limits passed to :func:`parse_xml`.

    Raises
    ------
    UnsafeXML, MalformedPayload
        From :func:`parse_xml`.
    UnsupportedFormat
        Not a VOEvent, VOEvent 1.1, no (or an unknown) namespace, version not 2.0.
    SchemaError
        No ``ivorn`` attribute, or an IVORN that is not ``ivo://...``.
    """
    root = parse_xml(payload, max_bytes=max_bytes, max_depth=max_depth, max_elements=max_elements)
    note = _check_root(root, strict_namespace=strict_namespace)
    _strip_voevent_namespace(root)
    ivorn = (root.get("ivorn") or "").strip()
    if not ivorn:
        raise SchemaError("VOEvent has no ivorn attribute")
    if not ivorn.startswith("ivo://"):
        raise SchemaError(f"IVORN {ivorn!r} does not start with ivo://")
    params: dict[str, Param] = {}
    groups: list[Group] = []
    what = root.find("What")
    if what is not None:
        for child in what:
            if child.tag == "Param":
                param = _param(child)
                if param is not None and param.name not in params:
                    params[param.name] = param
            elif child.tag == "Group":
                inner: dict[str, Param] = {}
                for element in child.iter("Param"):
                    param = _param(element)
                    if param is not None and param.name not in inner:
                        inner[param.name] = param
                groups.append(Group(name=child.get("name"), type=child.get("type"), params=inner))
    return VOEvent(
        ivorn=ivorn,
        role=(root.get("role") or "observation").strip(),
        params=params,
        groups=tuple(groups),
        root=root,
        namespace_note=note,
    )
