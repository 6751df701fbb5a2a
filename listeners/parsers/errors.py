"""Named parsing errors: one class per kind of violation.

Each error carries a short machine-readable ``reason`` code (stored in the raw
journal's ``reason`` column together with the message) so that an operator can
count rejections by kind.
"""

from __future__ import annotations


class NoticeError(ValueError):
    """Base class: a payload could not become a :class:`mm_broker.models.Notice`."""

    reason = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class MalformedPayload(NoticeError):
    """Not well-formed XML/JSON, truncated, or not valid base64."""

    reason = "malformed"


class UnsafeXML(NoticeError):
    """DTDs, entity declarations (entity bombs), external entities, oversized trees."""

    reason = "unsafe_xml"


class UnsupportedFormat(NoticeError):
    """A format we recognise but do not accept: VOEvent 1.1, a packet without namespace."""

    reason = "unsupported_format"


class UnsupportedNoticeType(NoticeError):
    """A well-formed notice of a type no parser is registered for."""

    reason = "unsupported_type"


class SchemaError(NoticeError):
    """A required key/element is missing or has the wrong type."""

    reason = "schema"


class NoPosition(NoticeError):
    """The notice has no usable localisation (and is not a retraction)."""

    reason = "no_position"


class BadCoordinates(NoticeError):
    """NaN, infinite or out-of-range coordinates, or an impossible error radius."""

    reason = "bad_coordinates"


class BadSkyMap(NoticeError):
    """A sky map that cannot be decoded, is empty, too large, or does not normalise."""

    reason = "bad_skymap"
