# The two commands of the README: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Exact versions with their hashes (`make lock` writes them from pyproject.toml with uv).
# Present: installed with pip --require-hashes. Absent: pip resolves pyproject.toml.
LOCK := requirements/dev.txt
AUDIT_VENV := .venv-audit
# pip-audit's default service, PyPI's JSON API, asked about a release with known advisories
# (Jinja2 2.10): no answer, or an answer without them, means nothing could be audited.
ADVISORIES := https://pypi.org/pypi/jinja2/2.10/json

.PHONY: serve test test-fast lint typecheck pytest fuzz soak bench-ingest bench-burst clean \
	lock audit

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml $(wildcard $(LOCK)) | $(BIN)/python
ifneq ($(wildcard $(LOCK)),)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
else
	$(BIN)/python -m pip install --quiet -e '.[test]'
endif
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
	rm -rf $(VENV) $(AUDIT_VENV) .mypy_cache .pytest_cache .ruff_cache

# Rewrite the lock files after changing pyproject.toml's dependencies: one set for every
# platform and Python 3.11+, with the hash of every file PyPI has for each version.
# requirements/app.txt is the image's (deploy/Dockerfile), dev.txt adds the test tools.
UV_COMPILE = $(BIN)/uv pip compile --universal --python-version 3.11 --generate-hashes \
	--quiet --custom-compile-command "make lock"
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet 'uv>=0.4'
	$(UV_COMPILE) pyproject.toml requirements/build.in -o requirements/app.txt
	$(UV_COMPILE) pyproject.toml requirements/build.in --extra test -o requirements/dev.txt
	$(UV_COMPILE) requirements/audit.in -o requirements/audit.txt

# Known vulnerabilities in the locked versions (pip-audit, PyPI's advisory data). Not part
# of `make test`: it needs the advisory service, which a machine may not reach.
$(AUDIT_VENV)/.installed: requirements/audit.txt
	$(PYTHON) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements/audit.txt
	touch $@

audit: $(AUDIT_VENV)/.installed
	@$(AUDIT_VENV)/bin/python -c "import json, urllib.request as u; \
		assert json.load(u.urlopen('$(ADVISORIES)', timeout=15))['vulnerabilities']" \
		2>/dev/null || { \
		echo "!!! make audit: cannot reach the advisory database: $(ADVISORIES) gave no" \
			"advisories. NOTHING WAS AUDITED. Run it where PyPI's JSON API answers. !!!" >&2; \
		exit 2; }
	$(AUDIT_VENV)/bin/pip-audit --strict --progress-spinner off --disable-pip --require-hashes \
		-r requirements/app.txt -r requirements/dev.txt \
		|| { status=$$?; echo "!!! make audit failed (exit $$status): a vulnerable version is" \
			"listed above, or the advisory database stopped answering (see pip-audit's" \
			"message) !!!" >&2; exit $$status; }

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
