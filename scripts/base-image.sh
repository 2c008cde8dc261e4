#!/usr/bin/env bash
# Build the AstroLens base image without pulling anything from a registry.
#
#   debootstrap --variant=minbase (Debian trixie, nodejs + ca-certificates)
#   -> trimmed rootfs tarball cached in .local/base/
#   -> ADDed into a FROM scratch image with buildah
#   -> committed as localhost/astrolens-base:trixie in .local/containers/storage
#
# Idempotent: does nothing when the image already exists (use --force to rebuild
# the image; delete .local/base/*.tar to re-run debootstrap as well).
# Needs root (debootstrap), debootstrap and buildah (Debian packages).
#
# Environment:
#   SUITE          Debian suite (default: trixie)
#   DEBIAN_MIRROR  apt mirror (default: http://deb.debian.org/debian)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUITE="${SUITE:-trixie}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
IMAGE="localhost/astrolens-base:${SUITE}"
BASE_DIR="$ROOT/.local/base"
TARBALL="$BASE_DIR/debian-${SUITE}-minbase-nodejs.tar"
STORAGE="$ROOT/.local/containers/storage"
RUNROOT="$ROOT/.local/containers/run"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

# buildah 1.28 ignores the STORAGE_DRIVER/CONTAINERS_STORAGE_CONF env vars: pass
# everything explicitly on every call.
BUILDAH=(buildah --root "$STORAGE" --runroot "$RUNROOT" --storage-driver vfs)

die() { echo "base-image: $*" >&2; exit 1; }
log() { echo "base-image: $*" >&2; }

command -v buildah >/dev/null || die "buildah not found (apt-get install buildah)"

# The build stage's image: the runtime base plus npm (pure JavaScript, pinned, checked
# against the registry's checksum), so `npm ci` runs inside the build as it does in
# the official Node image on GitHub.
NPM_VERSION=10.9.9
NPM_SHA1=a4f33aa2338c120fbf3769561b7ecc34dc3a4666
BUILD_IMAGE="localhost/astrolens-build:${SUITE}"

has_image() { "${BUILDAH[@]}" inspect --type image "$1" >/dev/null 2>&1; }

build_npm_image() {
  if [[ $FORCE -eq 0 ]] && has_image "$BUILD_IMAGE"; then
    log "$BUILD_IMAGE already exists"
    return 0
  fi
  local ctx
  ctx="$(mktemp -d "$BASE_DIR/.npm.XXXXXX")"
  (cd "$ctx" && npm pack --silent "npm@${NPM_VERSION}" >/dev/null)
  echo "${NPM_SHA1}  $ctx/npm-${NPM_VERSION}.tgz" | sha1sum -c --quiet - || die "npm ${NPM_VERSION} tarball checksum mismatch"
  mkdir -p "$ctx/npm" "$ctx/bin"
  tar -xzf "$ctx/npm-${NPM_VERSION}.tgz" -C "$ctx/npm" --strip-components=1
  printf '#!/bin/sh\nexec node /usr/local/lib/node_modules/npm/bin/npm-cli.js "$@"\n' >"$ctx/bin/npm"
  printf '#!/bin/sh\nexec node /usr/local/lib/node_modules/npm/bin/npx-cli.js "$@"\n' >"$ctx/bin/npx"
  chmod 755 "$ctx/bin/npm" "$ctx/bin/npx"
  printf 'FROM %s\nCOPY npm /usr/local/lib/node_modules/npm\nCOPY bin/ /usr/local/bin/\n' "$IMAGE" >"$ctx/Containerfile"
  "${BUILDAH[@]}" build --isolation chroot --format docker --pull=never -f "$ctx/Containerfile" -t "$BUILD_IMAGE" "$ctx" >&2
  rm -rf "$ctx"
  log "built $BUILD_IMAGE (npm ${NPM_VERSION})"
}

if [[ $FORCE -eq 0 ]] && has_image "$IMAGE"; then
  log "$IMAGE already exists in $STORAGE (--force to rebuild)"
  mkdir -p "$BASE_DIR"
  build_npm_image
  exit 0
fi

START=$SECONDS
mkdir -p "$BASE_DIR" "$STORAGE" "$RUNROOT"

# ---------------------------------------------------------------- rootfs tarball
if [[ -s "$TARBALL" ]]; then
  log "using cached rootfs $TARBALL"
