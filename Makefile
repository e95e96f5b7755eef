# Sandlåda developer entry points. `make dev` brings the platform up locally,
# `make test` runs the whole suite; both set up everything they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
export SANDLADA_CACHE_DIR ?= $(HOME)/.cache/sandlada

.PHONY: dev test lint typecheck migration venv infra clean check unit

venv: $(STAMP)

$(STAMP): pyproject.toml
	@echo "==> setting up virtualenv in $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# Build or fetch (cached outside the repo) the local platform components.
infra: venv
	@bash infra/setup.sh

dev: venv infra
	@$(VENV)/bin/sandlada dev keycloak up
	@$(VENV)/bin/sandlada dev up

test: venv infra
	@$(PY) -m pytest $(PYTEST_ARGS)

unit: venv
	@$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: venv
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/lint-imports

typecheck: venv
	@$(VENV)/bin/mypy

check: lint typecheck test

# Usage: make migration m="add usage tables"
migration: venv
	@$(VENV)/bin/sandlada db upgrade
	@$(VENV)/bin/alembic -c controlplane/alembic.ini revision --autogenerate -m "$(m)"

clean:
	@$(VENV)/bin/sandlada dev down || true
	@$(VENV)/bin/sandlada dev keycloak down || true
	rm -rf var
