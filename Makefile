# The two commands: `make run` serves the demo, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000
# The contract's largest client frame on /ws/ (settings.WS_MAX_MESSAGE_BYTES): daphne closes a
# socket that sends more with 1009.
WS_MAX := 65536
# `make run` serves as deployed, DEBUG off, with two local differences. Its signing key is generated
# once into KEY_FILE (gitignored, mode 600), so sessions survive restarts; SECRET_KEY in the
# environment or in .env wins. And LOCAL_HTTP=true: plain http:// on HOST:PORT, so no HTTPS redirect,
# Secure cookies or HSTS (a deployment behind TLS keeps them).
KEY_FILE := $(CURDIR)/.secret_key
# Web Push's VAPID key (docs/push.md) is kept the same way, in VAPID_KEY_FILE (a P-256 PEM, gitignored,
# mode 600), so browsers' subscriptions survive restarts; VAPID_PRIVATE_KEY in the environment or .env wins.
VAPID_KEY_FILE := $(CURDIR)/.vapid_key.pem
LOCAL    := SECRET_KEY_FILE=$(KEY_FILE) VAPID_PRIVATE_KEY_FILE=$(VAPID_KEY_FILE) LOCAL_HTTP=$${LOCAL_HTTP:-true}
# daphne listens through a Twisted endpoint because -b/-p keep Twisted's listen backlog of 50, and a
# burst of new connections (every portal reconnecting after a blip) beyond it is refused. The kernel
# caps BACKLOG at net.core.somaxconn. An IPv6 HOST's colons are escaped, as the endpoint syntax needs.
BACKLOG  ?= 1024
# How long a socket may take from TCP connect to accepted. daphne's default of 5 s drops the
# handshakes that queue behind a reconnect storm larger than one process accepts per second (about
# 270/s on one core here), and every dropped client retries, adding to the storm; queued, they are
# all served (10,000 at 500/s: see bench/). Slow or stalled clients are still cut off after it.
WS_CONNECT_TIMEOUT ?= 30
ENDPOINT  = tcp:port=$(PORT):interface=$(subst :,\:,$(subst [,,$(subst ],,$(HOST)))):backlog=$(BACKLOG)

# The flags every daphne process of ours runs with (`make run`, each node of `make run-cluster`): daphne's
# own, given to `python -m mediconnect.server`, daphne with our server class (mediconnect/server/).
DAPHNE_FLAGS = --websocket-max-message-size $(WS_MAX) --websocket-max-frame-size $(WS_MAX) \
	--websocket_connect_timeout $(WS_CONNECT_TIMEOUT)
# `make run-cluster`: NODES daphne processes on ports BASE_PORT, BASE_PORT+1, … behind nginx on
# HOST:PORT (deploy/cluster.py; docs/cluster.md). The launcher restarts any of its
# processes that exits by itself (with backoff); Ctrl-C stops them all. CLUSTER_TURN=1 runs a coturn
# beside them for the video visits (TURN_HOST, TURN_PORT, TURN_MIN_PORT/TURN_MAX_PORT, TURN_SECRET or
# one generated into .turn_secret; docs/cluster.md).
NODES     ?= 2
BASE_PORT ?= 8001
SUDO      := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run run-cluster cluster-check nginx pdf-libs test-tools test test-calls setup migrate lint bench

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Stamp files make a second run skip pip when the requirements did not change.
$(VENV)/.runtime: requirements.txt | $(PY) pdf-libs
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime

$(KEY_FILE): | $(PY)
	umask 077 && $(PY) -c 'import secrets; print(secrets.token_urlsafe(50))' > $@.tmp && mv $@.tmp $@

$(VAPID_KEY_FILE): | setup
	umask 077 && $(PY) -c 'from cryptography.hazmat.primitives import serialization as s; \
		from cryptography.hazmat.primitives.asymmetric import ec; \
		key = ec.generate_private_key(ec.SECP256R1()); \
		print(key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()).decode(), end="")' \
		> $@.tmp && mv $@.tmp $@

# collectstatic: deployed (DEBUG off) the pages name static files by a hash of their content.
migrate: setup $(KEY_FILE) $(VAPID_KEY_FILE)
	$(LOCAL) $(PY) manage.py migrate --noinput
	$(LOCAL) $(PY) manage.py collectstatic --noinput -v 0
	$(LOCAL) $(PY) manage.py seed_demo

# The task worker (reminders, offline email/SMS) runs beside daphne: `manage.py run_worker`, in the
# background of the same shell, stopped with daphne (Ctrl-C reaches both; the trap covers the rest).
WORKER_ARGS ?=
run: migrate
	$(LOCAL) $(PY) manage.py run_worker $(WORKER_ARGS) & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(LOCAL) $(PY) -m mediconnect.server $(DAPHNE_FLAGS) \
		-e '$(ENDPOINT)' mediconnect.asgi:application

# Debian's nginx, installed when missing (the cluster runs it as a user-level process of its own).
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
		echo "nginx is missing: installing Debian's package"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }

# WeasyPrint (prescriptions' PDFs) loads the system's Pango with its FreeType/fontconfig backend: Debian's
# libpango-1.0-0 and libpangoft2-1.0-0, installed when missing. The fonts are the repository's own.
PANGO_LIBS := libpango-1.0.so.0 libpangoft2-1.0.so.0
pdf-libs:
	@for lib in $(PANGO_LIBS); do /sbin/ldconfig -p 2>/dev/null | grep -q "$$lib" || missing=1; done; \
	if [ -n "$$missing" ]; then \
		echo "Pango is missing (WeasyPrint needs it): installing Debian's libpango-1.0-0 and libpangoft2-1.0-0"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 >/dev/null; fi

# The tests read the prescriptions' PDFs as a reader would, with poppler's pdftotext (poppler-utils),
# and start a coturn of their own (Debian's coturn: turnserver, turnutils_uclient).
test-tools:
	@command -v pdftotext >/dev/null 2>&1 || { \
		echo "pdftotext is missing: installing Debian's poppler-utils"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null; }
	@# The Web Push tests start the npm web-push-testing server (package.json, pinned by package-lock.json),
	@# installed here with `npm ci` when missing. Without Node and npm those tests skip, saying why (CI has them).
	@test -d node_modules/web-push-testing || { \
		if command -v npm >/dev/null 2>&1; then echo "web-push-testing is missing: npm ci"; npm ci --no-audit --no-fund --silent; \
		else echo "npm is missing: the web-push-testing tests will skip (Node >= 20 and npm install it)"; fi; }
	@command -v turnserver >/dev/null 2>&1 || { \
		echo "turnserver is missing (the TURN tests start a coturn of their own): installing Debian's coturn"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq coturn >/dev/null; }

# PostgreSQL and Redis are named before anything is migrated: a cluster on SQLite would not share.
cluster-check: setup
	$(PY) deploy/cluster.py check

run-cluster: cluster-check nginx migrate
	$(LOCAL) NODES=$(NODES) BASE_PORT=$(BASE_PORT) HOST=$(HOST) PORT=$(PORT) \
		$(PY) deploy/cluster.py --daphne-args '$(DAPHNE_FLAGS)'

test: $(VENV)/.dev | test-tools
	DATABASE_URL=sqlite:///:memory: $(PY) manage.py makemigrations --check --dry-run --settings mediconnect.settings_test >/dev/null
	$(PY) -m pytest $(PYTEST_ARGS)

# The video calls in Chromium through coturn, kept out of `make test` while they are flaky here
# (docs/video.md, "Known problem").
test-calls: $(VENV)/.dev | test-tools
	$(PY) -m pytest -m 'webrtc_call or chromium_flaky' tests/test_visit_browser.py tests/test_pwa_browser.py $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .

$(VENV)/.bench: requirements-bench.txt $(VENV)/.dev
	$(PY) -m pip install --quiet -r requirements-bench.txt
	touch $@

# The app against a floor at clinic scale (bench/README.md): `make bench BENCH_ARGS="sockets --runs 1"`.
BENCH_ARGS ?= all
bench: $(VENV)/.bench
	$(PY) bench/run.py $(BENCH_ARGS)
