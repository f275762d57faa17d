# The two commands: `make run` serves the demo, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000
# The contract's largest client frame on /ws/ (settings.WS_MAX_MESSAGE_BYTES): daphne closes a
# socket that sends more with 1009.
WS_MAX := 65536

.PHONY: run test setup migrate lint bench

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Stamp files make a second run skip pip when the requirements did not change.
$(VENV)/.runtime: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime

migrate: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo

run: migrate
	$(VENV)/bin/daphne --websocket-max-message-size $(WS_MAX) --websocket-max-frame-size $(WS_MAX) \
		-b $(HOST) -p $(PORT) mediconnect.asgi:application

test: $(VENV)/.dev
	$(PY) manage.py makemigrations --check --dry-run >/dev/null
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .

$(VENV)/.bench: requirements-bench.txt $(VENV)/.dev
	$(PY) -m pip install --quiet -r requirements-bench.txt
	touch $@

# The app against a floor at clinic scale (bench/README.md): `make bench BENCH_ARGS="sockets --runs 1"`.
BENCH_ARGS ?= all
bench: $(VENV)/.bench
	$(PY) bench/run.py $(BENCH_ARGS)
