# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
PYTEST_ARGS ?=
BENCH_ARGS ?=
export FLASK_APP := wsgi

.PHONY: install install-dev run test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Runtime requirements only: what `make run`, the Docker image and the benchmarks need.
$(RUNTIME_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# Tests and tools on top (pytest, Playwright for the browser tests).
$(DEV_STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(RUNTIME_STAMP)

install: $(RUNTIME_STAMP) ## create .venv and install the pinned runtime requirements

install-dev: $(DEV_STAMP) ## the same plus the test requirements

# One queue worker beside the web server, so scheduled and cross-posted work goes out with
# nothing else to start; Ctrl-C stops both.
run: install ## migrate, seed on first run, serve on http://127.0.0.1:5000 with a queue worker
	$(BIN)/flask db upgrade
	$(BIN)/flask first-run
	$(BIN)/flask worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/gunicorn --config gunicorn.conf.py wsgi:app

test: install-dev ## run the test suite (SQLite; PostgreSQL when DATABASE_URL names one)
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install ## benchmarks: figures, not pass/fail (see docs/benchmarks.md)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
