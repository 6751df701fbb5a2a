"""The oracles: what counts as an acceptable outcome of a case, per target.

Each case ends in one *kind*: ``Notice``, ``NoticeError:<reason>`` (the reason codes
of :mod:`mm_broker.core.errors`, and ``convention`` of :mod:`skymaps.conventions`),
``Alert``, ``CorruptAlert`` or ``UnknownSchema`` (:data:`KNOWN_KINDS`). A notice that
parses also gets a region outcome (:data:`KNOWN_REGION_KINDS`). A *failure*
(:class:`Failure`) is anything else:

* ``uncaught``: an exception other than those (it would stop a daemon, or fail a
  whole Spark micro-batch);
* ``invariant``: a Notice or Region the store cannot take (:func:`notice_problems`,
  :func:`region_problems`), an alert payload missing from the output of its batch, a
  ``decode_error`` without a reason (:func:`check_enriched`);
* ``empty_reason``: a rejection without a message (the journal row needs one,
  :func:`check_reason`);
* ``timeout``: a case that ran longer than its time limit.
"""

from __future__ import annotations

import json
import math
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from fuzz.case import Case, reproduce_command
from fuzz.corpus import REPO
from mm_broker.core import errors as notice_errors
from mm_broker.core.errors import NoticeError
from mm_broker.core.models import Box, Circle, Ellipse, Messenger, Notice, Region, Role, SkyMap
from skymaps.conventions import ConventionError

#: Rejections of notices: one kind per reason code of a NoticeError subclass.
NOTICE_REASONS: frozenset[str] = frozenset(
    cls.reason
    for cls in vars(notice_errors).values()
    if isinstance(cls, type) and issubclass(cls, NoticeError)
) | {ConventionError.reason}

#: Every outcome kind a case may end in (anything else is a failure).
KNOWN_KINDS: frozenset[str] = frozenset(
    {"Notice", "Alert", "CorruptAlert", "UnknownSchema"}
    | {f"NoticeError:{reason}" for reason in NOTICE_REASONS}
)

#: Region outcomes of the notices that parse.
KNOWN_REGION_KINDS: frozenset[str] = frozenset(
    {"Region"} | {f"NoticeError:{reason}" for reason in NOTICE_REASONS}
)

#: Largest value of the BIGINT version column.
_BIGINT_MAX = 2**63 - 1


@dataclass(frozen=True)
class Failure:
    """A case that did not end in a known outcome.

    Attributes
    ----------
    category : str
        ``uncaught``, ``invariant``, ``empty_reason`` or ``timeout``.
    stage : str
        ``parse``, ``region``, ``decode`` or ``enrich``.
    error : str
        Exception class name (or the broken invariant).
    message : str
        Exception message, shortened.
    where : str
        ``file:line`` of the innermost frame in this repository (else the innermost).
    case : dict
        :meth:`Case.describe` of the case.
    traceback : str
        The formatted traceback (empty for invariants).
    """

    category: str
    stage: str
    error: str
    message: str
    where: str
    case: dict[str, Any]
    traceback: str = ""

    @property
    def signature(self) -> str:
        """``category stage error at where``: failures with one cause share it."""
        return f"{self.category} {self.stage} {self.error} at {self.where}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the command that replays the case."""
        return {"category": self.category, "stage": self.stage, "error": self.error,
                "message": self.message, "where": self.where, "case": self.case,
                "reproduce": reproduce_command(self.case["seed"], self.case["case"]),
                "traceback": self.traceback}


@dataclass
class CaseResult:
    """What one case gave.

    Attributes
    ----------
    kind : str or None
        Outcome kind (:data:`KNOWN_KINDS`), None when the case failed before one.
    region : str or None
        Region outcome of a parsed notice with a localisation.
    failures : list of Failure
    warnings : list of str
        ``Category at file:line`` of each warning raised.
    """

    kind: str | None = None
    region: str | None = None
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _is_ours(path: Path) -> bool:
    """True for a file of this repository's packages (not the venv, not the fuzzer)."""
    path = path.resolve()
    if not path.is_relative_to(REPO):
        return False
    top = path.relative_to(REPO).parts[0]
    return top not in (".venv", "fuzz", "tests")


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if _is_ours(Path(f.filename))]
    frame = ours[-1] if ours else (frames[-1] if frames else None)
    if frame is None:
        return "?"
    path = Path(frame.filename).resolve()
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    return f"{shown}:{frame.lineno}"


def make_failure(category: str, stage: str, case: Case, exc: BaseException | None = None,
                 error: str = "", message: str = "", where: str = "") -> Failure:
    """A :class:`Failure` of ``case``, from an exception or from a broken invariant.

    Parameters
    ----------
    category : str
        ``uncaught``, ``invariant``, ``empty_reason`` or ``timeout``.
    stage : str
        ``parse``, ``region``, ``decode``, ``enrich`` or ``fuzz``.
    case : Case
    exc : BaseException, optional
        The exception (gives the error, message, place and traceback not given).
    error, message, where : str, optional
        What broke, why, and where.

    Returns
    -------
    Failure
    """
    if exc is not None:
        error = error or type(exc).__name__
        message = message or str(exc)
        where = where or _where(exc)
        tb = "".join(traceback.format_exception(exc))
    else:
        tb = ""
    return Failure(category, stage, error, message[:500], where or "?", case.describe(), tb)


