# Keyturn developer entry points. `make test` is what CI runs (.ci/run); `make demo` is the quick start.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv binaries system-deps lint typecheck unit test demo clean

help:
	@echo "make demo   - local control plane + operator + examples/quickstart.yaml (Ctrl-C to stop)"
	@echo "make test   - lint (ruff), types (mypy --strict) and the whole test suite"
	@echo "make unit   - unit tests only (no control plane)"

# The venv is rebuilt when the dependency pins change.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test,dev]'
	touch $@

venv: $(STAMP)

# Control plane, KWOK and Helm from the Go module proxy, cached outside the checkout (~/.cache/keyturn).
binaries:
	@bash hack/build-binaries.sh >/dev/null

# Debian packages the end-to-end tests use (Prometheus for the analysis gate, Lua for the Argo CD check).
system-deps:
	@bash hack/system-deps.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit -q

test: venv binaries system-deps lint typecheck
	$(BIN)/pytest

demo: venv binaries
	$(BIN)/python hack/demo.py

clean:
	rm -rf $(VENV) .keyturn .mypy_cache .ruff_cache .pytest_cache
