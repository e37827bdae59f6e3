# Mesh Workbench — every target bootstraps .venv itself (uv, pinned by requirements.lock).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= $(CURDIR)/.workbench
PYTEST_ARGS ?=

.PHONY: run test lint format lock bench-quick clean help

help:
	@echo "make run    - set up .venv and start the platform on embedded backends with a demo tenant"
	@echo "make test   - set up .venv and run the whole test suite"
	@echo "make lint   - ruff (lint + format check) and mypy"
	@echo "make lock   - re-pin dependency versions into requirements.lock"

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

$(STAMP): $(BIN)/uv requirements.lock pyproject.toml
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/workbench up --data-dir "$(DATA_DIR)"

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench-quick: $(STAMP)
	$(BIN)/workbench bench entities-import --quick
	$(BIN)/workbench bench entities-read --quick
	$(BIN)/workbench bench streams-ingest --quick
	$(BIN)/workbench bench streams-query --quick
	$(BIN)/workbench bench graphql-list --quick
	$(BIN)/workbench bench graphql-large --quick
	$(BIN)/workbench bench schema-build --quick
	$(BIN)/workbench bench graphql-list-http --quick

lock: $(BIN)/uv
	$(BIN)/uv pip compile --quiet pyproject.toml --extra all --extra dev -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
