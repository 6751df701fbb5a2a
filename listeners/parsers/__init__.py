"""Parsers: pure functions ``bytes -> Notice``, chosen by an explicit registry.

:func:`parse` looks at the payload's first byte to choose the format (VOEvent XML or
JSON), then the format's registry (``voevent_registry``, ``json_registry``) chooses the
mission parser from the notice type. Nothing is discovered by glob or import magic.
Every failure is a :class:`mm_broker.core.errors.NoticeError` subclass with a
specific reason.
"""

from __future__ import annotations

from mm_broker.core.errors import MalformedPayload, NoticeError, SchemaError
from mm_broker.core.models import Notice

from .json_registry import parse_json
from .voevent_registry import parse_voevent

#: Versions are stored as 64-bit signed integers.
_MAX_VERSION = 2**63 - 1


def _checked(notice: Notice) -> Notice:
    """Invariants every parser's Notice must hold, whatever the mission."""
    if not 0 <= notice.version <= _MAX_VERSION:
        raise SchemaError(f"notice version {notice.version} is outside [0, 2**63)")
    return notice

__all__ = ["parse", "NoticeError"]


def parse(payload: bytes, topic: str | None = None) -> Notice:
    """Parse one notice payload.

    Parameters
    ----------
    payload : bytes
        The bytes as received (XML VOEvent or JSON).
    topic : str, optional
        Kafka topic (or VTP stream) the payload came from; chooses the parser when the
        payload alone is ambiguous.

    Returns
    -------
    Notice

    Raises
    ------
    NoticeError
        A subclass naming the kind of violation.
    """
    head = payload.lstrip()[:1]
    if head == b"<":
        return _checked(parse_voevent(payload, topic))
    if head in (b"{", b"["):
        return _checked(parse_json(payload, topic))
    if not head:
        raise MalformedPayload("empty payload")
    raise MalformedPayload(f"neither XML nor JSON (starts with {payload[:16]!r})")
