#!/usr/bin/env bash
# End-to-end proof that a real Trivy scan of our real base image works offline.
#
#   sudo scripts/trivy/e2e-offline.sh      (root: debootstrap, buildah, unshare -n)
#
# Steps: install Trivy, build the base image, build the offline DB, export the image to a
# docker-archive, scan it (vuln,secret,misconfig) with networking removed (unshare -n),
# check the AstroLens test advisories in the JSON report, check the gate exit codes,
# `trivy config` on a Dockerfile, a planted AWS key in an image layer, and
# `trivy convert` to SARIF and CycloneDX. Leaves its reports in $OUT (printed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$(mktemp -d /tmp/astrolens-trivy-e2e.XXXXXX)}"
mkdir -p "$OUT"
STORAGE="$ROOT/.local/containers/storage"
RUNROOT="$ROOT/.local/containers/run"
BUILDAH=(buildah --root "$STORAGE" --runroot "$RUNROOT" --storage-driver vfs)
CS="containers-storage:[vfs@$STORAGE+$RUNROOT]"
TRIVY=("$ROOT/scripts/trivy/trivy-offline.sh")
# Prove "offline": run Trivy in a fresh network namespace with no interfaces.
if [[ $(id -u) -eq 0 ]] && unshare -n true 2>/dev/null; then TRIVY=(unshare -n "${TRIVY[@]}"); fi
command -v jq >/dev/null || { echo "e2e: jq is required (apt-get install jq)" >&2; exit 2; }

FAILS=0
step() { STEP_NAME="$1"; STEP_T0=$(date +%s%N); echo "== $1" >&2; }
done_() { local ms=$((($(date +%s%N) - STEP_T0) / 1000000)); printf '   took %d.%03d s\n' $((ms / 1000)) $((ms % 1000)) >&2; }
check() { # check <description> <jq filter returning true> <file>
  if jq -e "$2" "$3" >/dev/null; then echo "   ok   $1" >&2; else echo "   FAIL $1" >&2; FAILS=$((FAILS + 1)); fi
}
expect_rc() { # expect_rc <description> <expected> <actual>
  if [[ "$2" == "$3" ]]; then echo "   ok   $1 (exit $3)" >&2; else echo "   FAIL $1: exit $3, expected $2" >&2; FAILS=$((FAILS + 1)); fi
}

step "install trivy";            scripts/install-trivy.sh >/dev/null; done_
step "base image";               scripts/base-image.sh; done_
step "offline DB";               scripts/trivy-db/build-db.sh >/dev/null; done_

step "export docker-archive"
rm -f "$OUT/base.tar"
skopeo copy -q "${CS}localhost/astrolens-base:trixie" \
  "docker-archive:$OUT/base.tar:localhost/astrolens-base:trixie"
done_

step "trivy image (cold scan cache)"
"${TRIVY[@]}" clean --scan-cache >/dev/null 2>&1 || true
"${TRIVY[@]}" image -q --input "$OUT/base.tar" --scanners vuln,secret,misconfig \
  --format json --list-all-pkgs --output "$OUT/base.json"
done_
V='[.Results[].Vulnerabilities[]?]'
check "HIGH ASTROLENS-2026-0001 on nodejs, fixed in +astrolens1" \
  "$V | any(.VulnerabilityID==\"ASTROLENS-2026-0001\" and .PkgName==\"nodejs\" and .Severity==\"HIGH\" and .Status==\"fixed\" and (.FixedVersion|endswith(\"+astrolens1\")))" "$OUT/base.json"
check "HIGH ASTROLENS-2026-0001 also on libnode115 (same source package)" \
  "$V | any(.VulnerabilityID==\"ASTROLENS-2026-0001\" and .PkgName==\"libnode115\")" "$OUT/base.json"
check "MEDIUM ASTROLENS-2026-0003 on openssl/libssl3t64" \
  "$V | any(.VulnerabilityID==\"ASTROLENS-2026-0003\" and .PkgName==\"libssl3t64\" and .Severity==\"MEDIUM\" and .Status==\"fixed\")" "$OUT/base.json"
check "LOW ASTROLENS-2026-0002 on tar, unfixed (affected)" \
  "$V | any(.VulnerabilityID==\"ASTROLENS-2026-0002\" and .PkgName==\"tar\" and .Severity==\"LOW\" and .Status==\"affected\" and (.FixedVersion//\"\")==\"\")" "$OUT/base.json"
check "negative control ASTROLENS-2026-0004 (older fix) not reported" \
  "$V | all(.VulnerabilityID!=\"ASTROLENS-2026-0004\")" "$OUT/base.json"
check "all packages listed (--list-all-pkgs)" \
  '[.Results[].Packages[]?] | length > 50' "$OUT/base.json"

