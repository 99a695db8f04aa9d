# Every target sets up what it needs on a fresh machine: uv (from PyPI) and the locked venv.
# --compile-bytecode: uv (unlike pip) installs without .pyc files, and with
# PYTHONDONTWRITEBYTECODE set (as on these machines) every process would then compile
# Dagster from source at start-up: 2.2 s instead of 5-6 s to import the definitions.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null)
VENV := .venv
STAMP := $(VENV)/.synced

.PHONY: setup demo test test-fast lint format clean eval registry-eval bench bench-load

setup: $(STAMP)

$(STAMP): pyproject.toml uv.lock
	@if [ -z "$(UV)" ]; then $(PYTHON) -m pip install --quiet --disable-pip-version-check uv; fi
	@$$(command -v uv || echo "$(PYTHON) -m uv") sync --frozen --all-groups --compile-bytecode
	@touch $@

demo: setup
	$(VENV)/bin/talent demo

test: setup
	@scripts/ensure-chromium
	@scripts/ensure-postgres
	@scripts/ensure-sqs-emulator
	$(VENV)/bin/python -m pytest -q

# Unit and integration tests without the ones marked slow (no stack, no browser): a few minutes.
test-fast: setup
	$(VENV)/bin/python -m pytest -q tests/unit tests/integration -m "not slow"

# The registry evaluation scores the people of the very runs evaluate.py just made (kept in
# EVAL_WORK), so make eval runs the pipeline once per video.
EVAL_WORK ?= artifacts/eval-work
eval: setup
	$(VENV)/bin/python -m benchmarks.evaluate --work $(EVAL_WORK)
	$(VENV)/bin/python -m benchmarks.registry_eval --work $(EVAL_WORK)

registry-eval: setup
	$(VENV)/bin/python -m benchmarks.registry_eval

bench: setup
	$(VENV)/bin/python -m benchmarks.bench

# 30 videos through the production topology (PostgreSQL, code server, webserver, daemon as
# separate processes): videos per minute and the largest queue wait (docs/performance.md).
bench-load: setup
	@scripts/ensure-postgres
	$(VENV)/bin/python -m benchmarks.load --videos 30 --max-concurrent 2

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