else
  [[ $(id -u) -eq 0 ]] || die "debootstrap needs root"
  command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
  [[ -e "/usr/share/debootstrap/scripts/$SUITE" ]] \
    || die "this debootstrap does not know '$SUITE' (try SUITE=bookworm)"
  [[ -e "/usr/share/keyrings/debian-archive-${SUITE}-stable.gpg" || "$SUITE" == "bookworm" ]] \
    || log "warning: no /usr/share/keyrings/debian-archive-${SUITE}-stable.gpg; if debootstrap" \
           "fails with 'Release signed by unknown key', apt-get install -t bookworm debian-archive-keyring" \
           "(Debian 12 ships the trixie keys from 2023.3+deb12u1)"

  WORK="$(mktemp -d "$BASE_DIR/.build.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
  RFS="$WORK/rootfs"

  log "debootstrap --variant=minbase $SUITE from $MIRROR ..."
  T0=$SECONDS
  debootstrap --variant=minbase --include=nodejs,ca-certificates \
    "$SUITE" "$RFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
      tail -n 30 "$WORK/debootstrap.log" >&2
      [[ -f "$RFS/debootstrap/debootstrap.log" ]] && tail -n 30 "$RFS/debootstrap/debootstrap.log" >&2
      die "debootstrap failed"
    }
  log "debootstrap done in $((SECONDS - T0)) s"

  # -------------------------------------------------------------- trim
  # Keep /usr/share/doc/*/copyright (licences; Trivy reads them for license detection).
  rm -rf "$RFS"/var/lib/apt/lists/* \
         "$RFS"/var/cache/apt/*.bin "$RFS"/var/cache/apt/archives/*.deb \
         "$RFS"/var/cache/debconf/*-old "$RFS"/var/lib/dpkg/*-old \
         "$RFS"/usr/share/man/* "$RFS"/usr/share/info/* \
         "$RFS"/usr/share/lintian "$RFS"/usr/share/linda \
         "$RFS"/tmp/* "$RFS"/var/tmp/*
  [[ -d "$RFS/usr/share/doc" ]] && find "$RFS/usr/share/doc" -mindepth 1 \( -type f -o -type l \) ! -name copyright -delete
  [[ -d "$RFS/usr/share/doc" ]] && find "$RFS/usr/share/doc" -mindepth 1 -type d -empty -delete
  [[ -d "$RFS/usr/share/locale" ]] && find "$RFS/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
  find "$RFS/var/log" -type f -exec truncate -s 0 {} +
  # A runtime base, not a workstation (the inference image aims under 250 MB): iconv
  # modules (Node uses ICU), corepack and TypeScript typings (never loaded), perl
  # (only dpkg maintainer scripts use it; nothing is installed into the runtime).
  # Node's shared builtins in /usr/share/nodejs (undici, acorn, ...) stay.
  rm -rf "$RFS"/usr/lib/x86_64-linux-gnu/gconv \
         "$RFS"/usr/share/nodejs/corepack "$RFS"/usr/share/nodejs/@types \
         "$RFS"/usr/bin/perl "$RFS"/usr/bin/perl5* "$RFS"/usr/lib/x86_64-linux-gnu/perl-base
  : >"$RFS/etc/machine-id" 2>/dev/null || true
  # Keep later `apt-get install` in derived images from bringing the docs back.
  cat >"$RFS/etc/dpkg/dpkg.cfg.d/01-astrolens-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
EOF
  cat >"$RFS/etc/apt/apt.conf.d/01-astrolens-clean" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF

  chroot "$RFS" /usr/bin/node --version >/dev/null || die "node does not run in the rootfs"

  tar --numeric-owner --xattrs --sort=name -C "$RFS" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  rm -rf "$WORK"; trap - EXIT
  log "rootfs tarball $TARBALL ($(du -h "$TARBALL" | cut -f1))"
fi

# ---------------------------------------------------------------- image
OLD_ID="$("${BUILDAH[@]}" inspect --type image --format '{{.FromImageID}}' "$IMAGE" 2>/dev/null || true)"
CTX="$(mktemp -d "$BASE_DIR/.ctx.XXXXXX")"
trap 'rm -rf "$CTX"' EXIT
ln "$TARBALL" "$CTX/rootfs.tar" 2>/dev/null || cp "$TARBALL" "$CTX/rootfs.tar"
cat >"$CTX/Containerfile" <<EOF
FROM scratch
ADD rootfs.tar /
ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL org.opencontainers.image.title="astrolens-base" \\
      org.opencontainers.image.description="Debian ${SUITE} minbase + nodejs, built locally with debootstrap"
CMD ["/usr/bin/node"]
EOF
"${BUILDAH[@]}" build --isolation chroot --format docker --pull=never \
  -f "$CTX/Containerfile" -t "$IMAGE" "$CTX" >&2
rm -rf "$CTX"; trap - EXIT
# --force: drop the image this build replaced (now untagged), not anything else.
NEW_ID="$("${BUILDAH[@]}" inspect --type image --format '{{.FromImageID}}' "$IMAGE")"
if [[ -n "$OLD_ID" && "$OLD_ID" != "$NEW_ID" ]]; then
  "${BUILDAH[@]}" rmi "$OLD_ID" >/dev/null 2>&1 || true
fi

# ---------------------------------------------------------------- check
CTR="$("${BUILDAH[@]}" from --pull=never "$IMAGE")"
trap '"${BUILDAH[@]}" rm "$CTR" >/dev/null 2>&1 || true' EXIT
NODE_VERSION="$("${BUILDAH[@]}" run --isolation chroot "$CTR" -- node --version)"
"${BUILDAH[@]}" rm "$CTR" >/dev/null; trap - EXIT

SIZE="$("${BUILDAH[@]}" images --format '{{.Size}}' "$IMAGE" | head -n1)"
log "built $IMAGE: node $NODE_VERSION, size $SIZE, $((SECONDS - START)) s"

build_npm_image
