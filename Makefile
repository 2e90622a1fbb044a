# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export FLASK_APP := wsgi

.PHONY: install run test bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned requirements

run: install ## migrate, seed on first run, serve on http://127.0.0.1:5000
	$(BIN)/flask db upgrade
	$(BIN)/flask first-run
	$(BIN)/gunicorn --config gunicorn.conf.py wsgi:app

test: install ## run the test suite (SQLite; PostgreSQL when DATABASE_URL names one)
	$(BIN)/pytest

bench: install ## benchmarks: figures, not pass/fail
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache
