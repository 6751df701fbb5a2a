"""The targets: each case fed to what a daemon would call with it, never raising.

* notices: :func:`listeners.parsers.parse` with the case's topic, then, for a notice
  with a localisation, :func:`skymaps.region_for` (what
  :func:`mm_broker.app.ingest.ingest` does before it touches the database);
* alerts: :func:`fink_core.decode.decode_avro` (with the case's Confluent schema
  registry), then, in batches (:data:`fuzz.harness.ENRICH_BATCH`),
  :func:`fink_core.pipeline.enrich`: the body of the streaming job's ``mapInPandas``,
  which must keep every payload, as an enriched row or as a row with ``decode_error``.

The outcome is judged by :mod:`fuzz.oracles`. A case runs under a SIGALRM deadline
(:class:`CaseTimeout`); warnings raised by the code under test are recorded (never
turned into errors, never shown).
"""

from __future__ import annotations

import dataclasses
import hashlib
import signal
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fink_core.decode import decode_avro
from fink_core.pipeline import enrich
from fuzz.case import Case
from fuzz.corpus import REPO
from fuzz.oracles import (
    CaseResult,
    Failure,
    check_enriched,
    check_reason,
    make_failure,
    notice_problems,
    region_problems,
)
from listeners.parsers import parse
from mm_broker.core.errors import CorruptAlert, NoticeError, UnknownSchema
from mm_broker.core.models import SkyMap
from skymaps import region_for


class CaseTimeout(BaseException):
    """Raised in the fuzzer when one case runs longer than its time limit."""


@dataclass
class _Deadline:
    """SIGALRM-based limit on one case (main thread of a POSIX system only)."""

    seconds: float | None
    _armed: bool = False

    def __enter__(self) -> _Deadline:
        if (self.seconds and hasattr(signal, "setitimer")
                and threading.current_thread() is threading.main_thread()):
            signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self._armed = True
        return self

    def _fire(self, signum: int, frame: object) -> None:
        raise CaseTimeout(f"case ran longer than {self.seconds} s")

    def __exit__(self, *exc: object) -> None:
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)


#: Region outcomes by localisation: :func:`skymaps.region_for` is a pure function, and
#: most mutated notices keep their seed's localisation.
_REGION_CACHE: OrderedDict[Any, tuple[str | None, tuple[Failure, ...]]] = OrderedDict()
_REGION_CACHE_SIZE = 4096


def _evaluate_notice(case: Case, result: CaseResult, regions: bool) -> None:
    try:
        notice = parse(case.payload, case.topic)
    except NoticeError as exc:
        result.kind = f"NoticeError:{exc.reason}"
        check_reason(case, "parse", exc, exc.message if exc.reason else "", result)
        return
    except CaseTimeout as exc:
        result.failures.append(make_failure("timeout", "parse", case, exc))
        return
    except Exception as exc:  # noqa: BLE001 - the fuzzer's job: report, never stop
        result.failures.append(make_failure("uncaught", "parse", case, exc))
        return
    result.kind = "Notice"
    problems = notice_problems(notice)
    if problems:
        result.failures.append(make_failure("invariant", "parse", case, error="notice",
                                            message="; ".join(problems),
                                            where=str(notice.notice_type)[:80]))
        return
    if not regions or notice.localisation is None:
        return
    key = _region_key(notice.localisation)
    cached = _REGION_CACHE.get(key)
    if cached is None:
        cached = _region_outcome(case, notice.localisation)
        if not any(f.category == "timeout" for f in cached[1]):
            _REGION_CACHE[key] = cached
            if len(_REGION_CACHE) > _REGION_CACHE_SIZE:
                _REGION_CACHE.popitem(last=False)
    result.region = cached[0]
    result.failures.extend(dataclasses.replace(f, case=case.describe()) for f in cached[1])


def _region_key(loc: Any) -> Any:
    if isinstance(loc, SkyMap):
        digest = hashlib.sha256(loc.data).digest() if isinstance(loc.data, bytes) else None
        return ("skymap", digest, loc.url, loc.convention)
    return loc


