# AgentDesk: `make run` starts everything on the embedded default; `make test` runs the suite.
# Both set up what they need first: a Python 3.12+ virtualenv in .venv with the pinned packages.

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench shift vendor clean help

help:
	@echo "make run    start AgentDesk with the emulators (prints the URL and demo logins)"
	@echo "make test   lint and run the whole test suite"
	@echo "make bench  run the benchmarks (PostgreSQL), see BENCHMARKS.md"
	@echo "make shift  simulate a shift of 30 agents on its own stack and check its invariants (docs/shift.md)"

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $$(scripts/find-python) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m agentdesk.devstack run

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: $(STAMP) lint
	@scripts/ensure-chromium
	$(PY) -m agentdesk.devstack test $(PYTEST_ARGS)

# All need PostgreSQL (COPY, row locks); the live and load benches also need a Redis (see
# BENCHMARKS.md). The load benches take their sizes from BENCH_* variables (bench/load_bench.py),
# e.g. make bench BENCH_DESKS=500 BENCH_DESKS_MAX=2000.
# django-import-export takes about 9 ms a row (its dry run and its import): 10,000 rows keep make bench short;
# the issue's 50,000: make bench IMPORT_EXPORT_ROWS=50000.
IMPORT_EXPORT_ROWS ?= 10000
bench: $(STAMP)
	$(PY) bench/import_bench.py --xlsx --import-export $(IMPORT_EXPORT_ROWS) $(BENCH_ARGS)
	$(PY) bench/live_bench.py $(LIVE_BENCH_ARGS)
	$(PY) bench/queue_bench.py $(QUEUE_BENCH_ARGS)
	$(PY) bench/floor_bench.py $(FLOOR_BENCH_ARGS)
	$(PY) bench/load_bench.py callbacks $(LOAD_BENCH_ARGS)
	$(PY) bench/load_bench.py events $(LOAD_BENCH_ARGS)
	$(PY) bench/load_bench.py desks $(LOAD_BENCH_ARGS)
	$(PY) bench/load_bench.py dial $(LOAD_BENCH_ARGS)
	$(PY) bench/load_bench.py scaleout $(LOAD_BENCH_ARGS)

# A simulated shift on a stack of its own (var/shift, free ports); SHIFT_ARGS e.g.
# "--agents 30 --minutes 480 --time-scale 0.05" for an 8-hour shift (docs/shift.md).
shift: $(STAMP)
	$(PY) -m bench.shift $(SHIFT_ARGS)

# Re-vendor the front-end files from the npm registry (pinned in frontend/package.json).
vendor:
	cd frontend && npm install --no-audit --no-fund
	cp frontend/node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx-2.0.11.min.js
	cp frontend/node_modules/htmx-ext-ws/dist/ws.min.js static/vendor/htmx-ext-ws-2.0.4.min.js

clean:
	rm -rf $(VENV) var