step "gate: HIGH,CRITICAL fixed -> exit 1"
rc=0; "${TRIVY[@]}" image -q --input "$OUT/base.tar" --scanners vuln --ignore-unfixed \
  --severity HIGH,CRITICAL --exit-code 1 --format table >"$OUT/gate.txt" || rc=$?
done_; expect_rc "image gate fails on ASTROLENS-2026-0001" 1 "$rc"
rc=0; "${TRIVY[@]}" convert -q --format table --severity HIGH,CRITICAL --exit-code 1 "$OUT/base.json" >/dev/null || rc=$?
expect_rc "convert gate on the JSON report fails too" 1 "$rc"
rc=0; "${TRIVY[@]}" convert -q --format table --severity CRITICAL --exit-code 1 "$OUT/base.json" >/dev/null || rc=$?
expect_rc "CRITICAL-only gate passes" 0 "$rc"

step "trivy config (Dockerfile, embedded checks)"
mkdir -p "$OUT/ctx"
cat >"$OUT/ctx/Dockerfile" <<'EOF'
FROM localhost/astrolens-base:trixie
COPY app.env /app/.env
RUN node -e "require('fs').mkdirSync('/app/data', {recursive: true})"
CMD ["node", "-e", "console.log(1)"]
EOF
"${TRIVY[@]}" config -q --format json --output "$OUT/config.json" "$OUT/ctx/Dockerfile"
done_
check "DS-0002 (image user should not be root)" \
  '[.Results[].Misconfigurations[]?] | any(.ID=="DS-0002" and .Status=="FAIL")' "$OUT/config.json"

step "secret in an image layer"
# Build the fake key at run time so no key-shaped string is committed to the repo.
KEY_ID="AKIA""4QZ7RBTLXNW5Y3MV"; KEY_SECRET="kX9pQ2mZ7vR4tL8wN3bJ6yH1sD5fG0a""KcE2uI7oP"
printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' "$KEY_ID" "$KEY_SECRET" >"$OUT/ctx/app.env"
"${BUILDAH[@]}" build -q --isolation chroot --pull=never --format docker \
  -t localhost/astrolens-secret-test:e2e -f "$OUT/ctx/Dockerfile" "$OUT/ctx" >/dev/null
rm -f "$OUT/secret.tar" "$OUT/ctx/app.env"
skopeo copy -q "${CS}localhost/astrolens-secret-test:e2e" \
  "docker-archive:$OUT/secret.tar:localhost/astrolens-secret-test:e2e"
"${BUILDAH[@]}" rmi localhost/astrolens-secret-test:e2e >/dev/null
"${TRIVY[@]}" image -q --input "$OUT/secret.tar" --scanners vuln,secret,misconfig \
  --image-config-scanners misconfig,secret --format json --output "$OUT/secret.json"
done_
check "aws-access-key-id in /app/.env" \
  '[.Results[] | select(.Class=="secret") | .Target as $t | .Secrets[] | select(.RuleID=="aws-access-key-id") | $t] | index("/app/.env") != null' "$OUT/secret.json"
check "DS-0002 from the image config (--image-config-scanners misconfig)" \
  '[.Results[].Misconfigurations[]?] | any(.ID=="DS-0002")' "$OUT/secret.json"

step "convert sarif + cyclonedx"
"${TRIVY[@]}" convert -q --format sarif --output "$OUT/base.sarif" "$OUT/base.json"
"${TRIVY[@]}" convert -q --format cyclonedx --output "$OUT/base.cdx.json" "$OUT/base.json"
done_
check "SARIF has the ASTROLENS rules" \
  '.version=="2.1.0" and ([.runs[0].tool.driver.rules[].id] | index("ASTROLENS-2026-0001") != null)' "$OUT/base.sarif"
check "CycloneDX has components and the HIGH advisory" \
  '.bomFormat=="CycloneDX" and (.components|length>50) and ([.vulnerabilities[] | select(.id=="ASTROLENS-2026-0001") | .ratings[].severity] | index("high") != null)' "$OUT/base.cdx.json"

step "trivy sbom (rescan the CycloneDX)"
"${TRIVY[@]}" sbom -q --format json --output "$OUT/sbom.json" "$OUT/base.cdx.json"
done_
check "SBOM rescan finds ASTROLENS-2026-0001" \
  '[.Results[].Vulnerabilities[]?] | any(.VulnerabilityID=="ASTROLENS-2026-0001")' "$OUT/sbom.json"

echo "reports in $OUT" >&2
if [[ $FAILS -gt 0 ]]; then echo "e2e: $FAILS check(s) FAILED" >&2; exit 1; fi
echo "e2e: all checks passed" >&2
