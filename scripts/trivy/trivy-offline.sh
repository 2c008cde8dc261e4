#!/usr/bin/env bash
# Run the pinned Trivy fully offline: any subcommand, any extra flags.
#
#   scripts/trivy/trivy-offline.sh image --input img.tar --format json -o report.json
#   scripts/trivy/trivy-offline.sh config path/to/Dockerfile
#   scripts/trivy/trivy-offline.sh convert --format sarif -o report.sarif report.json
#
# The offline switches are passed as TRIVY_* environment variables (Trivy maps every
# flag to TRIVY_<FLAG>), because each subcommand accepts a different subset of the
# flags and rejects unknown ones on the command line; an env var for a flag the
# subcommand does not have is simply ignored.
#
# Needs: scripts/install-trivy.sh (binary) and scripts/trivy-db/build-db.sh (DB).
# TRIVY_BIN / TRIVY_CACHE_DIR override the defaults below.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TRIVY_BIN="${TRIVY_BIN:-$ROOT/.local/tools/bin/trivy}"

[[ -x "$TRIVY_BIN" ]] || { echo "trivy-offline: $TRIVY_BIN missing; run scripts/install-trivy.sh" >&2; exit 2; }

export TRIVY_CACHE_DIR="${TRIVY_CACHE_DIR:-$ROOT/.local/trivy-cache}"
export TRIVY_SKIP_DB_UPDATE=true        # use <cache>/db/trivy.db as is (never ghcr.io/mirror.gcr.io)
export TRIVY_SKIP_JAVA_DB_UPDATE=true   # no Java DB download (see README: JARs need --pkg-types os)
export TRIVY_SKIP_CHECK_UPDATE=true     # misconfig: use the checks embedded in the binary
export TRIVY_SKIP_VEX_REPO_UPDATE=true
export TRIVY_SKIP_VERSION_CHECK=true    # no update/announcement request
export TRIVY_DISABLE_TELEMETRY=true     # no usage data to Aqua
export TRIVY_OFFLINE_SCAN=true          # no Maven Central look-ups for JARs

if [[ "${1:-}" != "convert" && "${1:-}" != "version" && ! -s "$TRIVY_CACHE_DIR/db/trivy.db" ]]; then
  echo "trivy-offline: no DB in $TRIVY_CACHE_DIR/db; run scripts/trivy-db/build-db.sh" >&2
fi
exec "$TRIVY_BIN" "$@"
