# mm_broker: the two commands of the README.
#   make demo  - set everything up, then run the demo on the bundled real data
#   make test  - set everything up, then run lint, type checks and the whole test suite
# Set-up is incremental: the virtual environment is rebuilt only when pyproject.toml
# changes; jars are fetched once into ~/.cache/mm-broker; services up is idempotent.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: setup services demo test lint typecheck unit bench fuzz down clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (voevent-parse does not install on newer versions)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

services: setup
	$(BIN)/mm-broker services up

demo: services
	$(BIN)/mm-broker demo

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/python -m pytest -m "not services and not spark"

test: services lint typecheck
	$(BIN)/python -m pytest

# Mutation fuzzing of every parser and the alert decoder (>= 100,000 cases; prints
# counts per outcome; exit 1 with a reproduction command on any uncaught exception).
FUZZ_CASES ?= 100000
FUZZ_SEED ?= 1
fuzz: setup
	$(BIN)/python -m fuzz.run --cases $(FUZZ_CASES) --seed $(FUZZ_SEED) --json --progress

bench: services
	mkdir -p benchmarks/results
	for b in notices pipeline join latency retro publish; do \
	  $(BIN)/mm-broker bench $$b --json | tee benchmarks/results/$$b.json || exit 1; done

down:
	-$(BIN)/mm-broker services down

clean: down
	-$(BIN)/mm-broker services clean
	rm -rf .mm $(VENV)
