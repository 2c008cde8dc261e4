#!/usr/bin/env bash
# Installs the workflow tools, pinned, from package registries only:
#   actionlint  (Go module, `go install`)  -> .local/tools/bin/actionlint
#   act         (Go module, `go install`)  -> .local/tools/bin/act
#   zizmor      (PyPI wheel, hash-pinned)  -> .local/workflow-venv, linked into .local/tools/bin
#   ShellCheck  (Debian package)           -> actionlint runs it on every `run:` script;
#                                             without it actionlint silently skips them
# test/unit/workflows-lint.test.ts runs them; nothing downloads anything at run time
# (zizmor runs with --offline). Idempotent: a tool already at its pinned version is kept,
# so a second run takes well under a second.
set -euo pipefail

ACTIONLINT_VERSION="v1.7.12"
ACT_VERSION="v0.2.89"
ZIZMOR_VERSION="1.32.0"
# The manylinux x86_64 wheel (the only platform CI and the runners use); pip checks it.
ZIZMOR_WHEEL_SHA256="84a6acb975accc13408786a2bd274b572537ca19c933ebbc13e78f3988562071"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.local/tools/bin"
venv="$root/.local/workflow-venv"
mkdir -p "$bin"

die() { echo "install-workflow-tools: $*" >&2; exit 1; }
say() { echo "install-workflow-tools: $*"; }

# go install writes what it built into the module's build info; `go version -m` reads it
# back, so a binary's version is known even when its own --version says "(devel)".
built_version() { [ -x "$1" ] && go version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'; }

go_install() {
  local name="$1" module="$2" version="$3"
  if [ "$(built_version "$bin/$name")" = "$version" ]; then
    say "$name $version already installed"
    return
  fi
  command -v go >/dev/null || die "go is required to build $name (Debian: apt-get install golang-go, or actions/setup-go on GitHub)"
  say "building $name $version with go install (Go module proxy) ..."
  # GOTOOLCHAIN=local: build with the Go that is here rather than fetch another toolchain.
  GOBIN="$bin" GOTOOLCHAIN=local GOFLAGS=-mod=mod go install "$module@$version" \
    || die "go install $module@$version failed"
  [ "$(built_version "$bin/$name")" = "$version" ] || die "$bin/$name is not $version after go install"
}

go_install actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION"
go_install act github.com/nektos/act "$ACT_VERSION"

if [ -x "$venv/bin/zizmor" ] && [ "$("$venv/bin/zizmor" --version 2>/dev/null)" = "zizmor $ZIZMOR_VERSION" ]; then
  say "zizmor $ZIZMOR_VERSION already installed"
else
  command -v python3 >/dev/null || die "python3 is required for zizmor (Debian: apt-get install python3 python3-venv)"
  say "installing zizmor $ZIZMOR_VERSION from PyPI into $venv ..."
  rm -rf "$venv"
  python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  requirements="$(mktemp)"
  trap 'rm -f "$requirements"' EXIT
  echo "zizmor==$ZIZMOR_VERSION --hash=sha256:$ZIZMOR_WHEEL_SHA256" >"$requirements"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input --only-binary=:all: \
    --require-hashes -r "$requirements" || die "pip install zizmor==$ZIZMOR_VERSION failed"
fi
ln -sf "$venv/bin/zizmor" "$bin/zizmor"

if ! command -v shellcheck >/dev/null; then
  say "installing shellcheck from Debian's packages ..."
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends shellcheck >/dev/null \
    || die "apt-get install shellcheck failed"
fi

say "ready in $bin: actionlint $ACTIONLINT_VERSION, act $ACT_VERSION, zizmor $ZIZMOR_VERSION, $(shellcheck --version | sed -n 's/^version: /shellcheck /p')"
