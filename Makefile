# The two commands: `make run` and `make test`. Everything else is a step they share.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export FNPLATFORM_DATA_DIR ?= $(CURDIR)/var

.PHONY: run test setup lint format migrate bench clean browser

$(VENV)/.created:
	"$$(scripts/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	touch $@

# Reinstall only when requirements.txt changes, so a second `make run` is fast.
$(VENV)/.installed: requirements.txt $(VENV)/.created
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

setup: $(VENV)/.installed

migrate: setup
	$(PY) manage.py migrate --noinput

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

test: lint browser
	$(VENV)/bin/pytest

bench: setup
	$(PY) bench/runtime.py

clean:
	rm -rf $(VENV) var .pytest_cache
