"""The quick fuzz run of CI: 10,000 mutated real payloads through every parser.

The cases come from :mod:`fuzz` (``make fuzz`` runs at least 100,000 of them):
real notices and alerts of the shared data, mutated, fed to
:func:`listeners.parsers.parse` then :func:`skymaps.region_for`, or to
:func:`fink_core.decode.decode_avro` then, in micro-batches,
:func:`fink_core.pipeline.enrich`. Every case must end in a named outcome; an
uncaught exception would stop a daemon or fail a streaming micro-batch.

A failure names the seed and case: ``python -m fuzz.run --seed S --case I`` replays it
with its traceback. The last test sends mutated payloads through the real ingest path
and checks that the raw journal keeps every one of them with a status and a reason.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `python -m pytest` has it; a bare `pytest` does not
    sys.path.insert(0, str(REPO))

from fuzz import harness  # noqa: E402
from fuzz.case import Case  # noqa: E402
from fuzz.corpus import FAMILY_WEIGHTS, NOTICE_FAMILIES, Corpus, load_corpus  # noqa: E402
from fuzz.formats import read_header, write_header  # noqa: E402
from fuzz.harness import MemoryCap, Summary  # noqa: E402
from fuzz.mutators import registry  # noqa: E402
from fuzz.mutators.registry import build_case, make_case  # noqa: E402
from fuzz.targets import evaluate  # noqa: E402

#: Seed of the CI run (any change of mutators or data changes the cases, not the rules).
SEED = 20261126
#: The 10,000 cases, in slices (one test each, so a failure names its slice).
SLICES = 4
PER_SLICE = 2_500
#: Address space the cases may use beyond the test process's (a memory bomb in the
#: code under test becomes a MemoryError failure of its case, not an OOM kill).
MEMORY_MB = 3_072

#: Every outcome kind a case may end in. A bare ``NoticeError`` (reason ``invalid``)
#: is not in it: rejections must say which kind of violation they are.
EXPECTED_KINDS = frozenset({
    "Notice", "Alert", "CorruptAlert", "UnknownSchema",
    "NoticeError:malformed", "NoticeError:unsafe_xml", "NoticeError:unsupported_format",
    "NoticeError:unsupported_type", "NoticeError:schema", "NoticeError:no_position",
    "NoticeError:bad_coordinates", "NoticeError:bad_skymap", "NoticeError:convention",
})
EXPECTED_REGION_KINDS = frozenset(
    {"Region"} | {k for k in EXPECTED_KINDS if k.startswith("NoticeError:")})


@pytest.fixture(scope="module")
def corpus(data_dir: Path) -> Corpus:
    """The seed files: every notice, and Avro alerts of every folder."""
    return load_corpus(data_dir)


@pytest.fixture(scope="module")
def slices(corpus: Corpus) -> list[Summary]:
    """The quick run: :data:`SLICES` slices of :data:`PER_SLICE` cases of :data:`SEED`."""
    return [harness.run(corpus, SEED, PER_SLICE, start=part * PER_SLICE, memory_mb=MEMORY_MB)
            for part in range(SLICES)]


def _report(summary: Summary) -> str:
    """Failures of a run, with the commands that replay them."""
    lines = [f"{summary.failures} failing cases of {summary.cases} (seed {summary.seed}):"]
    lines += [f"  {n:>5} x {sig}" for sig, n in summary.signatures.most_common()]
    for failure in summary.examples[:10]:
        d = failure.to_dict()
        lines.append(f"  {d['reproduce']}  [{', '.join(d['case']['ops'])}] "
                     f"{d['case']['source']}: {d['error']}: {d['message'][:200]}")
    return "\n".join(lines)


def test_corpus_has_every_family(corpus: Corpus) -> None:
    sizes = corpus.size()
    assert set(sizes) == set(FAMILY_WEIGHTS)
    assert all(n > 0 for n in sizes.values()), sizes
    # The sky-map family is the LVK alerts with their base64 multi-order maps.
    assert any("lvk" in s.rel for s in corpus.seeds["gwalert"])
    assert {s.survey for s in corpus.seeds["avro"]} >= {"ztf", "lsst"}


@pytest.mark.parametrize("part", range(SLICES))
def test_quick_fuzz_slice(slices: list[Summary], part: int) -> None:
    summary = slices[part]
    assert summary.cases == PER_SLICE
    assert summary.failures == 0, _report(summary)
    assert set(summary.outcomes) <= EXPECTED_KINDS, sorted(set(summary.outcomes) - EXPECTED_KINDS)
    assert set(summary.regions) <= EXPECTED_REGION_KINDS, sorted(summary.regions)
    assert sum(summary.outcomes.values()) == PER_SLICE  # every case ended in one kind


def test_quick_fuzz_reaches_every_parser(slices: list[Summary]) -> None:
    """The 10,000 cases exercise every family, mutation group and outcome that matters
    (a fuzzer whose cases all die in the first check would pass the slices)."""
    total = Summary(seed=str(SEED))
    enriched = 0
    for summary in slices:
        total.cases += summary.cases
        total.families.update(summary.families)
        total.outcomes.update(summary.outcomes)
        total.regions.update(summary.regions)
        total.mutations.update(summary.mutations)
        enriched += summary.enriched_rows
    assert total.cases == SLICES * PER_SLICE
    assert set(total.families) == set(FAMILY_WEIGHTS)
    groups = {".".join(op.split(".")[:2]) for op in total.mutations}
    assert groups >= {"bytes.flip", "bytes.truncate", "bytes.splice", "json.replace",
                      "json.raw", "json.skymap", "xml.entity", "xml.nest", "xml.tree",
                      "xml.transcode", "avro.header", "avro.record", "avro.truncate",
                      "confluent.record", "confluent.no_registry"}, sorted(groups)
    # Valid notices and alerts get through, and many kinds of rejection occur.
    assert total.outcomes["Notice"] > 500 and total.outcomes["Alert"] > 500
    assert total.outcomes["CorruptAlert"] > 0 and total.outcomes["UnknownSchema"] > 0
    reasons = {k for k in total.outcomes if k.startswith("NoticeError:")}
    assert {"NoticeError:malformed", "NoticeError:unsafe_xml", "NoticeError:schema",
            "NoticeError:bad_skymap", "NoticeError:no_position"} <= reasons
    assert total.regions["Region"] > 500 and total.regions["NoticeError:bad_skymap"] > 0
    assert enriched > 500


def test_runs_are_deterministic(corpus: Corpus) -> None:
    first = harness.run(corpus, SEED, 300, start=7_000, memory_mb=MEMORY_MB).to_dict()
    again = harness.run(corpus, SEED, 300, start=7_000, memory_mb=MEMORY_MB).to_dict()
    for key in ("elapsed_s", "cases_per_s"):
        first.pop(key), again.pop(key)
    assert first == again
    case = make_case(corpus, SEED, 7_123)
    assert case == make_case(corpus, SEED, 7_123)  # a case replays on its own


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rng=st.randoms(use_true_random=False), index=st.integers(0, 10**6))
def test_property_any_mutation_ends_in_a_named_outcome(corpus: Corpus, rng: Any,
                                                       index: int) -> None:
    """Hypothesis drives the same mutators (and shrinks a failing case)."""
    case = build_case(corpus, rng, index, seed="hypothesis")
    with MemoryCap(MEMORY_MB):
        result = evaluate(case)
    assert not result.failures, [f.to_dict() for f in result.failures]
    assert result.kind in EXPECTED_KINDS


def test_attribute_flood_is_refused() -> None:
    """An element with 20,000 attributes is a hostile tree, refused as such. (lxml's
    tree builder sets attributes in quadratic time: 40,000 of them, 0.6 MB, took 15 s
    of parsing, a stalled listener.)"""
    from listeners.parsers.xml import parse_xml
    from mm_broker.core.errors import UnsafeXML

    attributes = b" ".join(b'a%d="%d"' % (i, i) for i in range(20_000))
    with pytest.raises(UnsafeXML):
        parse_xml(b"<VOEvent><What><Param " + attributes + b"/></What></VOEvent>")


# --------------------------------------------------------------------------- #
# Findings of the long runs (make fuzz), kept as regression cases
# --------------------------------------------------------------------------- #


def test_avro_schema_with_zero_size_items_is_refused(data_dir: Path) -> None:
    """An array whose items take no bytes lets a few bytes claim billions of values.
    (Found by the 100,000-case run: a damaged ``"fields"`` key of ZTF's
    ``prv_candidate`` record made the decoder grow to 23 GB before the OOM killer
    stopped it.) Such a writer schema is refused as corrupt."""
    from fink_core.decode import decode_avro
    from mm_broker.core.errors import CorruptAlert

    path = "alerts/ztf/avro/fink-alert-simulator_templates/template_schema_ZTF_3p3.avro"
    data = (data_dir / path).read_bytes()
    meta, sync, end = read_header(data)
    good = b'"name": "prv_candidate", "namespace": "ztf.alert", "fields"'
    assert meta["avro.schema"].count(good) == 1
    meta["avro.schema"] = meta["avro.schema"].replace(good, good.replace(b"fields", b"fiel`s"))
    with MemoryCap(MEMORY_MB), pytest.raises(CorruptAlert):
        decode_avro(write_header(meta, sync) + data[end:])


def _lvk_notice_with_card(data_dir: Path, keyword: bytes, value: bytes) -> bytes:
    """A real LVK alert whose embedded sky map has one header card changed."""
    import base64

    doc = json.loads((data_dir / "notices/lvk/MS181101ab-preliminary.json").read_bytes())
    fits = bytearray(base64.b64decode(doc["event"]["skymap"]))
    at = fits.find(keyword.ljust(8) + b"=")
    assert at >= 0
    fits[at : at + 80] = (keyword.ljust(8) + b"= " + value.rjust(20)).ljust(80)
    doc["event"]["skymap"] = base64.b64encode(bytes(fits)).decode()
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("keyword", "value"), [
    (b"TFIELDS", b"999999999"),  # astropy allocated a description per field: 20+ GB
    (b"TTYPE1", b"-32"),  # a number for a column name: astropy's own assert fails
])
def test_damaged_sky_map_header_is_a_bad_sky_map(data_dir: Path, keyword: bytes,
                                                 value: bytes) -> None:
    """A damaged header card of an embedded sky map is a ``bad_skymap`` rejection, in
    bounded memory (found by the 100,000-case run)."""
    import skymaps
    from listeners.parsers import parse
    from mm_broker.core.errors import BadSkyMap

    notice = parse(_lvk_notice_with_card(data_dir, keyword, value), "igwn.gwalert")
    assert notice.localisation is not None
    with MemoryCap(MEMORY_MB), pytest.raises(BadSkyMap):
        skymaps.region_for(notice.localisation)


# --------------------------------------------------------------------------- #
# Through the real ingest path: every payload journaled, with a reason
# --------------------------------------------------------------------------- #

#: Mutated notices sent through :func:`mm_broker.app.ingest.ingest`.
N_INGEST = 200


def _nul_payloads(corpus: Corpus) -> list[Case]:
    """JSON notices with a NUL character in one string (valid JSON: ``\\u0000``)."""
    out: list[Case] = []
    for seed in corpus.seeds["json"]:
        doc = seed.doc
        if not isinstance(doc, dict) or not seed.topic:
            continue
        keys = [k for k, v in doc.items() if isinstance(v, str) and k != "$schema"]
        if keys:
            mutated = {**doc, keys[-1]: "x\u0000y"}
            out.append(Case("nul", len(out), "json", seed.rel, ("json.nul",),
                                 json.dumps(mutated).encode(), seed.topic))
    return out[:8]


def _reason_codes() -> set[str]:
    """Reason codes of every NoticeError subclass defined (parsers, sky maps, ingest)."""
    import mm_broker.app.ingest  # noqa: F401 - defines its own rejections
    import skymaps.conventions  # noqa: F401
    from mm_broker.core.errors import NoticeError

    codes, todo = set(), [NoticeError]
    while todo:
        cls = todo.pop()
        codes.add(cls.reason)
        todo.extend(cls.__subclasses__())
    # "internal" (if defined) marks a bug caught by the ingest path, not a reason.
    return codes - {NoticeError.reason, "internal"}


@pytest.mark.services
def test_ingest_journals_every_fuzz_case_with_a_reason(corpus: Corpus,
                                                       fresh_db: Any) -> None:
    from sqlalchemy import select

    from mm_broker.app.ingest import Limits, ingest
    from mm_broker.core.db.migrate import engine_for
    from mm_broker.core.db.schema import raw_journal

    cases = list(registry.cases(corpus, SEED + 1, N_INGEST, families=sorted(NOTICE_FAMILIES)))
    cases += _nul_payloads(corpus)
    received = datetime(2026, 1, 1, tzinfo=UTC)
    limits = Limits.from_settings(fresh_db)
    engine = engine_for(fresh_db)
    results: dict[str, tuple[Case, Any]] = {}
    crashes = []
    try:
        for case in cases:
            digest = case.describe()["sha256"]
            try:
                results[digest] = (case, ingest(engine, case.payload, "dir", case.topic,
                                                 received, limits=limits))
            except Exception as exc:  # noqa: BLE001 - a daemon would stop: collect all
                results.setdefault(digest, (case, None))
                crashes.append(f"{case.seed}:{case.index} {case.ops} {case.source}: "
                               f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        with engine.connect() as conn:
            rows = {r.sha256: r for r in conn.execute(
                select(raw_journal.c.sha256, raw_journal.c.status, raw_journal.c.reason,
                       raw_journal.c.size))}
    finally:
        engine.dispose()
    assert not crashes, "ingest raised (a listener would stop):\n" + "\n".join(crashes)
    codes = _reason_codes()
    missing, unprocessed, no_reason, unnamed = [], [], [], []
    for digest, (case, result) in results.items():
        row = rows.get(digest)
        if row is None:
            missing.append(f"{case.seed}:{case.index}")
            continue
        assert row.size == len(case.payload)
        if row.status not in ("stored", "superseded", "retracted", "rejected"):
            unprocessed.append(f"{case.seed}:{case.index} status {row.status}")
        if row.status == "rejected" and not (row.reason or "").strip():
            no_reason.append(f"{case.seed}:{case.index}")
        elif row.status == "rejected" and row.reason.split(":", 1)[0] not in codes:
            unnamed.append(f"{case.seed}:{case.index} {row.reason[:80]}")
        if result is not None and result.status == "rejected":
            assert result.reason and result.reason == row.reason
    assert not missing, f"payloads not in the raw journal: {missing}"
    assert not unprocessed, f"journal rows left unprocessed: {unprocessed}"
    assert not no_reason, f"rejections without a reason: {no_reason}"
    assert not unnamed, f"rejections without a named reason code: {unnamed}"
    statuses = {row.status for row in rows.values()}
    assert {"stored", "rejected"} <= statuses  # both paths were exercised
    assert len(rows) == len(results)
