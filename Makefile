# The two commands: `make run` and `make test`. Everything else is a step they share.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PLUGIN_ENV := $(VENV)/plugin-env
HOST ?= 127.0.0.1
PORT ?= 8000
export FNPLATFORM_DATA_DIR ?= $(CURDIR)/var

.PHONY: run test setup dev-setup lock lint format migrate bench clean browser sandbox

$(VENV)/.created:
	"$$(scripts/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	touch $@

# Reinstall only when the requirements or their lock change, so a second `make run`
# is fast. The lock (requirements*.lock, written by `make lock`) pins every transitive
# version; the .txt files name what we depend on directly.
$(VENV)/.installed: requirements.txt requirements.lock $(VENV)/.created
	$(PY) -m pip install --quiet -r requirements.txt -c requirements.lock
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt requirements.lock $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-dev.txt -c requirements.lock
	touch $@

# The plugin environment (functions/services/plugin_env.py): the packages Open WebUI
# ships, which plugin code imports without declaring them. Workers run it; the server
# never imports it.
$(PLUGIN_ENV)/.fnplatform-ready: requirements-plugins.txt requirements-plugins.lock $(VENV)/.installed
	$(PY) -m functions.services.plugin_env $(PLUGIN_ENV) requirements-plugins.txt requirements-plugins.lock

setup: $(VENV)/.installed $(PLUGIN_ENV)/.fnplatform-ready

dev-setup: setup $(VENV)/.dev-installed

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

# One process sets up (migrate, static files, demo admin, examples) and serves.
run: setup sandbox
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

lint: dev-setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: dev-setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Browser tests drive Debian's chromium (no browser download works here).
browser:
	@test -x /usr/bin/chromium || { echo "Installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: lint browser sandbox
	$(VENV)/bin/pytest

bench: dev-setup
	$(PY) bench/runtime.py

# Rewrite the locks after changing a .txt file: install each set without the old lock,
# then record what got installed (the server's venv, and what plugin processes see).
lock: $(VENV)/.created
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m functions.services.plugin_env $(PLUGIN_ENV) requirements-plugins.txt
	{ echo "# pip freeze of the server's venv (runtime and dev): make lock writes it."; \
	  $(PY) -m pip freeze --exclude-editable; } > requirements.lock
	{ echo "# pip freeze of what plugin processes see (the plugin environment over the server's): make lock writes it."; \
	  $(PLUGIN_ENV)/bin/python -m pip freeze --exclude-editable; } > requirements-plugins.lock
	touch $(VENV)/.installed $(VENV)/.dev-installed $(PLUGIN_ENV)/.fnplatform-ready

clean:
	rm -rf $(VENV) var .pytest_cache
