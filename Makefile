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
BRIDGE_AET ?= PACSCLOUD
BRIDGE_HOST ?= 127.0.0.1
BRIDGE_PORT ?= 11112
EXPORTER_HOST ?= 127.0.0.1
EXPORTER_PORT ?= 8081
# The calling AE title `make run` lets talk to the bridge, from loopback only (development).
DEV_SCU_AET ?= DEVSCU
PYTEST_ARGS ?=
PY_SOURCES = $(wildcard libs/*/src services/*/src) scripts
# The kubectl scripts/install-test-deps.sh --deploy puts in .tools (its kustomize renders deploy/k8s);
# the version is its KUBECTL_VERSION: change both.
KUBECTL = $(CURDIR)/.tools/kubectl/1.33.9/kubectl

.PHONY: help install deps run demo test lint typecheck bench openapi openapi-check licenses \
	licenses-check deploy-check clean bench-scale

help: ## List the targets
	@awk -F ':.*## ' '/^[a-z][a-z-]*:.*## / { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

install: ## Install what the tests need: uv, Python deps, PostgreSQL, dicom3tools (root)
	scripts/install-test-deps.sh

deps: ## Install uv and the locked Python dependencies (uv sync --frozen)
	scripts/install-test-deps.sh --python-only

run: deps ## Start the API (127.0.0.1:8080), the DIMSE bridge (PACSCLOUD@127.0.0.1:11112) and the mesh exporter (127.0.0.1:8081); Ctrl-C stops them
	@mkdir -p var
	cat <<EOF
	Web dashboard: http://$(HOST):$(PORT)/ui
	DICOMweb root for viewers (OHIF, ...): $(DICOMWEB_URL)
	DIMSE bridge: AE title $(BRIDGE_AET) on $(BRIDGE_HOST):$(BRIDGE_PORT), calling AE title $(DEV_SCU_AET) from loopback
	  (e.g. TCP_NODELAY=1 echoscu -aet $(DEV_SCU_AET) -aec $(BRIDGE_AET) $(BRIDGE_HOST) $(BRIDGE_PORT))
	  status API (routing progress): http://127.0.0.1:8082/routing, or: uv run pacs routing status
	Mesh exporter (CT series to STL/PLY/OBJ jobs): http://$(EXPORTER_HOST):$(EXPORTER_PORT)/exports (see README, "Mesh exporter")
	Load the demo CT study from another terminal: make demo$(if $(filter-out 127.0.0.1:8080,$(HOST):$(PORT)), HOST=$(HOST) PORT=$(PORT))
	EOF
	export PACS_BRIDGE_AE_TITLE='$(BRIDGE_AET)' PACS_BRIDGE_HOST='$(BRIDGE_HOST)'
	export PACS_BRIDGE_PORT='$(BRIDGE_PORT)' PACS_BRIDGE_DICOMWEB_URL='$(DICOMWEB_URL)'
	dev_allow='[{"ae_title": "$(DEV_SCU_AET)", "host": "127.0.0.1"}]'
	export PACS_BRIDGE_ALLOW="$${PACS_BRIDGE_ALLOW:-$$dev_allow}"
	export PACS_EXPORTER_DICOMWEB_URL="$${PACS_EXPORTER_DICOMWEB_URL:-$(DICOMWEB_URL)}"
	# The dashboard at /ui calls the exporter and the bridge's status API from the browser.
	ui_origin='["http://$(HOST):$(PORT)"]'
	export PACS_API_UI_EXPORTER_URL="$${PACS_API_UI_EXPORTER_URL:-http://$(EXPORTER_HOST):$(EXPORTER_PORT)}"
	export PACS_API_UI_BRIDGE_STATUS_URL="$${PACS_API_UI_BRIDGE_STATUS_URL:-http://127.0.0.1:8082}"
	export PACS_EXPORTER_CORS_ALLOW_ORIGINS="$${PACS_EXPORTER_CORS_ALLOW_ORIGINS:-$$ui_origin}"
	export PACS_BRIDGE_ADMIN_CORS_ALLOW_ORIGINS="$${PACS_BRIDGE_ADMIN_CORS_ALLOW_ORIGINS:-$$ui_origin}"
	# Background jobs of a script ignore SIGINT: Ctrl-C reaches this shell, which stops them all.
	$(UV) run --frozen pacs-api serve --host $(HOST) --port $(PORT) & api=$$!
	$(UV) run --frozen pacs-bridge serve & bridge=$$!
	$(UV) run --frozen pacs-exporter serve --host $(EXPORTER_HOST) --port $(EXPORTER_PORT) & exporter=$$!
	trap 'kill -TERM $$api $$bridge $$exporter 2>/dev/null || true; wait' INT TERM EXIT
	wait -n

demo: deps ## Store the synthetic demo CT study in the running server (make run first)
	$(UV) run --frozen pacs-api load-demo --url $(DICOMWEB_URL)

test: install ## Install the test dependencies, then run the test suite (PYTEST_ARGS=... adds options)
	$(UV) run --frozen pytest $(PYTEST_ARGS)

lint: deps ## ruff check and ruff format --check
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

typecheck: deps ## mypy --strict on libs/, services/ and scripts/
	$(UV) run --frozen mypy $(PY_SOURCES)

bench: deps ## Run the benchmarks (bench/run.py; BENCH_SCALE_INSTANCES sizes the scale section)
	$(UV) run --frozen python bench/run.py

bench-scale: deps ## The scale benchmark at 1,000,000 instances on PostgreSQL (docs/capacity.md)
	$(UV) run --frozen python bench/run.py --sections scale --scale-database postgresql \
		--scale-instances $${BENCH_SCALE_INSTANCES:-1000000}

openapi: deps ## Regenerate openapi/api.json (API), bridge.json (bridge status API), exporter.json
	$(UV) run --frozen python scripts/export_openapi.py

openapi-check: deps ## Fail when a document in openapi/ differs from its service
	$(UV) run --frozen python scripts/export_openapi.py --check

licenses: deps ## Regenerate THIRD_PARTY_LICENSES.md from uv.lock and the installed packages
	$(UV) run --frozen python scripts/third_party_licenses.py

licenses-check: deps ## Fail when THIRD_PARTY_LICENSES.md differs from the locked dependencies
	$(UV) run --frozen python scripts/third_party_licenses.py --check

deploy-check: ## Render deploy/k8s (kustomize), validate it offline (Kubernetes schemas, hardening, settings), lint deploy/docker
	scripts/install-test-deps.sh --deploy
	$(UV) run --frozen python scripts/check_manifests.py --kubectl $(KUBECTL)

clean: ## Remove caches and build output (keeps .venv and the data under ./var/)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist
	find . -path ./.venv -prune -o -path ./.tools -prune -o -name __pycache__ -type d -print0 \
		| xargs -0 rm -rf
