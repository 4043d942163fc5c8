# The two commands a fresh machine needs: `make serve` and `make test`. Both install first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed


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

pytest: install
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
