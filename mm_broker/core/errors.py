"""Every error class of mm_broker, one class per kind of violation.

Notice errors (parsing and geometry) come first, then alert and catalogue errors,
then configuration errors.

Each error carries a short machine-readable ``reason`` code (stored in the raw
journal's ``reason`` column together with the message) so that an operator can
count rejections by kind.
"""

from __future__ import annotations


class NoticeError(ValueError):
    """Base class: a payload could not become a :class:`mm_broker.core.models.Notice`."""

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


class SkymapFetchError(NoticeError):
    """A sky map linked by a notice could not be fetched: a URL outside the allowed
    hosts or schemes, a redirect leaving them, an HTTP error, a timeout, a map over
    the size limit, a body that is not FITS. ``retryable`` says whether trying again
    later may succeed (a timeout or a 5xx may; a refused host, a 404 or an oversized
    map will not)."""

    reason = "skymap_fetch"

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class StoreRejected(NoticeError):
    """A parsed notice holds a value the database refuses."""

    reason = "store"


class InternalError(NoticeError):
    """Parsing or building the region failed with an unexpected exception: a bug of
    ours, logged with its traceback. The payload stays in the journal, rejected with
    this reason, and the listener goes on (a payload must never stop a daemon, and
    ``recover_pending`` would otherwise meet it again at every start)."""

    reason = "internal"


# --------------------------------------------------------------------------- #
# Alert and catalogue input (fink_core)
# --------------------------------------------------------------------------- #



class AlertError(ValueError):
    """Base class of every error raised on bad alert or catalogue input."""


class CorruptAlert(AlertError):
    """The payload is not a readable Avro alert (truncated, garbled, wrong framing).

    Parameters
    ----------
    reason : str
        What was wrong, in words.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"corrupt alert: {reason}")
        self.reason = reason


class UnknownSchema(AlertError):
    """The alert decodes but its schema version is not one we know how to flatten.

    Parameters
    ----------
    survey : str or None
        ``"ztf"``, ``"lsst"``, or None when the layout matches no survey.
    version : str or None
        The schema version the packet declares (None when it declares none).
    """

    def __init__(self, survey: str | None, version: str | None) -> None:
        what = survey if survey is not None else "unrecognised alert layout"
        ver = version if version is not None else "no version declared"
        super().__init__(f"unknown alert schema: {what}, version {ver}")
        self.survey = survey
        self.version = version


class CatalogueFormatError(AlertError):
    """A catalogue file cannot be used: unknown format or no usable ra/dec columns."""


# --------------------------------------------------------------------------- #
# Configuration
# --------------------------------------------------------------------------- #


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


# --------------------------------------------------------------------------- #
# Transports and the store
# --------------------------------------------------------------------------- #


class StoreUnavailable(RuntimeError):
    """The store cannot be reached right now (a transient outage, not bad input).

    Raised by a listener's handler when nothing could be journaled: the transport
    retries with backoff and acknowledges nothing meanwhile. The message says what
    was unreachable and why (e.g. ``database unavailable (connection refused)``).
    """


# --------------------------------------------------------------------------- #
# Local services
# --------------------------------------------------------------------------- #


class ServiceError(RuntimeError):
    """A local service (``mm-broker services``) could not be started, reached or stopped."""


# --------------------------------------------------------------------------- #
# Geometry (skymaps)
# --------------------------------------------------------------------------- #


class ConventionError(NoticeError):
    """A localisation names an unknown convention or one that does not apply to it."""

    reason = "convention"


# --------------------------------------------------------------------------- #
# Alert archive (fink_core)
# --------------------------------------------------------------------------- #


class CompactionError(RuntimeError):
    """The archive cannot be compacted safely (the message says why)."""


# --------------------------------------------------------------------------- #
# Publishing (publishers, the counterpart flow)
# --------------------------------------------------------------------------- #


class DeliveryError(RuntimeError):
    """Kafka did not confirm every record of a publication (retried later)."""


class InvalidRecord(ValueError):
    """A record that may not be published, with the field at fault.

    Attributes
    ----------
    field : str
        Name of the offending field.
    reason : str
        What is wrong with it.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class VTPError(RuntimeError):
    """The broker could not be reached, timed out or answered something unreadable."""


class PublishError(RuntimeError):
    """The producer cannot go on (fatal Kafka error, topics cannot be created)."""


class UnknownRecordSchema(LookupError):
    """A record schema name or file that is not one of ``publishers/schemas/``
    (``publishers.schema.UnknownSchema``)."""


class IncompatibleSchema(ValueError):
    """A new schema version breaks the evolution rule (see :attr:`problems`)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("incompatible schema change:\n  " + "\n  ".join(problems))
        self.problems = problems


class InvalidVOEvent(ValueError):
    """A VOEvent that may not be sent: not valid VOEvent 2.0, bad IVORN, too large, or
    built from unusable records."""


class ConsumeError(RuntimeError):
    """The topic cannot be read or a message cannot be decoded."""


class TopicNotFound(ConsumeError):
    """The topic does not exist (nothing was ever published to it)."""


# --------------------------------------------------------------------------- #
# Services and set-up
# --------------------------------------------------------------------------- #


class JarFetchError(RuntimeError):
    """Maven could not resolve or download the requested artifacts."""


# --------------------------------------------------------------------------- #
# Application commands
# --------------------------------------------------------------------------- #


class DatasetError(ValueError):
    """A pointer in the data set does not resolve to the file it names."""


class PlotError(LookupError):
    """The event is unknown or has no active region."""
