# storeloop: the two commands are `make run` and `make test`; everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Some machines set PYTHONDONTWRITEBYTECODE; then every server start (tests start many) would
# compile the app and its dependencies from source again. Let Python keep its bytecode.
unexport PYTHONDONTWRITEBYTECODE
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install lint format test-sqlite test-postgres bench clean-data

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	@echo "==> installing storeloop and its pinned dependencies into $(VENV)"
	$(PY) -m pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e ".[dev,distributed,spark]"
	@touch $(STAMP)

install: $(STAMP)

## make run: set up, migrate, load the demo shop and serve it on embedded defaults
run: install
	@bash scripts/run.sh

## make test: set up and run the whole suite (SQLite, then PostgreSQL for database tests)
test: install
	@bash scripts/test.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	@for f in bench/bench_*.py; do echo "==> $$f"; $(PY) $$f || exit 1; done

clean-data:
	rm -rf data
