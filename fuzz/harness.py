"""The harness: the loop over the cases of a run, the counts, the safety nets.

:func:`run` draws cases ``start .. start + n_cases - 1`` of a seed
(:func:`fuzz.mutators.registry.cases`), feeds each to its target
(:func:`fuzz.targets.evaluate`; alert payloads are enriched in batches of
:data:`ENRICH_BATCH`, as the streaming job enriches micro-batches) and counts what
they gave in a :class:`Summary`. Each failure names its seed and case index, and the
command that replays it (:func:`fuzz.case.reproduce_command`).

Determinism
-----------
Case ``i`` of seed ``s`` is drawn from ``random.Random(f"{s}:{i}")`` alone, so a case
is replayed without the ones before it, and the counts of a run depend only on the
seed, the number of cases and the data (timeouts aside). Warnings raised by the code
under test are recorded and counted (never turned into errors, never shown).

Safety nets
-----------
A hostile case may loop or allocate without bound (that is what a fuzzer looks for).
``case_timeout`` (SIGALRM, main thread) turns a slow case into a ``timeout`` failure
once control is back in Python; ``watchdog_s`` ends the run with exit code 3 and
names the case when a loop in C code never gives control back; ``memory_mb`` caps
the address space (:class:`MemoryCap`), so a memory bomb is a ``MemoryError``
failure of its case rather than a visit of the OOM killer.

Examples
--------
>>> from fuzz.corpus import load_corpus                     # doctest: +SKIP
>>> corpus = load_corpus()                                  # doctest: +SKIP
>>> summary = run(corpus, seed=1, n_cases=1000)             # doctest: +SKIP
>>> summary.failures, summary.outcomes["Notice"] > 0        # doctest: +SKIP
(0, True)
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fuzz.case import Case, reproduce_command
from fuzz.corpus import Corpus
from fuzz.mutators.registry import cases
from fuzz.oracles import KNOWN_KINDS, KNOWN_REGION_KINDS, CaseResult, Failure
from fuzz.targets import enrich_each, evaluate, warning_key

#: Alert payloads enriched together (the streaming job enriches whole micro-batches).
ENRICH_BATCH = 32

#: Failures kept in full (with traceback) in a summary; all are counted.
MAX_EXAMPLES = 20


@dataclass
class Summary:
    """Counts of one run (everything but the timings is deterministic for a seed).

    Attributes
    ----------
    seed : str
    cases : int
    families : Counter
        Cases per seed family.
    outcomes : Counter
        Cases per outcome kind.
    regions : Counter
        Region outcomes of the notices that parsed with a localisation.
    enriched_rows : int
        Enriched rows of the alert batches.
    decode_error_rows : int
        Rows with ``decode_error`` of the alert batches (one per payload refused).
    mutations : Counter
        Mutations applied (by name, first two components).
    failures : int
        Cases that failed (each counted once).
    failure_kinds : Counter
        Failures per category.
    signatures : Counter
        Failures per :attr:`Failure.signature`.
    examples : list of Failure
        The first failures, in full.
    warnings : Counter
        Warnings raised by the code under test, by category and place.
    elapsed_s : float
        Wall time of the cases (not of loading the corpus).
    """

    seed: str
    cases: int = 0
    families: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    regions: Counter[str] = field(default_factory=Counter)
    enriched_rows: int = 0
    decode_error_rows: int = 0
    mutations: Counter[str] = field(default_factory=Counter)
    failures: int = 0
    failure_kinds: Counter[str] = field(default_factory=Counter)
    signatures: Counter[str] = field(default_factory=Counter)
    examples: list[Failure] = field(default_factory=list)
    warnings: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    @property
    def unknown_kinds(self) -> list[str]:
        """Outcome or region kinds outside :data:`KNOWN_KINDS` (should be none)."""
        return sorted((set(self.outcomes) - KNOWN_KINDS)
                      | (set(self.regions) - KNOWN_REGION_KINDS))

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary printed by ``python -m fuzz.run --json``."""
        rate = self.cases / self.elapsed_s if self.elapsed_s > 0 else None
        return {
            "seed": self.seed, "cases": self.cases,
            "families": dict(sorted(self.families.items())),
            "outcomes": dict(sorted(self.outcomes.items())),
            "regions": dict(sorted(self.regions.items())),
            "enriched_rows": self.enriched_rows,
            "decode_error_rows": self.decode_error_rows,
            "mutations": dict(sorted(self.mutations.items())),
            "uncaught": self.failure_kinds.get("uncaught", 0),
            "failures": self.failures,
            "failure_kinds": dict(sorted(self.failure_kinds.items())),
            "failure_signatures": dict(self.signatures.most_common()),
            "examples": [f.to_dict() for f in self.examples],
            "warnings": dict(self.warnings.most_common()),
            "unknown_kinds": self.unknown_kinds,
            "elapsed_s": round(self.elapsed_s, 3),
            "cases_per_s": None if rate is None else round(rate, 1),
            "cpu_count": os.cpu_count(),
        }


