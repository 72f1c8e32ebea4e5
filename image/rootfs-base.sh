#!/bin/bash
# Stage 1: the arm64 Debian root with every package from packages.txt and its one initramfs.
# Usage: rootfs-base.sh <output-dir>. Reads DEBIAN_SUITE, DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR and
# SOURCE_DATE_EPOCH from the environment (set by build.sh from build.env).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?output directory}"
: "${DEBIAN_SUITE:?}" "${DEBIAN_MIRROR:?}" "${DEBIAN_SECURITY_MIRROR:?}" "${SOURCE_DATE_EPOCH:?}"

packages="$(grep -v -e '^#' -e '^[[:space:]]*$' "$here/packages.txt" | paste -sd, -)"
components="main non-free-firmware"

rm -rf "$out"
mkdir -p "$(dirname "$out")"
export BFR_IMAGE_DIR="$here"
# force-conf*: keep the files the essential hooks put in place (no prompt on a conffile).
# --variant=apt: a small root (Essential + apt) and no Recommends, so the package set is what
# packages.txt says. The hooks are run from this directory by name (essential*, customize*).
mmdebstrap \
    --mode=root \
    --arch=arm64 \
    --variant=apt \
    --components="$components" \
    --aptopt='Acquire::Retries "3"' \
    --dpkgopt='force-confdef' \
    --dpkgopt='force-confold' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --include="$packages" \
    --hook-dir="$here/hooks" \
    "$DEBIAN_SUITE" "$out" \
    "deb $DEBIAN_MIRROR $DEBIAN_SUITE $components" \
    "deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates $components" \
    "deb $DEBIAN_SECURITY_MIRROR $DEBIAN_SUITE-security $components"
