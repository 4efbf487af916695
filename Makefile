# pacs-cloud: every developer and CI task. `make` (or `make help`) lists them.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DELETE_ON_ERROR:
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules
.DEFAULT_GOAL := help

# uv from PATH, else the copy scripts/install-test-deps.sh puts in .tools/uv (looked up when used).
UV = $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/uv/bin/uv)
HOST ?= 127.0.0.1
PORT ?= 8080
DICOMWEB_URL = http://$(HOST):$(PORT)/dicom-web
PYTEST_ARGS ?=
PY_SOURCES = $(wildcard libs/*/src services/*/src) scripts

.PHONY: help install deps run demo test lint typecheck bench openapi openapi-check clean

help: ## List the targets
	@awk -F ':.*## ' '/^[a-z][a-z-]*:.*## / { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

install: ## Install what the tests need: uv, Python deps, PostgreSQL, dicom3tools (root)
	scripts/install-test-deps.sh

deps: ## Install uv and the locked Python dependencies (uv sync --frozen)
	scripts/install-test-deps.sh --python-only

run: deps ## Start the API on 127.0.0.1:8080 (SQLite + files under ./var/); Ctrl-C stops it
	@mkdir -p var
	cat <<EOF
	DICOMweb root for viewers (OHIF, ...): $(DICOMWEB_URL)
	Load the demo CT study from another terminal: make demo$(if $(filter-out 127.0.0.1:8080,$(HOST):$(PORT)), HOST=$(HOST) PORT=$(PORT))
	EOF
	exec $(UV) run --frozen pacs-api serve --host $(HOST) --port $(PORT)

demo: deps ## Store the synthetic demo CT study in the running server (make run first)
	$(UV) run --frozen pacs-api load-demo --url $(DICOMWEB_URL)

test: install ## Install the test dependencies, then run the test suite (PYTEST_ARGS=... adds options)
	$(UV) run --frozen pytest $(PYTEST_ARGS)

lint: deps ## ruff check and ruff format --check
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

typecheck: deps ## mypy --strict on libs/, services/ and scripts/
	$(UV) run --frozen mypy $(PY_SOURCES)

bench: deps ## Run the benchmarks (bench/run.py)
	$(UV) run --frozen python bench/run.py

openapi: deps ## Regenerate openapi/api.json from the app
	$(UV) run --frozen python scripts/export_openapi.py

openapi-check: deps ## Fail when openapi/api.json differs from the app's document
	$(UV) run --frozen python scripts/export_openapi.py --check

clean: ## Remove caches and build output (keeps .venv and the data under ./var/)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist
	find . -path ./.venv -prune -o -path ./.tools -prune -o -name __pycache__ -type d -print0 \
		| xargs -0 rm -rf
