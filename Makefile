# onestop task runner. `make` (or `make help`) lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEPS   := $(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)
STAMP  := $(VENV)/.installed-dev-$(DEPS)
SERVE_STAMP := $(VENV)/.installed-server-$(DEPS)
MIN_VENV  := .venv-min
MIN_STAMP := $(MIN_VENV)/.installed-$(shell cat pyproject.toml tools/deps.py | cksum | cut -d' ' -f1)
MIN_INSTALL := -c $(MIN_VENV)/lowest.txt -e '.[server,batch]' pytest hypothesis
HOST ?= 127.0.0.1
PORT ?= 50051
# the lower-bound smoke test: quick tests that touch every dependency of base, server and batch
# (numpy, numba, pydantic, pyyaml, typer, rich: the CLI and samples; grpcio, protobuf, SQLAlchemy,
# alembic: the service and store; cryptography: certs; pyarrow: Parquet and CSV both ways; dask:
# the LocalCluster run). Not the whole of test_batch_files.py (150 s, most of it compiling kernel
# variants the lower-bound numba has no cache for): its Parquet/CSV round trip and the command.
MIN_TESTS := tests/test_cli.py tests/test_samples.py tests/test_grpc_service.py \
  tests/test_store_sql.py tests/test_cli_errors.py::test_version \
  tests/test_cli_errors.py::test_window_bill_file_mistakes_are_one_line \
  tests/test_batch_files.py::test_csv_equals_parquet_and_round_trip \
  tests/test_batch_files.py::test_cli_refuses_unsorted_and_missing_columns \
  tests/test_batch_dask.py::test_dask_equals_local \
  tests/test_auth.py::test_certs_command_writes_a_working_set
# No PYTHONDONTWRITEBYTECODE: uv installs no .pyc (compiled lazily, on first import), so with
# it every process the suite starts (test workers, servers, CLI subprocesses, Dask workers)
# compiled grpc, SQLAlchemy, pyarrow, dask, pydantic, ... and onestop from source again: 1.5-3.6 s
# of CPU a process start (2026-12-02). Each module is now compiled once, by the first process
# that imports it, into __pycache__/ (ignored by git). unexport: also when the caller's shell
# sets it (the shells here do).
unexport PYTHONDONTWRITEBYTECODE

.DEFAULT_GOAL := help
.PHONY: help setup lock serve test test-main test-min min-venv bench-micro test-fast test-deep warm lint format typecheck protos protos-check buf nojit bench bench-batch bench-grpc bench-start clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# The installer: uv (from PyPI, put into the venv by the venv's own pip) fetches and installs in
# parallel: the lock into a fresh .venv in 36 s where pip took 17 min (2-core machine at load
# 11, 2026-12-02). pip (upgraded first) when uv cannot be installed or its install fails.
# $(call install,VENV,PIP ARGS...)
define install
	@if [ ! -x $(1)/bin/uv ]; then $(1)/bin/pip install -q uv || echo "uv not installed: pip installs instead"; fi
	if [ -x $(1)/bin/uv ] && $(1)/bin/uv pip install --python $(1)/bin/python -q $(2); then :; \
	else $(1)/bin/pip install -q --upgrade pip && $(1)/bin/pip install -q $(2); fi
