# The two quick-start commands are `make run` and `make test`; everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
export HOST ?= 127.0.0.1:8000
export DEBUG ?= 1

.PHONY: install run test migrate demo worker beat bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py seed_demo

## Quick start: install, migrate, load the demo, serve on http://$(HOST)/
run: demo
	$(PY) manage.py runserver $(HOST)

## The whole test suite (SQLite by default; set DATABASE_URL and REDIS_URL for the real services)
test: install
	$(PY) -m pytest

worker: install
	$(VENV)/bin/celery -A cohortos worker -l info

beat: install
	$(VENV)/bin/celery -A cohortos beat -l info

bench: install
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) db.sqlite3 test_db.sqlite3 staticfiles .pytest_cache
