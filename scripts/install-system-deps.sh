#!/usr/bin/env bash
# Installs the system programs the local release and the tests need, from Debian's
# (or Ubuntu's) packages: buildah and skopeo (build and copy images without a Docker
# daemon), docker-registry (the local OCI registry), debootstrap (the base image, as
# nothing can be pulled), python3-venv (moto's virtualenv). Go and Node.js are expected
# to be there already (Go builds the offline Trivy DB).
set -euo pipefail
packages=(buildah skopeo docker-registry debootstrap python3-venv ca-certificates)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-system-deps: all present (${packages[*]})"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-system-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The registry package starts a system service on :5000; the local AWS runs its own.
$sudo systemctl disable --now docker-registry >/dev/null 2>&1 || true
for tool in go node; do
  command -v "$tool" >/dev/null || { echo "install-system-deps: $tool is required but not installed" >&2; exit 1; }
done
