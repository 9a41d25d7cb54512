# The two commands of the README: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test test-fast lint typecheck pytest fuzz soak bench-ingest bench-burst clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/python -m bot serve

lint: $(STAMP)
	$(BIN)/ruff check bot tests bench
	$(BIN)/ruff format --check bot tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

# The pure core and the adapters against their fakes: seconds, not minutes.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit tests/contract

# Longer runs of the robustness tests: 10,000 fuzz cases; 2,000 issues under faults.
fuzz: $(STAMP)
	FUZZ_EXAMPLES=10000 $(BIN)/python -m pytest -q -p no:logging tests/e2e/test_fuzz.py

soak: $(STAMP)
	SOAK_ISSUES=2000 $(BIN)/python -m pytest -q -p no:logging tests/e2e/test_faults.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# Benchmarks (bench/README.md): figures, not tests. `make test` runs each once at a tiny
# size (tests/e2e/test_bench.py). Extra options: make bench-ingest BENCH_ARGS="--profile".
bench-ingest: $(STAMP)
	@if command -v npm >/dev/null; then \
		cd bench/probot && npm ci --no-audit --no-fund --loglevel=error \
			|| echo "!!! npm ci failed: bench-ingest will skip Probot !!!" >&2; \
	else \
		echo "!!! npm is not installed: bench-ingest will skip Probot !!!" >&2; \
	fi
	$(BIN)/python -m bench.ingest --no-install $(BENCH_ARGS)

bench-burst: $(STAMP)
	$(BIN)/python -m bench.burst $(BENCH_ARGS)
