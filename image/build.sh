#!/bin/bash
# `make image`: build the arm64 SD card image of the appliance into out/.
#   stage 1  rootfs-base.sh  packages (mmdebstrap + qemu-user), one initramfs
#   stage 2  configure.sh    files, users, units, the appliance release
#   check    verify-units.sh the units against the built root
#   stage 3  disk.sh         partitions and the .img, its .sha256 and the manifest
# Environment: BUILD_ENV (default image/build.env), BFR_<KEY> overrides, OUT_DIR, WORK_DIR,
# PYTHON (a Python >= 3.11 with pip), REUSE_BASE=1 to keep a finished stage 1 (development only).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
project="$(dirname "$here")"
env_file="${BUILD_ENV:-$here/build.env}"
out="${OUT_DIR:-$project/out}"
# Outside the project: setuptools' package discovery walks the project tree, and a whole root
# file system inside it makes every `pip install -e .` crawl.
work="${WORK_DIR:-${TMPDIR:-/var/tmp}/bfr-image}"
export PYTHON="${PYTHON:-python3}"
[ "$(id -u)" = 0 ] || { echo "the image build needs root (chroot, mounts, file ownership)" >&2; exit 1; }
started=$(date +%s)

"$here/host-setup.sh"
config="$(PYTHONPATH="$here" "$PYTHON" -m imagebuild config "$env_file")"
eval "$config"
mkdir -p "$out" "$work"

echo "== wheel"
rm -rf "$work/wheel"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$work/wheel" "$project"
wheel="$(ls "$work"/wheel/bfr_appliance-*.whl)"
version="$(basename "$wheel" | cut -d- -f2)"

echo "== stage 1: packages"
if [ "${REUSE_BASE:-0}" = 1 ] && [ -e "$work/base.done" ]; then
    echo "reusing $work/base"
else
    rm -f "$work/base.done"
    "$here/rootfs-base.sh" "$work/base"
    touch "$work/base.done"
fi

echo "== stage 2: configure"
rm -rf "$work/root"
# -x: never copy what might still be mounted in the base (proc, sys, dev).
cp -a -x "$work/base" "$work/root"
"$here/configure.sh" "$work/root" "$wheel" "$env_file"
"$here/verify-units.sh" "$work/root"

echo "== manifest"
name="$IMAGE_NAME-$version"
chroot "$work/root" dpkg-query -W -f '${Package}\t${Version}\t${Architecture}\n' >"$work/dpkg.txt"
chroot "$work/root" /opt/bfr/current/bin/python -m pip freeze --all >"$work/pip.txt"
PYTHONPATH="$here" "$PYTHON" -m imagebuild manifest --dpkg "$work/dpkg.txt" --pip "$work/pip.txt" \
    --out "$out/$name.manifest.txt" --meta "image=$name" --meta "release=$version" \
    --meta "suite=$DEBIAN_SUITE" --meta "mirror=$DEBIAN_MIRROR" \
    --meta "security_mirror=$DEBIAN_SECURITY_MIRROR" --meta "snapshot=${DEBIAN_SNAPSHOT:-none}" \
    --meta "source_date_epoch=$SOURCE_DATE_EPOCH" --meta "hostname=$HOSTNAME" \
    --meta "wheel_sha256=$(sha256sum "$wheel" | cut -d' ' -f1)"
install -D -m 0644 "$out/$name.manifest.txt" "$work/root/usr/share/bfr/image-manifest.txt"

echo "== stage 3: disk image"
PARTS_DIR="$work/parts" "$here/disk.sh" "$work/root" "$out/$name.img"
ln -sfn "$name.img" "$out/$IMAGE_NAME.img"
echo "built $out/$name.img in $(($(date +%s) - started)) s"
