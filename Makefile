# Mesh Workbench — every target bootstraps .venv itself (uv, pinned by requirements.lock).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= $(CURDIR)/.workbench
PYTEST_ARGS ?=
# JupyterHub's proxy (npm configurable-http-proxy, pinned by .hub/package-lock.json)
HUB := .hub
PROXY_STAMP := $(HUB)/node_modules/.installed
HUB_PATH := PATH="$(CURDIR)/$(HUB)/node_modules/.bin:$$PATH"

.PHONY: run test lint format lock bench-quick clean help hub-proxy platform-check kernel-venv

help:
	@echo "make run    - set up .venv and start the platform on embedded backends with a demo tenant"
	@echo "make test   - set up .venv and run the whole test suite"
	@echo "make lint   - ruff (lint + format check) and mypy"
	@echo "make lock   - re-pin dependency versions into requirements.lock"
	@echo "make platform-check - kustomize builds validated offline, compose, images, settings"

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

$(STAMP): $(BIN)/uv requirements.lock pyproject.toml
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

# npm ci only when the lock changed; without npm the hub is skipped (make run says so)
$(PROXY_STAMP): $(HUB)/package.json $(HUB)/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix $(HUB) --no-audit --no-fund --loglevel=error && touch $@; \
	else \
		echo "npm not found: JupyterHub's configurable-http-proxy is not installed (install Node.js)"; \
	fi

hub-proxy: $(PROXY_STAMP)

# The interpreter of tenant servers and kernels when the hub runs as root: built from Debian's
# own Python outside /root (whose 0700 home hides .venv's interpreter from the per-user accounts)
# with only what a tenant server needs, pinned by requirements.lock (hub_config reads it there).
KERNEL_VENV ?= /opt/workbench-kernels
# the stamp names this checkout: the venv holds an editable install of one checkout, so another
# checkout (or a moved one) rebuilds it, and removes the other checkouts' stamps
KERNEL_STAMP := $(KERNEL_VENV)/.installed-$(shell printf %s "$(CURDIR)" | md5sum | cut -c1-12)
SYSTEM_PYTHON ?= /usr/bin/python3
ROOT_DEPS := $(if $(filter 0,$(shell id -u)),$(KERNEL_STAMP))

$(KERNEL_STAMP): $(BIN)/uv requirements.lock pyproject.toml
	$(SYSTEM_PYTHON) -m venv --without-pip $(KERNEL_VENV)
	awk 'NR==FNR { if ($$1 !~ /^#/) { split($$1, n, /[<>=!~]/); skip[n[1]] = 1 }; next } \
		{ split($$1, n, "=="); if (!(n[1] in skip)) print }' kernels/overrides.txt \
		requirements.lock > $(KERNEL_VENV)/constraints.txt
	$(BIN)/uv pip install --quiet --python $(KERNEL_VENV)/bin/python \
		-c $(KERNEL_VENV)/constraints.txt -c kernels/overrides.txt -e '.[notebook,hub,communication]' panel
	chmod -R a+rX $(KERNEL_VENV)
	@rm -f $(KERNEL_VENV)/.installed $(KERNEL_VENV)/.installed-*
	@touch $@

kernel-venv: $(KERNEL_STAMP)

run: $(STAMP) $(PROXY_STAMP) $(ROOT_DEPS)
	$(HUB_PATH) $(BIN)/workbench up --data-dir "$(DATA_DIR)"

test: $(STAMP) $(PROXY_STAMP) $(ROOT_DEPS)
	$(HUB_PATH) $(BIN)/python -m pytest $(PYTEST_ARGS)

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
	$(HUB_PATH) $(BIN)/workbench bench hub-spawn --quick

# Deployment files checked without a cluster (tests/platform): kustomize (Go, built once into
# .tools/bin with the version below; v5.8.3 needs Go 1.27), kubernetes-validate, compose spec
KUSTOMIZE_VERSION := v5.8.2
KUSTOMIZE := $(CURDIR)/.tools/bin/kustomize

$(KUSTOMIZE):
	GOBIN=$(CURDIR)/.tools/bin GOTOOLCHAIN=local go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

platform-check: $(STAMP) $(KUSTOMIZE)
	KUSTOMIZE=$(KUSTOMIZE) $(BIN)/python -m pytest tests/platform tests/test_layout.py -q -p no:cacheprovider

lock: $(BIN)/uv
	$(BIN)/uv pip compile --quiet pyproject.toml --extra all --extra dev -o requirements.lock

clean:
	rm -rf $(VENV) $(HUB)/node_modules .pytest_cache .mypy_cache .ruff_cache
