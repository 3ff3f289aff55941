# skuport — the two commands of the README, and their parts.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
SKUPORT_DATA_DIR ?= skuport-data
export SKUPORT_DATA_DIR

.PHONY: run test setup setup-test lint typecheck test-sqlite test-postgres test-deps demo token clean

# What running needs (make run), and the test and lint tools on top of it (make test).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

setup: $(STAMP)

setup-test: $(TEST_STAMP)

## make run: set up, load the demo world, print an admin token, serve on http://127.0.0.1:8000
run: setup
	$(BIN)/skuport db upgrade
	$(BIN)/skuport demo --records $${SKUPORT_DEMO_RECORDS:-1000}
	@echo "admin token (24h): $$($(BIN)/skuport token create --user user-admin)"
	@echo "console: http://$${SKUPORT_HOST:-127.0.0.1}:$${SKUPORT_PORT:-8000}/console, user user-admin"
	@$(BIN)/skuport user password user-admin --generate --if-unset
	$(BIN)/skuport serve

test-deps: setup-test
	@if [ -x scripts/test-deps.sh ]; then bash scripts/test-deps.sh; fi

lint: setup-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-sqlite: setup-test test-deps
	SKUPORT_TEST_DB=sqlite $(BIN)/pytest -q -p no:cacheprovider

test-postgres: setup-test test-deps
	SKUPORT_TEST_DB=postgres $(BIN)/pytest -q -p no:cacheprovider

## make test: set up and run the whole suite on SQLite, then on PostgreSQL, plus ruff and mypy
test: lint test-sqlite test-postgres

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
