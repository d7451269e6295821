# computegrid: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

##@ Set-up

$(UV):
	@echo "bootstrap: installing uv $(UV_VERSION) into $(TOOLS)/"
	@$(PYTHON) -m venv $(TOOLS)
	@$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	@echo "bootstrap: installing the locked dependencies into $(VENV)/"
	@$(UV) sync --frozen --python $(PYTHON) --quiet
	@touch $@

# Bytecode of every installed module and of the package, written once: a shell with
# PYTHONDONTWRITEBYTECODE set (as here) never caches it, so every operator start compiled its
# imports again: 2.5 CPU-s of imports where 1.2 suffice (docs/operator.md, "Measured").
# compileall skips what is current, so a re-run after an edit costs a second.
$(VENV)/.bytecode: $(VENV)/.synced $(shell find operator -name '*.py')
	@$(BIN)/python -m compileall -q $(VENV)/lib operator >/dev/null
	@touch $@

.PHONY: install
install: $(VENV)/.synced $(VENV)/.bytecode ## Install the locked Python dependencies into .venv/

.PHONY: lock
lock: $(UV) ## Re-resolve uv.lock after changing pyproject.toml
	$(UV) lock --python $(PYTHON)

##@ Generated files

.PHONY: generate
generate: install ## Regenerate crds/ and the chart's CRDs from the API types; copy pyproject's version to the chart
	$(BIN)/computegrid crds --out crds/
	$(BIN)/computegrid crds --out charts/computegrid/crds/ \
	  --admission-policy charts/computegrid/templates/admission-policy.yaml
	$(BIN)/python deploy/release/sync_version.py

ADMISSION_POLICY := charts/computegrid/templates/admission-policy.yaml

.PHONY: verify
verify: generate ## Regenerate everything and fail on any difference from what is committed
	@git diff --exit-code -- charts/computegrid/Chart.yaml operator/computegrid/__init__.py || \
	  { echo "verify: the chart or __version__ drifted from pyproject's version: run 'make generate' and commit"; exit 1; }
	@git diff --exit-code -- crds/ charts/computegrid/crds/ $(ADMISSION_POLICY) || \
	  { echo "verify: generated files drifted from the API types: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- crds/ charts/computegrid/crds/ $(ADMISSION_POLICY))" || \
	  { echo "verify: untracked generated files: run 'make generate' and commit"; git status --short -- crds/ charts/; exit 1; }

##@ Checks and tests

.PHONY: lint
lint: install ## ruff, mypy --strict, the import-linter contracts; actionlint on .github/workflows when built
	$(BIN)/ruff check operator tests
	$(BIN)/ruff format --check operator tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	@bash deploy/ci/actionlint.sh run

.PHONY: actionlint-build
actionlint-build: ## Build actionlint from the Go module proxy into the cache (make test does)
	@bash deploy/ci/actionlint.sh build

.PHONY: test-unit
test-unit: install ## Unit tests of the pure core and the API types (seconds)
	$(BIN)/pytest -m "not integration and not e2e" tests

.PHONY: test-integration
test-integration: install testbed-build ## Integration tests on the local fleet of real control planes (minutes)
	$(BIN)/pytest -m integration tests

.PHONY: test-e2e
test-e2e: install ## End-to-end tests on kind (needs a Docker engine; skips without one)
	$(BIN)/pytest -m e2e tests

.PHONY: test
test: actionlint-build lint verify testbed-build ## Everything CI runs: lint (with actionlint), verify, unit and integration tests
	$(BIN)/pytest tests

##@ Running

.PHONY: demo
demo: install testbed-build ## The operator on a local national fleet (hub + 10 members): samples placed, table, PNG map
	$(BIN)/computegrid demo up

.PHONY: demo-fleet
demo-fleet: demo

.PHONY: demo-federated
demo-federated: install testbed-build ## The federated view: national hub, 2 regional hubs (own operators), 4 members; samples at the national hub, table with the Path
	$(BIN)/computegrid demo up --topology deploy/testbed/federation.yaml

.PHONY: explain
explain: install ## Dry run, no cluster: where each sample would go on an idle national fleet, and why
	$(BIN)/computegrid explain -f deploy/samples/ -o table

.PHONY: demo-down
demo-down: install ## Stop the demo's operators and fleets (flat and federated)
	$(BIN)/computegrid demo down

.PHONY: bench
bench: install ## Time the scheduling core at 10, 100 and 1,000 clusters
	@for n in 10 100 1000; do $(BIN)/computegrid bench --clusters $$n --jobs 5000 --json; done

.PHONY: sim
sim: install ## The placement-quality study: 20,000 jobs x 5 seeds, every policy, LP bound (hours on 2 cores); report in out/sim/
	@mkdir -p out/sim
	$(BIN)/computegrid sim --jobs 20000 --seeds 5 --bound-time-limit 3600 --report out/sim --json > out/sim/summary.json
	@sed -n '1,20p' out/sim/report.md

##@ Local test bed (real control planes built from Go modules)

.PHONY: testbed-build
testbed-build: ## Build (or reuse from the cache) etcd, kube-*, kubectl, kwok, kwokctl
	@bash deploy/testbed/build.sh

TESTBED_MEMBERS ?= 3
TESTBED_NAME ?= computegrid

.PHONY: testbed-up
testbed-up: install testbed-build ## Start a hub + N member clusters, or repair a running one (TESTBED_MEMBERS=N, default 3; TESTBED_NAME=X)
	$(BIN)/computegrid testbed up --members $(TESTBED_MEMBERS) --name $(TESTBED_NAME)

.PHONY: testbed-down
testbed-down: install ## Stop and delete the local fleet (TESTBED_NAME=X)
	$(BIN)/computegrid testbed down --name $(TESTBED_NAME)

.PHONY: testbed-status
testbed-status: install ## Every component of every cluster: process and health endpoint (exit 1 if one is down)
	$(BIN)/computegrid testbed status --name $(TESTBED_NAME)

.PHONY: testbed-repair
testbed-repair: install ## Restart the fleet's components that exited or hang (etcd data kept)
	$(BIN)/computegrid testbed repair --name $(TESTBED_NAME)

.PHONY: help
help: ## This help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} \
	  /^[a-zA-Z0-9_-]+:.*?##/ { printf "  %-18s %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
