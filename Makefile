# Bright Run Conversation Studio: two commands for a new user.
#   make dev   set up everything and run the whole stack locally (http://127.0.0.1:8000)
#   make test  set up everything and run every check and test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# checkov in a venv of its own: it pins boto3==1.35.49, the app needs boto3>=1.40.
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
FRONT_STAMP := frontend/node_modules/.installed
PORT ?= 8000

.PHONY: dev test setup frontend lint typecheck unit integration e2e bench deploy clean browser checkov

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements-dev.txt
	@touch $(STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q -r requirements-checkov.txt
	@touch $(CHECKOV_STAMP)

$(FRONT_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	@touch $(FRONT_STAMP)

setup: $(STAMP) $(FRONT_STAMP) $(CHECKOV_STAMP)

frontend/dist/index.html: $(FRONT_STAMP) $(shell find frontend/src frontend/index.html -type f 2>/dev/null)
	cd frontend && npm run build --silent

frontend: frontend/dist/index.html

# Debian's Chromium for the browser tests (test tools cannot download browsers here).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# The CloudFormation templates against checkov's AWS checks (offline: --skip-download).
# Prints the failed checks and the summary line; any failed check fails the run. Skips
# are inline in the templates, each with its reason (infra/build.py).
checkov: $(CHECKOV_STAMP)
	$(CHECKOV) -f infra/template.json -f infra/cloudfront-waf.json --framework cloudformation \
		--skip-download --quiet --compact

dev: setup frontend
	$(PY) -m devstack.launcher --port $(PORT)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo

typecheck: $(STAMP) $(FRONT_STAMP)
	$(VENV)/bin/mypy app.py chalicelib devstack infra
	cd frontend && npm run typecheck --silent

test: setup frontend browser
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory lint typecheck && \
	$(PY) -m infra.build --check && \
	$(PY) -m infra.frontend_filters --check && \
	$(MAKE) --no-print-directory checkov && \
	(cd frontend && npm test --silent) && \
	$(VENV)/bin/pytest -q; status=$$?; \
	echo "make test finished in $$(( $$(date +%s) - start )) s"; exit $$status

unit: $(STAMP)
	$(VENV)/bin/pytest -q tests/unit

bench: setup
	$(PY) bench/generation.py
	$(PY) bench/generation.py --n 60 --faults 0 --malformed 0.1 --truncated 0.1 --timeouts 0.05
	$(PY) bench/estimate.py
	$(PY) bench/list_query.py
	$(PY) bench/export.py
	$(PY) bench/export_writers.py
	$(PY) bench/quality.py
	$(PY) bench/planner_coverage.py

deploy: setup frontend
	$(PY) -m infra.deploy $(if $(STAGE),--stage $(STAGE)) $(if $(REGION),--region $(REGION)) $(if $(ALARM_EMAIL),--alarm-email $(ALARM_EMAIL)) $(if $(DRY_RUN),--dry-run)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) frontend/node_modules frontend/dist .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
