# Warren: `make run` starts everything, `make test` checks everything.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/warren

.PHONY: run test demo services venv migrate lint suite pytest-sqlite pytest-postgres screenshots bench clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

services:
	@bash scripts/ensure-services.sh

migrate: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0

run: services venv migrate
	$(PY) manage.py ensure_admin
	@echo "[warren] starting Daphne, the tap and a Celery worker: http://127.0.0.1:$${WARREN_PORT:-8000}/  (Ctrl-C stops all)"
	$(VENV)/bin/honcho start

demo: services venv
	$(PY) manage.py demo

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Most tests wait on the broker, so they run in parallel workers (each with its
# own test database and scratch vhosts); the `serial` ones run alone afterwards.
PYTEST_WORKERS ?= 4
PYTEST := $(VENV)/bin/pytest -p no:cacheprovider

define run_suite
	$(PYTEST) -n $(PYTEST_WORKERS) -m "not serial"
	$(PYTEST) -m serial
endef

pytest-sqlite: venv
	@echo "[warren] test suite on SQLite"
	env -u DATABASE_URL $(MAKE) --no-print-directory suite

pytest-postgres: venv
	@if timeout 1 bash -c '</dev/tcp/127.0.0.1/5432' 2>/dev/null; then \
	  echo "[warren] test suite on PostgreSQL"; \
	  DATABASE_URL=$(PG_TEST_URL) $(MAKE) --no-print-directory suite; \
	else \
	  echo "[warren] no PostgreSQL on 127.0.0.1:5432: the PostgreSQL run is left out"; \
	fi

suite:
	$(run_suite)

test:
	@bash scripts/ensure-services.sh --test
	@$(MAKE) --no-print-directory venv lint pytest-sqlite pytest-postgres

screenshots: services venv
	$(PYTEST) tests/live/readme_screenshots.py

bench: services venv
	$(PY) manage.py bench all
	$(PY) manage.py bench_queues
	$(PY) manage.py bench_live
	$(PY) manage.py bench_load

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