def _has_nul_or_nan(value: Any) -> str | None:
    """Why a value cannot be stored in PostgreSQL text/JSONB (None when it can)."""
    if isinstance(value, str):
        return "NUL character in a string" if "\x00" in value else None
    if isinstance(value, float | np.floating):
        return None if math.isfinite(value) else f"non-finite number {value!r}"
    if isinstance(value, dict):
        for key, item in value.items():
            why = _has_nul_or_nan(key) or _has_nul_or_nan(item)
            if why:
                return f"{key!r}: {why}"
    if isinstance(value, list | tuple):
        for item in value:
            why = _has_nul_or_nan(item)
            if why:
                return why
    return None


def notice_problems(notice: Notice) -> list[str]:
    """What would stop the ingest path from storing ``notice`` (empty when nothing).

    The checks are those of the database columns and of the region builder: text
    without NUL characters, JSON fields without NaN or infinities, timezone-aware
    times, a BIGINT version, a localisation exactly when the notice is no retraction,
    finite coordinates in range.

    Parameters
    ----------
    notice : Notice

    Returns
    -------
    list of str
    """
    problems = []
    if not isinstance(notice, Notice):
        return [f"parse returned {type(notice).__name__}, not a Notice"]
    if not isinstance(notice.messenger, Messenger) or not isinstance(notice.role, Role):
        problems.append("messenger or role is not one of the enums")
    for name in ("event_id", "mission", "instrument", "notice_type"):
        value = getattr(notice, name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{name} is empty")
        elif "\x00" in value:
            problems.append(f"{name} contains a NUL character")
    if notice.ivorn is not None and "\x00" in notice.ivorn:
        problems.append("ivorn contains a NUL character")
    for name in ("trigger_time", "issue_time"):
        moment = getattr(notice, name)
        if not isinstance(moment, datetime) or moment.utcoffset() != timedelta(0):
            problems.append(f"{name} is not a UTC-aware datetime")
    if not isinstance(notice.version, int) or not 0 <= notice.version <= _BIGINT_MAX:
        problems.append(f"version {notice.version!r} does not fit BIGINT >= 0")
    if notice.retraction != (notice.localisation is None):
        problems.append("localisation given for a retraction, or missing for a notice")
    problems.extend(_localisation_problems(notice.localisation))
    for name in ("significance", "extra"):
        why = _has_nul_or_nan(_storable(getattr(notice, name)))
        if why:
            problems.append(f"{name}: {why}")
    return problems


def _storable(value: Any) -> Any:
    """``value`` as ``mm_broker.app.ingest`` hands it to JSONB (same conversions)."""
    def default(obj: Any) -> Any:
        if isinstance(obj, datetime):
            return obj.isoformat()
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, bytes):
            return f"<{len(obj)} bytes>"
        return str(obj)

    return json.loads(json.dumps(value, default=default))


def _localisation_problems(loc: Any) -> list[str]:
    if loc is None:
        return []
    if isinstance(loc, SkyMap):
        ok = isinstance(loc.data, bytes) and bool(loc.data) or isinstance(loc.url, str)
        return [] if ok else ["sky map with neither bytes nor URL"]
    if not isinstance(loc, Circle | Ellipse | Box):
        return [f"localisation of type {type(loc).__name__}"]
    problems = []
    if not (math.isfinite(loc.ra) and 0.0 <= loc.ra <= 360.0):
        problems.append(f"ra {loc.ra!r} outside [0, 360]")
    if not (math.isfinite(loc.dec) and -90.0 <= loc.dec <= 90.0):
        problems.append(f"dec {loc.dec!r} outside [-90, 90]")
    if not (0.0 < loc.containment <= 1.0):
        problems.append(f"containment {loc.containment!r} outside (0, 1]")
    if isinstance(loc, Circle) and not (math.isfinite(loc.radius_deg) and loc.radius_deg > 0):
        problems.append(f"radius {loc.radius_deg!r} not finite and > 0")
    return problems


def region_problems(region: Region) -> list[str]:
    """What is wrong with a region the store would take (empty when nothing)."""
    problems = []
    if not (math.isfinite(region.area_deg2) and region.area_deg2 >= 0):
        problems.append(f"area {region.area_deg2!r} not finite and >= 0")
    if not (0.0 < region.credible_level <= 1.0):
        problems.append(f"credible level {region.credible_level!r} outside (0, 1]")
    return problems


def check_reason(case: Case, stage: str, exc: Exception, text: str,
                 result: CaseResult) -> None:
    """Record an ``empty_reason`` failure when a rejection's ``text`` is blank.

    Parameters
    ----------
    case : Case
    stage : str
        ``parse``, ``region``, ``decode`` or ``enrich``.
    exc : Exception
        The rejection.
    text : str
        Its message (or reason) as the raw journal would store it.
    result : CaseResult
        Gets the failure.
    """
    if not text.strip():
        result.failures.append(make_failure("empty_reason", stage, case, exc,
                                            message="rejection without a message"))


def check_enriched(cases: list[Case], results: list[CaseResult], present: set[int],
                   blank: list[int]) -> None:
    """Record the failures of an enriched batch: payloads missing from its output
    (``invariant``) and ``decode_error`` rows without a reason (``empty_reason``).

    Parameters
    ----------
    cases, results : list
        The batch, in order, and the result of each case (gets the failures).
    present : set of int
        Positions of the batch present in the output.
    blank : list of int
        Positions whose ``decode_error`` is blank.
    """
    for i, (case, result) in enumerate(zip(cases, results, strict=True)):
        if i not in present:
            result.failures.append(make_failure("invariant", "enrich", case, error="dropped",
                                                message="payload missing from the batch output",
                                                where="fink_core/pipeline.py:enrich"))
        if i in blank:
            result.failures.append(make_failure("empty_reason", "enrich", case, error="blank",
                                                message="decode_error row without a reason",
                                                where="fink_core/pipeline.py:enrich"))