class _Watchdog:
    """Thread that ends the process when one case hangs (see :func:`run`)."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.case: Case | None = None
        self.since = time.monotonic()
        threading.Thread(target=self._loop, name="fuzz-watchdog", daemon=True).start()

    def watch(self, case: Case | None) -> None:
        self.case, self.since = case, time.monotonic()

    def _loop(self) -> None:
        while True:
            time.sleep(1.0)
            case = self.case
            if case is not None and time.monotonic() - self.since > self.limit_s:
                print(json.dumps({"watchdog": f"case ran longer than {self.limit_s} s",
                                  "case": case.describe(),
                                  "reproduce": reproduce_command(case.seed, case.index)}),
                      file=sys.stderr, flush=True)
                os._exit(3)


def _op_name(op: str) -> str:
    """Mutation name without its details (field paths, file names, notes)."""
    op = op.split("(")[0].split(":")[0]
    depth = 2 if op.startswith(("avro.record", "confluent.record")) else 3
    return ".".join(op.split(".")[:depth])


def run(corpus: Corpus, seed: int | str, n_cases: int, *, start: int = 0,
        families: Sequence[str] | None = None, regions: bool = True,
        enrich_alerts: bool = True, case_timeout: float | None = None,
        max_examples: int = MAX_EXAMPLES, progress: bool = False,
        watchdog_s: float | None = None, memory_mb: int | None = None) -> Summary:
    """Run cases ``start .. start + n_cases - 1`` of ``seed`` and count what they gave.

    Parameters
    ----------
    corpus : Corpus
        The seed files (:func:`fuzz.corpus.load_corpus`).
    seed : int or str
        Run seed.
    n_cases : int
        Number of cases.
    start : int, optional
        First case index (runs can be split in slices with the same counts).
    families : sequence of str, optional
        Restrict the seed families.
    regions : bool, optional
        Build regions of the notices that parse.
    enrich_alerts : bool, optional
        Enrich the alert payloads (in batches of :data:`ENRICH_BATCH`).
    case_timeout : float, optional
        Per-case limit in seconds (SIGALRM; main thread only). None: no limit.
    max_examples : int, optional
        Failures kept in full.
    progress : bool, optional
        Print a progress line to stderr every 10,000 cases.
    watchdog_s : float, optional
        If one case runs longer than this (a loop in C code that ``case_timeout``
        cannot interrupt), print the case to stderr and end the process with exit
        code 3. For the command line only: it ends the process.
    memory_mb : int, optional
        Address space the cases may use beyond what the process has when the run
        starts (``RLIMIT_AS``, restored afterwards): a memory bomb becomes a
        ``MemoryError`` failure of its case instead of a visit of the OOM killer.

    Returns
    -------
    Summary
    """
    tally = _Tally(Summary(seed=str(seed)), max_examples)
    summary = tally.summary
    watchdog = _Watchdog(watchdog_s) if watchdog_s else None
    started = time.perf_counter()
    with MemoryCap(memory_mb):
        for case in cases(corpus, seed, n_cases, start, families):
            summary.cases += 1
            summary.families[case.family] += 1
            summary.mutations.update(_op_name(op) for op in case.ops)
            if watchdog is not None:
                watchdog.watch(case)
            result = evaluate(case, regions=regions, enrich_alerts=False,
                              case_timeout=case_timeout)
            if enrich_alerts and case.target == "alert":
                tally.pending.append((case, result))
                if len(tally.pending) >= ENRICH_BATCH:
                    tally.flush()
            else:
                tally.record(case, result)
            if progress and summary.cases % 10_000 == 0:
                rate = summary.cases / (time.perf_counter() - started)
                print(f"fuzz: {summary.cases} cases, {summary.failures} failures, "
                      f"{rate:.0f} cases/s", file=sys.stderr, flush=True)
        if watchdog is not None:
            watchdog.watch(None)
        tally.flush()
    summary.elapsed_s = time.perf_counter() - started
    return summary


@dataclass
class _Tally:
    """Counts results into a :class:`Summary`; holds alert cases until their batch is
    enriched."""

    summary: Summary
    max_examples: int
    pending: list[tuple[Case, CaseResult]] = field(default_factory=list)

    def record(self, case: Case, result: CaseResult) -> None:
        """Count one case's result (its outcome, region, warnings and failures)."""
        s = self.summary
        if result.kind is not None:
            s.outcomes[result.kind] += 1
        if result.region is not None:
            s.regions[result.region] += 1
        s.warnings.update(result.warnings)
        if result.failures:
            s.failures += 1
            for failure in result.failures:
                s.failure_kinds[failure.category] += 1
                s.signatures[failure.signature] += 1
                if len(s.examples) < self.max_examples:
                    s.examples.append(failure)

    def flush(self) -> None:
        """Enrich the pending alert cases as one batch, then count them."""
        if self.pending:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                rows, errors = enrich_each([c for c, _ in self.pending],
                                           [r for _, r in self.pending])
            self.summary.enriched_rows += rows
            self.summary.decode_error_rows += errors
            self.summary.warnings.update(warning_key(w) for w in caught)
        for case, result in self.pending:
            self.record(case, result)
        self.pending.clear()


class MemoryCap:
    """Context manager capping the address space (``RLIMIT_AS``) at the current size
    plus ``extra_mb`` MiB, restored on exit; a no-op when ``extra_mb`` is None or the
    platform has no such limit. A memory bomb in the code under test then raises
    :class:`MemoryError` in its case instead of bringing in the OOM killer.

    Parameters
    ----------
    extra_mb : int or None
        Address space allowed beyond the size at entry, MiB.
    """

    def __init__(self, extra_mb: int | None) -> None:
        self.extra_mb = extra_mb
        self.saved: tuple[int, int] | None = None

    def __enter__(self) -> MemoryCap:
        if not self.extra_mb:
            return self
        try:
            pages = int(Path("/proc/self/statm").read_text().split()[0])
            cap = pages * os.sysconf("SC_PAGE_SIZE") + self.extra_mb * 2**20
            saved = resource.getrlimit(resource.RLIMIT_AS)
            if saved[1] != resource.RLIM_INFINITY:
                cap = min(cap, saved[1])
            resource.setrlimit(resource.RLIMIT_AS, (cap, saved[1]))
            self.saved = saved
        except (OSError, ValueError):
            self.saved = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            resource.setrlimit(resource.RLIMIT_AS, self.saved)
