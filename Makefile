# Works on a fresh machine with only Python 3.11+ and pip: `install` builds .venv from the lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test lint bench bench-live bench-webhooks bench-billing lock schema

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

serve: install
	$(BIN)/billgraph serve

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff (lint and format), mypy --strict, and the layering contract (import-linter).
lint: install
	$(BIN)/ruff check billgraph tests bench
	$(BIN)/ruff format --check billgraph tests bench
	$(BIN)/mypy billgraph bench
	$(BIN)/lint-imports --no-cache

bench: install
	$(BIN)/python -m bench.ledger

bench-live: install
	$(BIN)/python -m bench.live

bench-webhooks: install
	$(BIN)/python -m bench.webhooks

# `billgraph bill` over 1,000 and 10,000 due sandbox subscriptions, against pgbench: bench/billing.py.
bench-billing: install
	$(BIN)/python -m bench.billing

# Reads (wallet + entries, nested customers page) against the ceiling: bench/ceiling.py.
.PHONY: bench-reads bench-profile
bench-reads: install
	$(BIN)/python -m bench.reads

# Where a gateway worker's time goes under the wallet read (py-spy, kept outside the project).
PY_SPY_HOME ?= /tmp/pyspy
bench-profile: install
	test -x $(PY_SPY_HOME)/bin/py-spy || $(BIN)/python -m pip install --quiet --disable-pip-version-check --target $(PY_SPY_HOME) py-spy
	PY_SPY=$(PY_SPY_HOME)/bin/py-spy $(BIN)/python -m bench.profile

# Regenerate schema.graphql after changing the GraphQL surface (a test compares them).
schema: install
	$(BIN)/python -m billgraph.graphql.export > schema.graphql

# Re-pin dependencies after editing pyproject.toml.
lock: install
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --extra dev --generate-hashes --strip-extras -o requirements.lock pyproject.toml
