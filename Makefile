# onestop task runner. `make` (or `make help`) lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEPS   := $(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)
STAMP  := $(VENV)/.installed-dev-$(DEPS)
SERVE_STAMP := $(VENV)/.installed-server-$(DEPS)
MIN_VENV  := .venv-min
MIN_STAMP := $(MIN_VENV)/.installed-$(shell cat pyproject.toml tools/deps.py | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 50051
# the lower-bound smoke test: quick tests that touch every dependency of base, server and batch
MIN_TESTS := tests/test_cli.py tests/test_samples.py tests/test_grpc_service.py \
  tests/test_store_sql.py tests/test_batch_files.py tests/test_cli_errors.py::test_version \
  tests/test_cli_errors.py::test_window_bill_file_mistakes_are_one_line
export PYTHONDONTWRITEBYTECODE := 1

.DEFAULT_GOAL := help
.PHONY: help setup lock serve test test-min min-venv bench-micro test-fast warm lint format typecheck protos protos-check buf nojit bench bench-batch bench-grpc bench-start clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The tested versions (requirements.lock) of everything: tools, every extra.
$(STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	rm -f $(VENV)/.installed-*; touch $@ $(SERVE_STAMP)

# What the server needs and no more (the dev install includes it).
$(SERVE_STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install -q -c requirements.lock -e '.[server]'
	touch $@

setup: $(STAMP) ## Create .venv and install onestop with every extra and the dev tools (idempotent)

lock: $(STAMP) ## Rewrite requirements.lock from .venv (after `make test` passes with newer versions)
	$(BIN)/python tools/deps.py lock > requirements.lock

serve: $(SERVE_STAMP) ## Run the settlement server on HOST:PORT (127.0.0.1:50051; SQLite in var/, sample policies and registry)
	$(BIN)/onestop serve --host $(HOST) --port $(PORT)

# pytest-xdist: one test process per core (XDIST= runs in one process). loadgroup: tests marked
# @pytest.mark.xdist_group(name) run in one worker; the others go to whichever worker is free.
XDIST ?= -n auto --dist loadgroup

test: $(STAMP) ## The whole suite: lint, types, proto drift, tests (CI profile), then a no-JIT coverage pass
	$(MAKE) --no-print-directory -j3 lint typecheck protos-check buf warm
	HYPOTHESIS_PROFILE=ci $(BIN)/pytest -q -p no:cacheprovider $(XDIST)
	$(MAKE) --no-print-directory nojit

# The numba kernels compiled once into their cache (engine/__pycache__), beside lint and mypy,
# so that the test workers and the servers they start load them instead of each compiling them
# (about 25 s of CPU each in a fresh clone; concurrent cache writes are safe, just wasted).
warm: $(STAMP)
	$(BIN)/python -c 'import json, pathlib; from engine.batch import settle_batch; \
	  from engine.bill import parse_bill; from engine.policy.load import load_policies; \
	  s = sorted(pathlib.Path("policies/samples").glob("*.json")); \
	  b = [parse_bill(json.loads(f.read_text("utf-8"))) for f in s if f.name != "registry.json"]; \
	  p = load_policies(pathlib.Path("policies")); settle_batch(b, p); settle_batch(b, p, threads=2)'

test-fast: $(STAMP) ## Tests with the small hypothesis profile, no lint
	$(BIN)/pytest -q -x

nojit: $(STAMP) ## Kernel tests again with NUMBA_DISABLE_JIT=1 so coverage sees inside the kernel
	NUMBA_DISABLE_JIT=1 HYPOTHESIS_PROFILE=dev $(BIN)/pytest -q -p no:cacheprovider $(XDIST) \
	  --cov=engine --cov-report= \
	  tests/test_golden.py tests/test_kernel_edges.py tests/test_properties.py tests/test_samples.py \
	  tests/test_budgets.py tests/test_allocation.py tests/test_allocation_properties.py
	$(BIN)/coverage report --show-missing --fail-under=95 \
	  --include='engine/kernel.py,engine/reference.py,engine/batch.py,engine/policy/compiled.py,engine/allocation.py'

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## ruff fix and format in place
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy on the pure core (engine/)
	$(BIN)/mypy

protos: $(STAMP) ## Regenerate the gRPC code from protos/ (never edit adapters/grpc/gen by hand)
	$(BIN)/python -m adapters.grpc.codegen

protos-check: $(STAMP) ## Fail if the committed generated code differs from protos/
	$(BIN)/python -m adapters.grpc.codegen --check

buf: ## buf lint (STANDARD) and buf breaking against the base commit (buf from npm: protos/package-lock.json)
	protos/buf-check.sh

# Installed once: the lowest versions pyproject.toml allows (base, server, batch; pytest, hypothesis).
$(MIN_STAMP): pyproject.toml tools/deps.py
	rm -rf $(MIN_VENV)
	$(PYTHON) -m venv $(MIN_VENV)
	$(PYTHON) tools/deps.py lowest > $(MIN_VENV)/lowest.txt
	$(MIN_VENV)/bin/pip install -q -c $(MIN_VENV)/lowest.txt -e '.[server,batch]' pytest hypothesis
	touch $@

min-venv: $(MIN_STAMP) ## Install .venv-min only (the lower bounds; .ci/run does it beside make test)

# The lower-bound numba keeps its compiled kernels in the venv: numba keeps one cache index per
# source file and a numba of another version discards and rewrites it, so sharing
# engine/__pycache__ with .venv made each of make test and make test-min recompile the kernels
# the other had cached.
test-min: export NUMBA_CACHE_DIR := $(abspath $(MIN_VENV))/numba-cache
test-min: $(MIN_STAMP) ## Smoke test at the lower bounds of pyproject.toml (its own venv, .venv-min)
	$(MIN_VENV)/bin/pip check
	$(MIN_VENV)/bin/onestop --version
	$(MIN_VENV)/bin/onestop settle policies/samples/longzhou-1.json > /dev/null
	HYPOTHESIS_PROFILE=quick $(MIN_VENV)/bin/python -m pytest -q -p no:cacheprovider \
	  -m 'not postgres and not slow' $(MIN_TESTS)

bench-micro: $(STAMP) ## Micro-benchmarks (pytest-benchmark): kernel, reference, bill parsing
	$(BIN)/pytest -q -p no:cacheprovider benchmarks/test_micro.py

# The issue-13 benchmarks (benchmarks/harness.py: interleaved rounds, min/median/max, the load
# average with every figure). Long (tens of minutes on 2 cores) and noisy on a shared machine:
# run them one at a time, never beside each other. Figures: benchmarks/out/*.json.
bench: bench-batch bench-grpc bench-start ## All three benchmarks below, one after the other

bench-batch: $(STAMP) ## Batch: kernel vs warm pandas/polars/reference, F, onestop batch (1 M x 40)
	$(BIN)/python -m benchmarks.batch_bench

bench-grpc: $(STAMP) ## gRPC: PreSettle/Settle vs the rpc ceiling (Echo, Check), stream; durable stores
	$(BIN)/python -m benchmarks.grpc_bench

bench-start: $(STAMP) ## Start-up: `onestop settle` whole process, cached and cold; -X importtime
	$(BIN)/python -m benchmarks.startup_bench

clean: ## Remove the virtualenv, caches and the local database
	rm -rf $(VENV) $(MIN_VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage
