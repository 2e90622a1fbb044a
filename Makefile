# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
PYTEST_ARGS ?=
BENCH_ARGS ?=
export FLASK_APP := wsgi

.PHONY: install install-dev run test coverage bench lint constraints clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Runtime requirements only: what `make run`, the Docker image and the benchmarks need.
# constraints.txt pins every transitive dependency to what was tested; a requirement it does not
# name yet still installs (scripts/check_constraints.py says so; `make constraints` fixes it).
$(RUNTIME_STAMP): requirements.txt constraints.txt | $(BIN)/python
	$(BIN)/python scripts/check_constraints.py requirements.txt
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	touch $@

# Tests and tools on top (pytest, Playwright for the browser tests, ruff, mypy).
$(DEV_STAMP): requirements.txt requirements-dev.txt constraints.txt | $(BIN)/python
	$(BIN)/python scripts/check_constraints.py requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@ $(RUNTIME_STAMP)

install: $(RUNTIME_STAMP) ## create .venv and install the pinned runtime requirements

install-dev: $(DEV_STAMP) ## the same plus the test requirements

# One queue worker beside the web server, so scheduled and cross-posted work goes out with
# nothing else to start; Ctrl-C stops both.
# Both processes count their metrics in one folder (see dashboard/ops/metrics.py), emptied first.
run: export PROMETHEUS_MULTIPROC_DIR := $(CURDIR)/instance/metrics
run: install ## migrate, seed on first run, serve on http://127.0.0.1:5000 with a queue worker
	rm -rf $(PROMETHEUS_MULTIPROC_DIR) && mkdir -p $(PROMETHEUS_MULTIPROC_DIR)
	$(BIN)/flask db upgrade
	$(BIN)/flask first-run
	$(BIN)/flask worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/gunicorn --config gunicorn.conf.py wsgi:app

test: install-dev ## run the test suite (SQLite; PostgreSQL when DATABASE_URL names one)
	$(BIN)/pytest $(PYTEST_ARGS)

# The suite under coverage; fails below the floor in pyproject.toml ([tool.coverage.report]).
coverage: install-dev ## run the test suite and report coverage of dashboard/
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage report

# Style, imports and types (settings in pyproject.toml); .ci/run runs it before the tests.
lint: install-dev ## ruff and mypy over the code
	status=0; $(BIN)/ruff check . || status=1; $(BIN)/mypy || status=1; exit $$status

# Re-pin every transitive dependency after changing requirements*.txt; commit the result.
constraints: | $(BIN)/python ## regenerate constraints.txt from requirements-dev.txt (pip-tools)
	$(BIN)/pip install --quiet pip-tools==7.6.2
	$(BIN)/pip-compile --quiet --strip-extras --allow-unsafe --no-emit-index-url \
		--no-emit-find-links --output-file=constraints.txt requirements-dev.txt

bench: install ## benchmarks: figures, not pass/fail (see docs/benchmarks.md)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .coverage
