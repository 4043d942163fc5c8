# The two commands a fresh machine needs: `make serve` and `make test`. Both install first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# checkov pins packaging<24, which the dev environment outgrew, so it gets a venv of its own.
CHECKOV_VENV ?= .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed


# make serve listens on localhost unless told otherwise; every GENRE_* variable passes through.
export GENRE_GRPC_HOST ?= 127.0.0.1
export GENRE_METRICS_HOST ?= 127.0.0.1

.PHONY: install serve test lint typecheck proto proto-check pytest clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==26.3"
	$(PY) -m pip install --quiet --constraint constraints.txt --editable ".[dev]"
	touch $(STAMP)

$(CHECKOV_STAMP): constraints-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade "pip==26.3"
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --constraint constraints-checkov.txt checkov
	touch $(CHECKOV_STAMP)

serve: install
	$(VENV)/bin/genre-serve

test: install lint typecheck proto-check pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

proto: install
	PYTHON=$(PY) scripts/gen_proto.sh

# Generated code is committed; fail when it no longer matches what `make proto` writes.
proto-check: install
	@tmp=$$(mktemp -d) && PYTHON=$(PY) scripts/gen_proto.sh $$tmp && \
	  diff -r -x __pycache__ -x __init__.py -x py.typed $$tmp/genre genre && rm -rf $$tmp && \
	  echo "generated protobuf code is up to date"

pytest: install $(CHECKOV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
