"""Named errors of the alert stages.

One class per kind of violation, so that a caller (the Spark wrapper, the replay
command) can route a payload that fails to the right place and keep it, never lose
it. All derive from :class:`AlertError`, itself a :class:`ValueError`: bad input
data, not a bug of ours.
"""

from __future__ import annotations


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
