"""The check every VOEvent of ours passes before it leaves the process.

:func:`check`: valid VOEvent 2.0 (:func:`voeventparse.valid_as_v2_0`), an IVORN with a
local ID as Comet requires, and at most :data:`MAX_BYTES` bytes (Comet's VTP limit).
Both the builders (:mod:`publishers.voevent_build`) and the VTP client
(:mod:`publishers.vtp`) call it.

Examples
--------
>>> check(b"<not a voevent/>")
Traceback (most recent call last):
...
mm_broker.core.errors.InvalidVOEvent: not a VOEvent 2.0 document: ...
"""

from __future__ import annotations

import re

from lxml import etree

from mm_broker.core.errors import InvalidVOEvent
from publishers.voeventparse_compat import vp

#: Largest VOEvent Comet accepts over VTP (Twisted's Int32StringReceiver.MAX_LENGTH).
MAX_BYTES = 99_999

#: Comet's IVORN rule: authority, resource key, and a per-event local ID.
_IVORN_RE = re.compile(r"^ivo://[A-Za-z0-9][\w\-.~*'()]{2,}(/[\w\-.~*'()/]*)?"
                       r"#[\w\-.~*'()+=/%!$&,;:@?]+$")
_SAFE = "-._~!$&'()*+,;=:@"  # kept as is in the local ID; '/' and the rest are %-encoded


def check(xml: bytes) -> str:
    """Check a serialised VOEvent before it is sent; return its IVORN.

    Raises
    ------
    InvalidVOEvent
        If it is not valid VOEvent 2.0 (:func:`voeventparse.valid_as_v2_0`), its
        IVORN has no local ID, or it is larger than Comet accepts.
    """
    if len(xml) > MAX_BYTES:
        raise InvalidVOEvent(f"VOEvent of {len(xml)} bytes exceeds the {MAX_BYTES}-byte "
                             "VTP limit of Comet")
    try:
        v = vp.loads(xml)
    except KeyError as exc:
        raise InvalidVOEvent(f"not a VOEvent 2.0 document: no attribute {exc}") from exc
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise InvalidVOEvent(f"not a VOEvent 2.0 document: {exc}") from exc
    ivorn = str(v.attrib.get("ivorn", ""))
    if not vp.valid_as_v2_0(v):
        try:
            vp.assert_valid_as_v2_0(v)
            reason = "schema validation failed"
        except etree.DocumentInvalid as exc:
            reason = str(exc)
        raise InvalidVOEvent(f"{ivorn or 'VOEvent'} is not valid VOEvent 2.0: {reason}")
    if not _IVORN_RE.match(ivorn):
        raise InvalidVOEvent(f"IVORN {ivorn!r} is not ivo://authority/resource#local-id")
    return ivorn

