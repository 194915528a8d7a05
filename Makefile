# The README's commands. `make run` serves the embedded demo; `make test` is what CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test bench bench-peers lint format check venv venv-dev clean audit

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

venv: $(VENV)/.runtime
venv-dev: $(VENV)/.dev

# Embedded demo: SQLite, django-q2 on the ORM broker, daphne; scheduled updates replay the
# held-back bundled bars one per update so the pages move.
# Ctrl-C (or a SIGTERM to make): the trap sends the cluster and daphne one SIGTERM and
# waits up to 6 s. django-q2's sentinel waits, without any deadline, for every worker to
# finish its current task (Sentinel.stop), and an update can take minutes: whatever is
# still alive then is SIGKILLed, workers first. Safe: an update is resumable and the
# reaper marks the killed run failed.
STOP_WAIT := 12
run: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py sync_schedules
	$(BIN)/python manage.py demo_setup
	@echo "Serving http://$(HOST):$(PORT)/  (Ctrl-C stops the web server and the scheduler)"
	@QUANTSITE_REPLAY_BARS_PER_UPDATE=$${QUANTSITE_REPLAY_BARS_PER_UPDATE:-1} \
	    $(BIN)/python manage.py qcluster & q=$$!; \
	  $(BIN)/daphne -b $(HOST) -p $(PORT) quantsite.asgi:application & d=$$!; \
	  trap 'trap "" INT TERM; kill -TERM $$q $$d 2>/dev/null; i=0; \
	    while [ $$i -lt $(STOP_WAIT) ] && { kill -0 $$q || kill -0 $$d; } 2>/dev/null; do \
	      sleep 0.5; i=$$((i + 1)); done; \
	    for s in $$(pgrep -P $$q); do pkill -KILL -P $$s; done; pkill -KILL -P $$q; \
	    kill -KILL $$q $$d 2>/dev/null; exit 0' INT TERM; \
	  wait

check: venv-dev
	$(BIN)/ruff check .
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

test: check
	$(BIN)/python -m pytest

# Known vulnerabilities in every pinned requirement (constraints.txt): fails on a finding
# not listed with its reason in .ci/pip-audit-ignore.txt; one line, exit 0, when the
# vulnerability service cannot be reached.
audit: venv-dev
	$(BIN)/python -m operations.dependency_audit

# Update-path figures, then every dashboard page's server time on the demo (bench/pages.py),
# the pages under 50 concurrent clients on a real daphne (bench/load.py, about a minute),
# then the exports of 100,000 trades (bench/exports.py, about 30 s), one push to 50 open
# pages in both channel-layer configurations (bench/push.py, about a minute), and a real
# one-worker qcluster's RSS over 200 one-bar updates of the demo (bench/memory.py, about
# 20 min), then issue 13's Monte Carlo of 10,000 paths x 252 days x 10 strategies on one core
# (bench/montecarlo.py, a few seconds).
# Every section also records its figures in bench/results.json and renders bench/RESULTS.md
# (bench/report.py). The peers (bench/peers.py, a few minutes) run too when .venv-bench
# exists: `make bench-peers` creates it.
bench: venv-dev
	$(BIN)/python bench/run.py
	$(BIN)/python bench/run.py pages
	$(BIN)/python bench/run.py load
	$(BIN)/python bench/exports.py
	$(BIN)/python bench/push.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/montecarlo.py
	@if [ -x $(BENCH_BIN)/python ]; then $(BENCH_BIN)/python bench/peers.py; \
	  else echo "bench: peers skipped (make bench-peers installs bt and vectorbt)"; fi

# Quantsite side by side with bt, vectorbt and a numpy loop on issue 12's workload, in an
# environment of its own (requirements.txt + requirements-bench.txt): bt and vectorbt are
# never installed into .venv. PEERS_ARGS=--scale adds the 100 x 100 x 5,001 workload (slow).
BENCH_VENV := .venv-bench
BENCH_BIN := $(BENCH_VENV)/bin
$(BENCH_VENV)/.installed: requirements.txt requirements-bench.txt constraints.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/pip install --quiet -r requirements.txt -r requirements-bench.txt -c constraints.txt
	touch $@

bench-peers: $(BENCH_VENV)/.installed
	$(BENCH_BIN)/python bench/peers.py $(PEERS_ARGS)

lint: venv-dev
	$(BIN)/ruff check .

format: venv-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(BENCH_VENV) var
