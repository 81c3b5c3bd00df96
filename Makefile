# onestop task runner. `make` (or `make help`) lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
export PYTHONDONTWRITEBYTECODE := 1

.DEFAULT_GOAL := help
.PHONY: help setup serve test test-fast lint format typecheck protos protos-check nojit bench-batch bench-grpc clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*; touch $@

setup: $(STAMP) ## Create .venv and install onestop with every extra (idempotent)

serve: $(STAMP) ## Run the settlement server on 127.0.0.1:50051 (SQLite in var/, sample policies and registry)
	$(BIN)/onestop serve

test: $(STAMP) ## The whole suite: lint, types, proto drift, tests (CI profile), then a no-JIT coverage pass
	$(MAKE) --no-print-directory lint typecheck protos-check
	HYPOTHESIS_PROFILE=ci $(BIN)/pytest -q -p no:cacheprovider
	$(MAKE) --no-print-directory nojit

test-fast: $(STAMP) ## Tests with the small hypothesis profile, no lint
	$(BIN)/pytest -q -x

nojit: $(STAMP) ## Kernel tests again with NUMBA_DISABLE_JIT=1 so coverage sees inside the kernel
	NUMBA_DISABLE_JIT=1 HYPOTHESIS_PROFILE=dev $(BIN)/pytest -q -p no:cacheprovider \
	  --cov=engine --cov-report= \
	  tests/test_golden.py tests/test_kernel_edges.py tests/test_properties.py tests/test_samples.py
	$(BIN)/coverage report --show-missing --fail-under=95 \
	  --include='engine/kernel.py,engine/reference.py,engine/batch.py,engine/policy/compiled.py'

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

bench-batch: $(STAMP) ## Batch benchmark (1 M bills x 40 items; see benchmarks/README.md)
	$(BIN)/python -m benchmarks.batch_bench

bench-grpc: $(STAMP) ## gRPC service benchmark (PreSettle, Settle, streaming)
	$(BIN)/python -m benchmarks.grpc_bench

clean: ## Remove the virtualenv, caches and the local database
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage
