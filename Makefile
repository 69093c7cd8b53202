# The two commands: `make run` and `make test`. Everything else is a step they share.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export FNPLATFORM_DATA_DIR ?= $(CURDIR)/var

.PHONY: run test setup lint format migrate bench clean browser sandbox

$(VENV)/.created:
	"$$(scripts/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	touch $@

# Reinstall only when requirements.txt changes, so a second `make run` is fast.
$(VENV)/.installed: requirements.txt $(VENV)/.created
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

setup: $(VENV)/.installed

migrate: setup sandbox
	$(PY) manage.py migrate --noinput

# Plugin processes run under bubblewrap (functions/workers/sandbox.py). Root installs
# Debian's package; anyone else is told how, and the server runs with the protections
# it can get (GET /health lists them).
sandbox:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's bubblewrap for the plugin sandbox"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; } \
	      || echo "Could not install bubblewrap: plugin code runs with fewer protections."; \
	  else \
	    echo "bubblewrap is missing: plugin code runs with fewer protections (see GET /health)."; \
	    echo "Install it with: sudo apt-get install bubblewrap"; \
	  fi; }

run: migrate
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py ensure_demo_admin
	$(PY) manage.py install_examples
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) fnplatform.asgi:application

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Browser tests drive Debian's chromium (no browser download works here).
browser:
	@test -x /usr/bin/chromium || { echo "Installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: lint browser sandbox
	$(VENV)/bin/pytest

bench: setup
	$(PY) bench/runtime.py

clean:
	rm -rf $(VENV) var .pytest_cache