endef

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The tested versions (requirements.lock) of everything: tools, every extra.
$(STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(call install,$(VENV),-c requirements.lock -e '.[dev]')
	rm -f $(VENV)/.installed-*; touch $@ $(SERVE_STAMP)

# What the server needs and no more (the dev install includes it).
$(SERVE_STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(call install,$(VENV),-c requirements.lock -e '.[server]')
	touch $@

# The numba kernel compiled into its cache (engine/__pycache__) once, not under the first command
# that settles (10-20 s of CPU for each variant; engine/warm.py lists them). The stamp is
# remade when the kernel, its wrapper or the venv changes (numba keys its cache to the source).
WARM_DEPS := engine/kernel.py engine/batch.py engine/warm.py
engine/__pycache__/.warm-all: $(WARM_DEPS) $(STAMP)
	mkdir -p engine/__pycache__ && $(BIN)/onestop warm
	touch $@
engine/__pycache__/.warm-server: $(WARM_DEPS) $(SERVE_STAMP)
	mkdir -p engine/__pycache__ && $(BIN)/onestop warm --for server --for settle
	touch $@

setup: $(STAMP) engine/__pycache__/.warm-all ## Create .venv, install onestop with every extra and the dev tools, compile the kernel (idempotent)

lock: $(STAMP) ## Rewrite requirements.lock from .venv (after `make test` passes with newer versions)
	$(BIN)/python tools/deps.py lock > requirements.lock

serve: $(SERVE_STAMP) engine/__pycache__/.warm-server ## Run the settlement server on HOST:PORT (127.0.0.1:50051; SQLite in var/, sample policies and registry)
	$(BIN)/onestop serve --host $(HOST) --port $(PORT)

# pytest-xdist: one test process per core (XDIST= runs in one process). loadgroup: tests marked
# @pytest.mark.xdist_group(name) run in one worker; the others go to whichever worker is free.
XDIST ?= -n auto --dist loadgroup
NOJIT_XDIST ?= $(XDIST)

# The no-JIT coverage pass runs beside the main pass, in one process (NOJIT_XDIST=): the main
# pass leaves a core idle while its tests wait on servers, PostgreSQL and subprocesses; each
# pass's output is printed when it ends (--output-sync).
# ONESTOP_WAIT_FOR=FILE (set by .ci/run, which installs the page and Java packages in the
# background meanwhile): the tests start once FILE exists (at most 15 minutes' wait).
test: $(STAMP) ## The whole suite: lint, types, proto drift, tests (CI profile) and a no-JIT coverage pass beside them
	$(MAKE) --no-print-directory -j3 warm lint typecheck protos-check buf
	@if [ -n "$$ONESTOP_WAIT_FOR" ] && [ ! -e "$$ONESTOP_WAIT_FOR" ]; then \
	  echo "waiting for the system packages (.ci/run installs them in the background)"; \
	  n=0; while [ ! -e "$$ONESTOP_WAIT_FOR" ] && [ $$n -lt 900 ]; do sleep 1; n=$$((n + 1)); done; \
	  echo "waited $$n s for them"; fi
	$(MAKE) --no-print-directory -j2 --output-sync=target test-main nojit NOJIT_XDIST=

test-main: $(STAMP) ## The tests alone (CI profile, every core); make test runs it after lint and warm
	HYPOTHESIS_PROFILE=ci $(BIN)/pytest -q -p no:cacheprovider --durations=40 $(XDIST)

# The numba kernels compiled once into their cache (engine/__pycache__), every variant the
# CLI, the server, the batch and the tests run (engine/warm.py), beside lint and mypy, so that
# the test workers and the servers they start load them instead of each compiling them (10-20 s
# of CPU a variant). onestop warm compiles on every core (--jobs; engine/numbacache.py locks
# numba's cache index, which concurrent writers of one function could otherwise lose a variant of).
warm: engine/__pycache__/.warm-all ## Compile every variant of the numba kernel into its cache (onestop warm)

test-fast: $(STAMP) warm ## Tests with the small hypothesis profile, no lint (the kernel warmed first)
	$(BIN)/pytest -q -x

# The quick profile (20 examples a property, not dev's 200): the same 99% of the listed files
# (the gate is 95%) in 46 s of CPU instead of about 500 s; the examples themselves run in the
# main pass, compiled.
# The nightly size: the kernel == reference property with 20,000 examples (CI: 4,000) and the
# fuzz test with 10,000 requests a method (CI: 1,000), on every core (about 15 min on 2 cores).
test-deep: $(STAMP) warm ## Nightly: kernel == reference on 20,000 examples and the full-size fuzz test
	ONESTOP_HYPOTHESIS_EXAMPLES=20000 ONESTOP_FUZZ_N=10000 HYPOTHESIS_PROFILE=ci $(BIN)/pytest -q \
	  -p no:cacheprovider $(XDIST) tests/test_properties.py tests/test_fuzz.py

nojit: $(STAMP) ## Kernel tests again with NUMBA_DISABLE_JIT=1 so coverage sees inside the kernel
	NUMBA_DISABLE_JIT=1 HYPOTHESIS_PROFILE=quick $(BIN)/pytest -q -p no:cacheprovider $(NOJIT_XDIST) \
	  --cov=engine --cov-report= \
	  tests/test_golden.py tests/test_kernel_edges.py tests/test_properties.py tests/test_samples.py \
	  tests/test_budgets.py tests/test_allocation.py tests/test_allocation_properties.py
	$(BIN)/coverage report --show-missing --fail-under=95 \
	  --include='engine/kernel.py,engine/reference.py,engine/plainbatch.py,engine/engines.py,engine/batch.py,engine/policy/compiled.py,engine/allocation.py'

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## ruff fix and format in place
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy on engine/, adapters/, tests/ and benchmarks/ (pyproject.toml [tool.mypy])
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
	$(call install,$(MIN_VENV),$(MIN_INSTALL))
	touch $@

min-venv: $(MIN_STAMP) ## Install .venv-min only (the lower bounds; .ci/run does it beside make test)

# The lower-bound numba keeps its compiled kernels in the venv: numba keeps one cache index per
# source file and a numba of another version discards and rewrites it, so sharing
# engine/__pycache__ with .venv made each of make test and make test-min recompile the kernels
# the other had cached.
test-min: export NUMBA_CACHE_DIR := $(abspath $(MIN_VENV))/numba-cache
test-min: $(MIN_STAMP) ## Smoke test at the lower bounds of pyproject.toml (its own venv, .venv-min)
	$(MIN_VENV)/bin/pip check
	$(MIN_VENV)/bin/python -c 'import psycopg, alembic, cryptography, dask.distributed, pyarrow.parquet'
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
