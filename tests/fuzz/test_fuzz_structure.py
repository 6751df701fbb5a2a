"""The fuzzing package's own contract: its tables, and cases that replay anywhere.

A failure of ``make fuzz`` is only useful if ``python -m fuzz.run --seed S --case I``
gives the same case in another process: these tests draw cases in subprocesses with
different hash seeds (the order of a ``set`` of strings changes with it) and replay
one through the command line.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `python -m pytest` has it; a bare `pytest` does not
    sys.path.insert(0, str(REPO))

from fuzz.corpus import FAMILY_WEIGHTS, NOTICE_FAMILIES, Corpus, load_corpus  # noqa: E402
from fuzz.mutators.notice import STRUCTURED  # noqa: E402
from fuzz.mutators.registry import CASE_BUILDERS, make_case  # noqa: E402

#: Seed and cases drawn in the subprocesses (notice families: their splices draw a
#: partner from every notice family).
SEED = "20261126"
N_CASES = 1_500
FAMILIES = "xml,json,gwalert"

#: Prints the digest of the descriptions of cases 0 .. N_CASES - 1.
_DIGEST_SCRIPT = """
import hashlib, json, sys
from fuzz.corpus import load_corpus
from fuzz.mutators.registry import make_case
seed, n, families, data = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4]
corpus = load_corpus(data)
h = hashlib.sha256()
for i in range(n):
    h.update(json.dumps(make_case(corpus, seed, i, families).describe()).encode())
print(h.hexdigest())
"""


@pytest.fixture(scope="module")
def corpus(data_dir: Path) -> Corpus:
    """The seed files."""
    return load_corpus(data_dir)


def _env(hash_seed: str) -> dict[str, str]:
    return {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}


def test_every_family_has_one_case_builder() -> None:
    assert set(CASE_BUILDERS) == set(FAMILY_WEIGHTS)
    assert set(STRUCTURED) == NOTICE_FAMILIES
    assert all(0.0 < share < 1.0 for _, share in STRUCTURED.values())


def test_cases_do_not_depend_on_the_hash_seed(corpus: Corpus, data_dir: Path) -> None:
    """The same seed gives the same cases in any process (the failing run's case is the
    one ``--case`` replays)."""
    here = hashlib.sha256()
    for i in range(N_CASES):
        case = make_case(corpus, SEED, i, FAMILIES.split(","))
        here.update(json.dumps(case.describe()).encode())
    digests = set()
    for hash_seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", _DIGEST_SCRIPT, SEED, str(N_CASES), FAMILIES,
             str(data_dir)],
            cwd=REPO, env=_env(hash_seed), capture_output=True, text=True, timeout=300,
            check=True)
        digests.add(out.stdout.strip())
    assert digests == {here.hexdigest()}


def test_command_line_replays_one_case(corpus: Corpus, data_dir: Path) -> None:
    index = 7_123
    out = subprocess.run(
        [sys.executable, "-m", "fuzz.run", "--seed", SEED, "--case", str(index), "--json",
         "--data", str(data_dir)],
        cwd=REPO, env=_env("3"), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    replay = json.loads(out.stdout)
    assert replay["case"] == make_case(corpus, SEED, index).describe()
    assert replay["failures"] == []
    assert replay["kind"] is not None


def test_fuzz_modules_stay_small() -> None:
    sizes = {p.relative_to(REPO).as_posix(): len(p.read_text("utf-8").splitlines())
             for p in sorted((REPO / "fuzz").rglob("*.py"))}
    assert {p: n for p, n in sizes.items() if n > 500} == {}
    assert "fuzz/mutators/registry.py" in sizes
