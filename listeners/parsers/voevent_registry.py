"""The table of VOEvent parsers, and :func:`parse_voevent`, the one entry point.

:data:`REGISTRY` maps ``(format, (stream, packet type))`` to the mission function
that turns a safely parsed :class:`~listeners.parsers.voevent.VOEvent` into a
:class:`~mm_broker.core.models.Notice`:

* ``format`` is ``"voevent"``;
* ``stream`` is the IVORN up to ``#``, e.g. ``"ivo://nasa.gsfc.gcn/Fermi"`` for
  ``ivo://nasa.gsfc.gcn/Fermi#GBM_Fin_Pos...`` or ``"ivo://org.svom/fsc"``;
* ``packet type`` is the ``Packet_Type`` Param (GCN classic numbering, SVOM's own),
  or ``None`` for streams without one (KM3NeT).

It is a plain dict, written out below: adding a notice type means adding a line.
Each function in it has a ``bytes -> Notice`` twin in its module
(``parse_fermi``, ``parse_swift``, ...); the table holds the step after the shared
safe parse so that :func:`parse_voevent` parses each payload once.

A stream/packet type not in the table raises :class:`UnsupportedNoticeType`
naming both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import listeners.parsers.voevent_agile as voevent_agile
import listeners.parsers.voevent_amon as voevent_amon
import listeners.parsers.voevent_fermi as voevent_fermi
import listeners.parsers.voevent_icecube as voevent_icecube
import listeners.parsers.voevent_integral as voevent_integral
import listeners.parsers.voevent_km3net as voevent_km3net
import listeners.parsers.voevent_konus as voevent_konus
import listeners.parsers.voevent_lvk as voevent_lvk
import listeners.parsers.voevent_maxi as voevent_maxi
import listeners.parsers.voevent_snews as voevent_snews
import listeners.parsers.voevent_svom as voevent_svom
import listeners.parsers.voevent_swift as voevent_swift
from listeners.parsers.voevent import VOEvent, load_voevent
from listeners.parsers.voevent_common import gcn_packet_type
from listeners.parsers.xml import DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH, DEFAULT_MAX_ELEMENTS
from mm_broker.core.errors import UnsupportedNoticeType
from mm_broker.core.models import Notice

__all__ = ["FORMAT", "REGISTRY", "NoticeTypeKey", "VOEventParser", "notice_key", "parse_voevent"]

#: Format name of this registry's keys.
FORMAT = "voevent"

#: ``(stream, packet type)``: how a VOEvent says what it is.
NoticeTypeKey = tuple[str, int | None]
#: A mission parser: safely parsed VOEvent in, Notice out.
VOEventParser = Callable[[VOEvent], Notice]

_GCN = "ivo://nasa.gsfc.gcn"
_FERMI = f"{_GCN}/Fermi"
_SWIFT = f"{_GCN}/SWIFT"
_INTEGRAL = f"{_GCN}/INTEGRAL"
_AMON = f"{_GCN}/AMON"
_MAXI = f"{_GCN}/MAXI"
_AGILE = f"{_GCN}/AGILE"
_KONUS = f"{_GCN}/KONUS"
_SNEWS = f"{_GCN}/SNEWS"
_LVC = "ivo://gwnet/LVC"
_LVC_O2 = "ivo://gwnet/gcn_sender"
_SVOM = "ivo://org.svom/fsc"
_KM3NET = "ivo://KM3NeT_Neutrino"

#: The explicit table: ``(format, (stream, packet type)) -> parser``.
REGISTRY: dict[tuple[str, NoticeTypeKey], VOEventParser] = {
    # Fermi GBM
    ("voevent", (_FERMI, 110)): voevent_fermi.from_voevent,  # FERMI_GBM_ALERT
    ("voevent", (_FERMI, 111)): voevent_fermi.from_voevent,  # FERMI_GBM_FLT_POS
    ("voevent", (_FERMI, 112)): voevent_fermi.from_voevent,  # FERMI_GBM_GND_POS
    ("voevent", (_FERMI, 115)): voevent_fermi.from_voevent,  # FERMI_GBM_FIN_POS
    ("voevent", (_FERMI, 119)): voevent_fermi.from_voevent,  # FERMI_GBM_POS_TEST
    ("voevent", (_FERMI, 131)): voevent_fermi.from_voevent,  # FERMI_GBM_SUBTHRESH
    # Fermi LAT
    ("voevent", (_FERMI, 120)): voevent_fermi.from_voevent,  # FERMI_LAT_POS_INI
    ("voevent", (_FERMI, 121)): voevent_fermi.from_voevent,  # FERMI_LAT_POS_UPD
    ("voevent", (_FERMI, 122)): voevent_fermi.from_voevent,  # FERMI_LAT_POS_DIAG
    ("voevent", (_FERMI, 124)): voevent_fermi.from_voevent,  # FERMI_LAT_POS_TEST
    ("voevent", (_FERMI, 125)): voevent_fermi.from_voevent,  # FERMI_LAT_MONITOR
    ("voevent", (_FERMI, 127)): voevent_fermi.from_voevent,  # FERMI_LAT_GND
    ("voevent", (_FERMI, 128)): voevent_fermi.from_voevent,  # FERMI_LAT_OFFLINE
    # Swift
    ("voevent", (_SWIFT, 61)): voevent_swift.from_voevent,  # SWIFT_BAT_GRB_POS_ACK
    ("voevent", (_SWIFT, 63)): voevent_swift.from_voevent,  # SWIFT_BAT_GRB_LC
    ("voevent", (_SWIFT, 65)): voevent_swift.from_voevent,  # SWIFT_FOM_OBS
    ("voevent", (_SWIFT, 66)): voevent_swift.from_voevent,  # SWIFT_SC_SLEW
    ("voevent", (_SWIFT, 67)): voevent_swift.from_voevent,  # SWIFT_XRT_POSITION
    ("voevent", (_SWIFT, 81)): voevent_swift.from_voevent,  # SWIFT_UVOT_POS
    ("voevent", (_SWIFT, 82)): voevent_swift.from_voevent,  # SWIFT_BAT_GRB_POS_TEST
    ("voevent", (_SWIFT, 84)): voevent_swift.from_voevent,  # SWIFT_BAT_TRANS
    ("voevent", (_SWIFT, 97)): voevent_swift.from_voevent,  # SWIFT_BAT_QL_POS
    # INTEGRAL
    ("voevent", (_INTEGRAL, 53)): voevent_integral.from_voevent,  # INTEGRAL_WAKEUP
    ("voevent", (_INTEGRAL, 54)): voevent_integral.from_voevent,  # INTEGRAL_REFINED
    ("voevent", (_INTEGRAL, 55)): voevent_integral.from_voevent,  # INTEGRAL_OFFLINE
    ("voevent", (_INTEGRAL, 56)): voevent_integral.from_voevent,  # INTEGRAL_WEAK
    # IceCube single neutrinos (on the AMON stream)
    ("voevent", (_AMON, 173)): voevent_icecube.from_voevent,  # ICECUBE_ASTROTRACK_GOLD
    ("voevent", (_AMON, 174)): voevent_icecube.from_voevent,  # ICECUBE_ASTROTRACK_BRONZE
    ("voevent", (_AMON, 176)): voevent_icecube.from_voevent,  # ICECUBE_CASCADE
    # AMON
    ("voevent", (_AMON, 157)): voevent_amon.from_voevent,  # AMON_ICECUBE_COINC
    ("voevent", (_AMON, 158)): voevent_amon.from_voevent,  # AMON_ICECUBE_HESE
    ("voevent", (_AMON, 169)): voevent_amon.from_voevent,  # AMON_ICECUBE_EHE
    ("voevent", (_AMON, 172)): voevent_amon.from_voevent,  # AMON_NU_EM_COINC
    # MAXI
    ("voevent", (_MAXI, 134)): voevent_maxi.from_voevent,  # MAXI_UNKNOWN
    ("voevent", (_MAXI, 135)): voevent_maxi.from_voevent,  # MAXI_KNOWN
    ("voevent", (_MAXI, 136)): voevent_maxi.from_voevent,  # MAXI_TEST
    # AGILE, Konus-Wind, SNEWS
    ("voevent", (_AGILE, 105)): voevent_agile.from_voevent,  # AGILE_MCAL_ALERT
    ("voevent", (_KONUS, 59)): voevent_konus.from_voevent,  # KONUS_LC
    ("voevent", (_SNEWS, 149)): voevent_snews.from_voevent,  # SNEWS
    # LVK (classic VOEvents; O3-O4 stream and the O2 sender)
    ("voevent", (_LVC, 150)): voevent_lvk.from_voevent,  # PRELIMINARY
    ("voevent", (_LVC, 151)): voevent_lvk.from_voevent,  # INITIAL
    ("voevent", (_LVC, 152)): voevent_lvk.from_voevent,  # UPDATE
    ("voevent", (_LVC, 163)): voevent_lvk.from_voevent,  # EARLYWARNING
    ("voevent", (_LVC, 164)): voevent_lvk.from_voevent,  # RETRACTION
    ("voevent", (_LVC_O2, 150)): voevent_lvk.from_voevent,
    ("voevent", (_LVC_O2, 151)): voevent_lvk.from_voevent,
    ("voevent", (_LVC_O2, 152)): voevent_lvk.from_voevent,
    ("voevent", (_LVC_O2, 164)): voevent_lvk.from_voevent,
    # SVOM (French Science Center)
    ("voevent", (_SVOM, 201)): voevent_svom.from_voevent,  # GRM trigger
    ("voevent", (_SVOM, 202)): voevent_svom.from_voevent,  # ECLAIRs wake-up
    ("voevent", (_SVOM, 203)): voevent_svom.from_voevent,  # ECLAIRs catalogue source
    ("voevent", (_SVOM, 204)): voevent_svom.from_voevent,  # slewing
    ("voevent", (_SVOM, 205)): voevent_svom.from_voevent,  # not slewing
    ("voevent", (_SVOM, 209)): voevent_svom.from_voevent,  # MXT initial
    ("voevent", (_SVOM, 210)): voevent_svom.from_voevent,  # MXT update
    ("voevent", (_SVOM, 219)): voevent_svom.from_voevent,  # retraction
    # KM3NeT (no Packet_Type)
    ("voevent", (_KM3NET, None)): voevent_km3net.from_voevent,
}


def notice_key(event: VOEvent) -> NoticeTypeKey:
    """The registry key of a parsed VOEvent: ``(stream, Packet_Type or None)``."""
    return (event.stream, gcn_packet_type(event))


def parse_voevent(
    payload: bytes,
    topic: str | None = None,
    *,
    strict_namespace: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> Notice:
    """Parse a VOEvent payload safely, find its notice type and dispatch.

    Parameters
    ----------
    payload : bytes
        Raw payload as received.
    topic : str or None, optional
        Transport topic or source it came from (e.g.
        ``"gcn.classic.voevent.FERMI_GBM_FIN_POS"``); recorded as
        ``extra["topic"]`` and used in error messages.  The notice type is always
        taken from the packet itself.
    strict_namespace : bool, optional
        Refuse voevent-parse's namespace-less archive form too (see
        :mod:`listeners.parsers.voevent`).
    max_bytes, max_depth, max_elements : int, optional
        Safety limits of :func:`listeners.parsers.xml.parse_xml`.

    Returns
    -------
    Notice

    Raises
    ------
    NoticeError
        One of its named subclasses: :class:`UnsafeXML`, :class:`MalformedPayload`,
        :class:`UnsupportedFormat`, :class:`UnsupportedNoticeType`,
        :class:`SchemaError`, :class:`NoPosition`, :class:`BadCoordinates`.
    """
    event = load_voevent(
        payload,
        strict_namespace=strict_namespace,
        max_bytes=max_bytes,
        max_depth=max_depth,
        max_elements=max_elements,
    )
    stream, packet_type = notice_key(event)
    parser = REGISTRY.get((FORMAT, (stream, packet_type)))
    if parser is None:
        where = f" (topic {topic})" if topic else ""
        what = "no Packet_Type" if packet_type is None else f"packet type {packet_type}"
        raise UnsupportedNoticeType(
            f"no parser for VOEvent stream {stream} with {what}{where}: {event.ivorn}"
        )
    notice = parser(event)
    if topic:
        notice = dataclasses.replace(notice, extra={**notice.extra, "topic": topic})
    return notice
