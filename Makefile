# The README's commands. `make run` serves the embedded demo; `make test` is what CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test bench lint format check venv venv-dev clean

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
run: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_setup
	@echo "Serving http://$(HOST):$(PORT)/  (Ctrl-C stops the web server and the scheduler)"
	@trap 'kill 0' INT TERM EXIT; \
	  QUANTSITE_REPLAY_BARS_PER_UPDATE=$${QUANTSITE_REPLAY_BARS_PER_UPDATE:-1} \
	    $(BIN)/python manage.py qcluster & \
	  $(BIN)/daphne -b $(HOST) -p $(PORT) quantsite.asgi:application

check: venv-dev
	$(BIN)/ruff check .
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

test: check
	$(BIN)/python -m pytest

bench: venv-dev
	$(BIN)/python bench/run.py

lint: venv-dev
	$(BIN)/ruff check .

format: venv-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var
