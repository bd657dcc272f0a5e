# Warren: `make run` starts everything, `make test` checks everything.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/warren

.PHONY: run test demo services venv node lock migrate lint pytest-sqlite pytest-postgres parallel-sqlite parallel-postgres serial-sqlite serial-postgres screenshots bench clean

# Installs exactly the versions in requirements.lock (a new release of a
# dependency cannot change a run); `make lock` refreshes the lock.
LOCK := requirements.lock
PIP_COMPILE := $(VENV)/bin/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url \
	--no-emit-trusted-host --no-emit-find-links --output-file $(LOCK) pyproject.toml

$(VENV)/.installed: pyproject.toml $(LOCK)
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(LOCK) -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

# The tests' third-party clients from the npm registry (amqplib, axe-core),
# exactly as package-lock.json pins them.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node: node_modules/.installed

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
	$(VENV)/bin/mypy

# Most tests wait on the broker, so they run in parallel workers (each with its
# own test database and scratch vhosts), and the SQLite and PostgreSQL runs of
# them go side by side, each with its own Redis database (Celery queue, live
# groups). The `serial` tests (broker restarts, a cluster, timing) then run
# alone: SQLite, then PostgreSQL.
PYTEST_WORKERS ?= 4
PYTEST := $(VENV)/bin/pytest -p no:cacheprovider --durations=10
TEST_REDIS ?= redis://127.0.0.1:6379
ON_SQLITE := env -u DATABASE_URL REDIS_URL=$(TEST_REDIS)/15
ON_POSTGRES := env DATABASE_URL=$(PG_TEST_URL) REDIS_URL=$(TEST_REDIS)/14
POSTGRES_UP = timeout 1 bash -c '</dev/tcp/127.0.0.1/5432' 2>/dev/null
NO_POSTGRES = echo "[warren] no PostgreSQL on 127.0.0.1:5432: the PostgreSQL run is left out"

parallel-sqlite: venv
	@echo "[warren] parallel tests on SQLite"
	$(ON_SQLITE) $(PYTEST) -n $(PYTEST_WORKERS) -m "not serial"

parallel-postgres: venv
	@if $(POSTGRES_UP); then \
	  echo "[warren] parallel tests on PostgreSQL (those about the database: not one_database)"; \
	  $(ON_POSTGRES) $(PYTEST) -n $(PYTEST_WORKERS) -m "not serial and not one_database"; \
	else $(NO_POSTGRES); fi

serial-sqlite: venv
	@echo "[warren] serial tests on SQLite"
	$(ON_SQLITE) $(PYTEST) -m serial

serial-postgres: venv
	@if $(POSTGRES_UP); then \
	  echo "[warren] serial tests on PostgreSQL (those about the database: not one_database)"; \
	  $(ON_POSTGRES) $(PYTEST) -m "serial and not one_database"; \
	else $(NO_POSTGRES); fi

pytest-sqlite: parallel-sqlite
	@$(MAKE) --no-print-directory serial-sqlite

pytest-postgres: parallel-postgres
	@$(MAKE) --no-print-directory serial-postgres

test:
	@bash scripts/ensure-services.sh --test
	@$(MAKE) --no-print-directory venv node lint
	@$(MAKE) --no-print-directory -j2 --output-sync=target parallel-sqlite parallel-postgres
	@$(MAKE) --no-print-directory serial-sqlite serial-postgres

screenshots: services venv
	$(PYTEST) tests/live/readme_screenshots.py
	WARREN_README_SCREENSHOTS=1 $(PYTEST) tests/browser/test_first_run.py

bench: services venv
	$(PY) manage.py bench all
	$(PY) manage.py bench_queues
	$(PY) manage.py bench_live
	$(PY) manage.py bench_load

lock: venv
	$(PIP_COMPILE) --upgrade
	@echo "[warren] $(LOCK) refreshed: review the diff, then run make test"

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
