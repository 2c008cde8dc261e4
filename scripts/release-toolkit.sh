#!/usr/bin/env bash
# Releases the toolkit: tags main's HEAD as vX.Y.Z and moves the major tag (v1) to it,
# the tag users pin (`<owner>/astrolens-release/actions/deploy@v1`). One version for the
# whole repository (package.json). Run by a maintainer on a clean, up-to-date main:
#
#   scripts/release-toolkit.sh 1.2.0          # checks, then creates both tags locally
#   scripts/release-toolkit.sh 1.2.0 --push   # ... and pushes them (the major tag forced)
#
# A script rather than a workflow: moving a tag that every user's workflows resolve is a
# deliberate act, and it keeps a contents: write token out of CI.
set -euo pipefail

die() { echo "release-toolkit: $*" >&2; exit 1; }

version="${1:-}"
push="${2:-}"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "usage: scripts/release-toolkit.sh X.Y.Z [--push] (got \"$version\")"
[ -z "$push" ] || [ "$push" = "--push" ] || die "the second argument may only be --push"
major="v${version%%.*}"
tag="v$version"
cd "$(dirname "$0")/.."

[ "$(git rev-parse --abbrev-ref HEAD)" = "main" ] || die "release from main (this is $(git rev-parse --abbrev-ref HEAD))"
if ! git diff --quiet || ! git diff --cached --quiet; then die "the work tree has changes: commit or stash them"; fi
[ -z "$(git ls-files --others --exclude-standard)" ] || die "untracked files: commit or remove them"
current="$(node -p 'require("./package.json").version')"
[ "$current" = "$version" ] || die "package.json says $current: set \"version\": \"$version\" and commit it first"
grep -q "^## \[$version\]" CHANGELOG.md || die "CHANGELOG.md has no \"## [$version]\" section: move [Unreleased] there"
! git rev-parse -q --verify "refs/tags/$tag" >/dev/null || die "$tag exists already: versions are never re-tagged"
# Users run dist/ as committed: it must be built from these sources.
npm run --silent check-dist >/dev/null || die "dist/ is stale: npm run build, commit, then release"

git tag -a "$tag" -m "astrolens-release $tag"
# The major tag follows the newest release of its major; a new major starts a new tag.
git tag -f -a "$major" -m "astrolens-release $major -> $tag" "$tag^{commit}" >/dev/null
echo "release-toolkit: tagged $tag and moved $major to $(git rev-parse --short "$tag^{commit}")"

if [ "$push" = "--push" ]; then
  git push origin "refs/tags/$tag"
  git push --force origin "refs/tags/$major"
else
  echo "release-toolkit: to publish: git push origin refs/tags/$tag && git push --force origin refs/tags/$major"
fi
