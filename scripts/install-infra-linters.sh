#!/usr/bin/env bash
# Installs the infra linters (cfn-lint and checkov, pinned by infra/requirements.txt) into
# .local/infra-venv, which the infra tests run. Idempotent: a marker holds the sha256 of
# the lockfile it was installed from, and a changed lockfile means a fresh virtualenv (as
# src/local/stack.ts does for moto's .local/venv), so no package of an old lock lingers.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
requirements="$root/infra/requirements.txt"
venv="$root/.local/infra-venv"
marker="$venv/.requirements.sha256"

wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$wanted" ] && [ -x "$venv/bin/checkov" ] && [ -x "$venv/bin/cfn-lint" ]; then
  echo "install-infra-linters: up to date ($venv)"
  exit 0
fi
command -v python3 >/dev/null || {
  echo "install-infra-linters: python3 is required (Debian: sudo apt-get install python3 python3-venv)" >&2
  exit 1
}
echo "install-infra-linters: installing cfn-lint and checkov into $venv"
started=$(date +%s)
rm -rf "$venv"
python3 -m venv "$venv" || {
  echo "install-infra-linters: python3 -m venv failed (Debian: sudo apt-get install python3-venv)" >&2
  exit 1
}
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$requirements"
echo "$wanted" > "$marker"
echo "install-infra-linters: done in $(( $(date +%s) - started )) s ($("$venv/bin/checkov" --version 2>/dev/null | tail -1) checkov, $("$venv/bin/cfn-lint" --version))"
