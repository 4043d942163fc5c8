#!/usr/bin/env bash
# Makes a Debian base image from Debian packages alone, for building the Dockerfile where no
# container registry is reachable: `make image LOCAL_BASE=1` builds on it instead of the public
# python:3.11-slim-trixie. mmdebstrap writes a minimal root filesystem (about 25 s) and
# `podman import` turns it into an image.
#
# It gives the Dockerfile what the public base gives it: `python` (3.11), `python -m venv`, and
# groupadd/useradd. The suite is bookworm because its python3 is 3.11, the Python of the public
# base and of the pinned cp311 wheels (trixie's is 3.13); the public base is Debian trixie, so
# the two images differ in Debian release, not in Python.
#
#   scripts/make_base_image.sh [IMAGE]    default localhost/genre-serve-base:bookworm
#
# Does nothing when IMAGE already exists (FORCE=1 remakes it). Needs root, mmdebstrap and podman
# (apt-get install mmdebstrap podman), and Debian's archive (MIRROR).
set -euo pipefail
image=${1:-localhost/genre-serve-base:bookworm}
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}

if [[ ${FORCE:-0} != 1 ]] && podman image exists "$image"; then
  echo "base image $image exists (FORCE=1 remakes it)"
  exit 0
fi

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
# As the slim images do: no manuals, documentation (copyright files kept) or translations.
mmdebstrap --variant=minbase \
  --include=python3,python3-venv,python-is-python3,ca-certificates,netbase \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  "$suite" "$workdir/rootfs.tar" "$mirror"
podman import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --change "LABEL org.opencontainers.image.description=\"Debian $suite minbase with python3, made by scripts/make_base_image.sh\"" \
  "$workdir/rootfs.tar" "$image"
# The check the Dockerfile relies on, run the way the image test runs the server.
container=$(buildah from --pull=never "$image")
trap 'buildah rm "$container" >/dev/null; rm -rf "$workdir"' EXIT
buildah run --isolation chroot "$container" -- python -c \
  'import sys, venv; assert sys.version_info >= (3, 11), sys.version; print("python", sys.version.split()[0])'