def _region_outcome(case: Case, loc: Any) -> tuple[str | None, tuple[Failure, ...]]:
    """Region outcome kind of a localisation, and the failures it gave."""
    try:
        region = region_for(loc)
    except NoticeError as exc:
        if exc.reason and exc.message.strip():
            return f"NoticeError:{exc.reason}", ()
        return f"NoticeError:{exc.reason}", (make_failure(
            "empty_reason", "region", case, exc, message="rejection without a message"),)
    except CaseTimeout as exc:
        return None, (make_failure("timeout", "region", case, exc),)
    except Exception as exc:  # noqa: BLE001 - the fuzzer's job: report, never stop
        return None, (make_failure("uncaught", "region", case, exc),)
    problems = region_problems(region)
    if problems:
        return "Region", (make_failure("invariant", "region", case, error="region",
                                       message="; ".join(problems), where=region.kind),)
    return "Region", ()


def _evaluate_alert(case: Case, result: CaseResult) -> None:
    try:
        decode_avro(case.payload, writer_schemas=case.writer_schemas)
    except CorruptAlert as exc:
        result.kind = "CorruptAlert"
        check_reason(case, "decode", exc, exc.reason, result)
        return
    except UnknownSchema as exc:
        result.kind = "UnknownSchema"
        check_reason(case, "decode", exc, str(exc), result)
        return
    except CaseTimeout as exc:
        result.failures.append(make_failure("timeout", "decode", case, exc))
        return
    except Exception as exc:  # noqa: BLE001 - the fuzzer's job: report, never stop
        result.failures.append(make_failure("uncaught", "decode", case, exc))
        return
    result.kind = "Alert"


def warning_key(w: warnings.WarningMessage) -> str:
    """``Category at file:line`` of a recorded warning (path relative to the repository)."""
    path = Path(w.filename)
    try:
        shown = str(path.resolve().relative_to(REPO))
    except ValueError:
        shown = "/".join(path.parts[-2:])
    return f"{w.category.__name__} at {shown}:{w.lineno}"


def evaluate(case: Case, *, regions: bool = True, enrich_alerts: bool = True,
             case_timeout: float | None = None) -> CaseResult:
    """Feed one case to its parser (and region builder or enrichment); never raises.

    Parameters
    ----------
    case : Case
    regions : bool, optional
        Build the region of a notice that parses (as ingest does).
    enrich_alerts : bool, optional
        Enrich an alert payload (alone; :func:`fuzz.harness.run` enriches batches).
    case_timeout : float, optional
        Seconds before the case counts as a ``timeout`` failure (main thread only).

    Returns
    -------
    CaseResult
    """
    result = CaseResult()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _Deadline(case_timeout):
            try:
                if case.target == "notice":
                    _evaluate_notice(case, result, regions)
                else:
                    _evaluate_alert(case, result)
                    if enrich_alerts:
                        enrich_each([case], [result])
            except CaseTimeout as exc:  # fired between the guarded calls
                result.failures.append(make_failure("timeout", "fuzz", case, exc))
    result.warnings.extend(warning_key(w) for w in caught)
    return result


def _enrich(cases: Sequence[Case]) -> tuple[int, int, set[int], list[int]]:
    """Enrich the payloads of ``cases`` as one micro-batch.

    Returns the enriched rows, the ``decode_error`` rows, the positions present in the
    output (Kafka offsets are the positions) and the positions of rows whose
    ``decode_error`` is empty.
    """
    out = enrich([c.payload for c in cases], (), topics=["fuzz"] * len(cases),
                 partitions=[0] * len(cases), offsets=list(range(len(cases))))
    errors = out["decode_error"]
    failed = errors.notna().to_numpy()
    offsets = out["kafka_offset"].astype("Int64")
    present = {int(o) for o in offsets.dropna()}
    blank = [int(o) for o, e in zip(offsets[failed], errors[failed], strict=True)
             if not str(e).strip()]
    return int((~failed).sum()), int(failed.sum()), present, blank


def enrich_each(cases: list[Case], results: list[CaseResult]) -> tuple[int, int]:
    """Enrich a batch; after an exception, payload by payload to find the culprits.
    Records missing payloads and blank reasons as failures; returns (rows, errors)."""
    try:
        rows, errors, present, blank = _enrich(cases)
    except CaseTimeout:
        raise
    except Exception:  # noqa: BLE001 - the culprits are found one by one below
        rows = errors = 0
        for case, result in zip(cases, results, strict=True):
            try:
                r, e, present, blank = _enrich([case])
            except CaseTimeout:
                raise
            except Exception as exc:  # noqa: BLE001 - the fuzzer's job: report, never stop
                result.failures.append(make_failure("uncaught", "enrich", case, exc))
                continue
            rows, errors = rows + r, errors + e
            check_enriched([case], [result], present, blank)
        return rows, errors
    check_enriched(cases, results, present, blank)
    return rows, errors
