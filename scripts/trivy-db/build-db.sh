#!/usr/bin/env bash
# Build the offline Trivy DB from scripts/trivy-db/advisories/*.yaml.
#   scripts/trivy-db/build-db.sh [CACHE_DIR]     (default: <repo>/.local/trivy-cache)
# Writes CACHE_DIR/db/trivy.db + CACHE_DIR/db/metadata.json; pass CACHE_DIR to
# trivy --cache-dir together with --skip-db-update.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${1:-$ROOT/.local/trivy-cache}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
exec go -C "$HERE" run . --out "$OUT" --advisories "$HERE/advisories"
