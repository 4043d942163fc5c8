# syntax=docker/dockerfile:1
# genre-serve: the gRPC server with the bundled models. One image for GPU and CPU nodes: the
# pinned torch/torchaudio wheels from PyPI carry their CUDA libraries and fall back to the CPU
# when no GPU is visible (GENRE_DEVICE=auto).
#
#   docker build -t genre-serve:0.1.0 .
#   docker run --rm -p 50051:50051 -p 9464:9464 genre-serve:0.1.0
#
# The base is pinned by tag, Debian release included. A digest (python:3.11-slim-trixie@sha256:...)
# pins it harder, but cannot be resolved on the machine this file was written on (no registry
# access); a release pins it by adding the digest here, the one place the base is named.
# BASE_IMAGE exists for machines without a registry: `make image LOCAL_BASE=1` builds on a
# Debian base made there from Debian packages (scripts/make_base_image.sh), which gives the same
# `python` (3.11) and `python -m venv` this file uses.
ARG BASE_IMAGE=python:3.11-slim-trixie
# checkov:skip=CKV_DOCKER_7: the base is BASE_IMAGE, whose default above is pinned by tag (tests/deploy/test_dockerfile.py checks it); checkov does not resolve build arguments
FROM ${BASE_IMAGE} AS base
# Every stage carries the title, so `make image` can prune the stages an earlier build left
# untagged (a rebuilt dependencies layer is ~5 GB) without touching anyone else's images.
LABEL org.opencontainers.image.title="genre-serve"

# Mounted at /wheelhouse by the installs below, and read only when the build is given
# `--build-context wheelhouse=DIR` (a directory of the pinned wheels, `make wheelhouse`) with
# PIP_FIND_LINKS=/wheelhouse and PIP_NO_INDEX=1: pip then installs the same files offline
# instead of fetching ~2.6 GB from PyPI. By default it is the base itself, which pip never reads
# (PIP_FIND_LINKS unset): a plain stage every builder can mount, unlike an empty scratch one.
FROM base AS wheelhouse

FROM base AS dependencies
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX
# Same pinned pip and the same constraints file as the README and `make install`; only the
# serving extra (the client and training extras stay out of the image). The dependencies come
# first, in a layer of their own that changes only with pyproject.toml or constraints.txt, so a
# code change reuses it instead of reinstalling torch's ~5 GB (with podman on 2 cores: a minute
# instead of five).
COPY pyproject.toml constraints.txt ./
RUN --mount=type=bind,from=wheelhouse,target=/wheelhouse \
    python -m venv /opt/genre-serve/venv \
    && /opt/genre-serve/venv/bin/python -m pip install --upgrade "pip==26.3" \
    && python -c "import tomllib; \
        project = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
        print(*project['dependencies'], *project['optional-dependencies']['server'], sep='\n')" \
       > server-requirements.txt \
    && /opt/genre-serve/venv/bin/python -m pip install --constraint constraints.txt --requirement server-requirements.txt

FROM dependencies AS builder
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX
COPY README.md ./
COPY genre ./genre
COPY server ./server
COPY modelcore ./modelcore
COPY client ./client
# Not editable. pip resolves `.[server]` against the venv above (so a dependency missing there
# fails the build) and writes only this project's files under /project, for the final stage to
# copy on top of the dependencies' layer.
RUN --mount=type=bind,from=wheelhouse,target=/wheelhouse \
    /opt/genre-serve/venv/bin/python -m pip install --no-warn-script-location \
       --constraint constraints.txt --root /project ".[server]"

# On top of the dependencies' layer rather than a copy of it in a fresh stage: a copy wrote the
# ~5 GB venv a second time on every rebuild of that layer, and a CI build ran out of disk doing
# so. The dependencies stage adds only its venv and three small files under /src (pyproject.toml,
# constraints.txt and the requirement list pip read), so the final image holds the same files.
FROM dependencies
LABEL org.opencontainers.image.description="gRPC music-genre classification service" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 genre \
    && useradd --system --uid 10001 --gid genre --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin genre
COPY --from=builder /project/ /
# The model repository, read-only for the server. Mount a volume here (or point
# GENRE_MODEL_REPOSITORY elsewhere) to serve other models; new version directories go live on
# SIGHUP or every GENRE_RELOAD_INTERVAL_SECONDS.
COPY models /opt/genre-serve/models
# HOME=/tmp: torch may write small caches; /tmp is the one writable path (an emptyDir on
# Kubernetes, where the root filesystem is read-only).
ENV PATH=/opt/genre-serve/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    GENRE_MODEL_REPOSITORY=/opt/genre-serve/models \
    GENRE_GRPC_PORT=50051 \
    GENRE_METRICS_PORT=9464 \
    GENRE_LOG_FORMAT=json
WORKDIR /opt/genre-serve
USER 10001:10001
# gRPC, /metrics, and the web page, which is off unless GENRE_HTTP_PORT=8080 turns it on
# (deploy/components/web-page; docker run -e GENRE_HTTP_PORT=8080 -p 8080:8080 ...).
EXPOSE 50051 9464 8080
# For Docker and Compose; Kubernetes ignores this and uses the Deployment's native gRPC probes.
# The start period covers model loading and warm-up.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-m", "server.healthcheck", "--target", "localhost:50051", "--timeout", "3"]
ENTRYPOINT ["genre-serve"]
