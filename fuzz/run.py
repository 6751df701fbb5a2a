"""Mutation fuzzer of the notice parsers and the alert decoder (``python -m fuzz.run``).

Every case is a real file of the shared data (``--data``, ``MM_DATA_DIR`` or
``../shared/data`` next to the repository; :mod:`fuzz.corpus`), mutated one to three
times (:mod:`fuzz.mutators`: one module per format, chosen by the table of
:mod:`fuzz.mutators.registry`), and handed to what a daemon calls with it
(:mod:`fuzz.targets`):

* notices (VOEvent XML, GCN JSON, ``igwn.gwalert`` JSON with a base64 sky map):
  :func:`listeners.parsers.parse` with the topic the payload would come on (or
  another one), then, for a notice with a localisation, :func:`skymaps.region_for`;
* alerts (ZTF and LSST Avro containers, Confluent-framed Avro bodies):
  :func:`fink_core.decode.decode_avro`, then, in batches of
  :data:`fuzz.harness.ENRICH_BATCH` payloads, :func:`fink_core.pipeline.enrich`.

Each case ends in one outcome kind (``Notice``, ``NoticeError:<reason>``, ``Alert``,
``CorruptAlert``, ``UnknownSchema``); anything else is a failure (``uncaught``,
``invariant``, ``empty_reason``, ``timeout``: :mod:`fuzz.oracles`). The run
(:mod:`fuzz.harness`) prints the counts per family, outcome, region outcome,
mutation and failure (``--json``: one JSON object) and exits with code 1 on any
failure, 3 when the watchdog stopped a hung case.

Each failure names the seed and case index; ``python -m fuzz.run --seed S --case I``
replays that case alone and prints its traceback (``--dump-dir`` writes its payload).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fuzz.case import Case
from fuzz.corpus import FAMILY_WEIGHTS, Corpus, load_corpus
from fuzz.harness import MAX_EXAMPLES, MemoryCap, run
from fuzz.mutators.registry import make_case
from fuzz.targets import evaluate


def parser() -> argparse.ArgumentParser:
    """Argument parser of ``python -m fuzz.run``."""
    p = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.split("\n")[0])
    p.add_argument("--cases", type=int, default=10_000, help="number of cases (default 10000)")
    p.add_argument("--seed", default="1", help="run seed (default 1)")
    p.add_argument("--start", type=int, default=0, help="index of the first case")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--data", help="shared data directory (default: $MM_DATA_DIR or "
                                  "../shared/data)")
    p.add_argument("--families", help=f"comma-separated subset of {','.join(FAMILY_WEIGHTS)}")
    p.add_argument("--no-regions", action="store_true", help="do not build notice regions")
    p.add_argument("--no-enrich", action="store_true", help="do not enrich alert batches")
    p.add_argument("--case", type=int, help="replay this one case and print its traceback")
    p.add_argument("--dump-dir", help="write the payload of --case (or of failures) here")
    p.add_argument("--case-timeout", type=float, default=10.0,
                   help="seconds before one case counts as a timeout failure (0: none)")
    p.add_argument("--watchdog", type=float, default=300.0,
                   help="seconds before a hung case ends the run with exit code 3 (0: none)")
    p.add_argument("--memory-mb", type=int, default=4096,
                   help="address space the cases may use beyond the start-up size, MiB "
                        "(a memory bomb becomes a MemoryError failure; 0: no cap)")
    p.add_argument("--max-examples", type=int, default=MAX_EXAMPLES,
                   help="failures reported in full")
    p.add_argument("--progress", action="store_true", help="progress lines on stderr")
    return p


def _dump(dump_dir: str | None, case: Case) -> str | None:
    if not dump_dir:
        return None
    folder = Path(dump_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"case-{case.seed}-{case.index}.bin"
    path.write_bytes(case.payload)
    return str(path)


def _replay(args: argparse.Namespace, corpus: Corpus, families: list[str] | None) -> int:
    case = make_case(corpus, args.seed, args.case, families)
    with MemoryCap(args.memory_mb or None):
        result = evaluate(case, regions=not args.no_regions, enrich_alerts=not args.no_enrich,
                          case_timeout=args.case_timeout or None)
    out = {"case": case.describe(), "kind": result.kind, "region": result.region,
           "warnings": result.warnings, "payload_file": _dump(args.dump_dir, case),
           "failures": [f.to_dict() for f in result.failures]}
    print(json.dumps(out, indent=None if args.json else 2))
    for failure in result.failures:
        if not args.json and failure.traceback:
            print(failure.traceback, file=sys.stderr)
    return 1 if result.failures else 0


def _text_report(summary: dict[str, Any]) -> str:
    lines = [f"fuzz seed {summary['seed']}: {summary['cases']} cases in "
             f"{summary['elapsed_s']} s ({summary['cases_per_s']} cases/s)"]
    for title in ("families", "outcomes", "regions", "failure_kinds"):
        lines.append(f"{title}:")
        lines.extend(f"  {k:<32} {v}" for k, v in summary[title].items())
    lines.append(f"enriched rows: {summary['enriched_rows']}, "
                 f"decode_error rows: {summary['decode_error_rows']}")
    lines.append(f"failures: {summary['failures']}")
    for sig, n in summary["failure_signatures"].items():
        lines.append(f"  {n:>6}  {sig}")
    for ex in summary["examples"]:
        lines.append(f"  e.g. {ex['reproduce']}: {ex['error']}: {ex['message'][:160]}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the cases, print the summary; exit code 1 on any failure."""
    args = parser().parse_args(argv)
    corpus = load_corpus(args.data)
    families = [f.strip() for f in args.families.split(",")] if args.families else None
    if families and set(families) - set(FAMILY_WEIGHTS):
        print(f"unknown families: {sorted(set(families) - set(FAMILY_WEIGHTS))}",
              file=sys.stderr)
        return 2
    if args.case is not None:
        return _replay(args, corpus, families)
    summary = run(corpus, args.seed, args.cases, start=args.start, families=families,
                  regions=not args.no_regions, enrich_alerts=not args.no_enrich,
                  case_timeout=args.case_timeout or None, max_examples=args.max_examples,
                  progress=args.progress, watchdog_s=args.watchdog or None,
                  memory_mb=args.memory_mb or None)
    if args.dump_dir:
        for failure in summary.examples:
            _dump(args.dump_dir, make_case(corpus, args.seed, failure.case["case"], families))
    report = summary.to_dict()
    report["corpus"] = corpus.size()
    if args.json:
        print(json.dumps(report))
    else:
        print(_text_report(report))
    return 1 if summary.failures or summary.unknown_kinds else 0


if __name__ == "__main__":
    sys.exit(main())
