#!/bin/bash
# Build-machine set-up: the Debian tools of the image build and boot test, and arm64 binfmt.
set -euo pipefail
tools=(mmdebstrap qemu-user-static binfmt-support qemu-system-arm dosfstools mtools fdisk e2fsprogs
    zstd python3-venv)
missing=()
for p in "${tools[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# qemu-user runs the arm64 maintainer scripts; binfmt_misc is not mounted in every sandbox.
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 2>/dev/null || true
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || {
    echo "qemu-aarch64 binfmt handler is not enabled" >&2
    exit 1
}
