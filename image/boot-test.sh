#!/bin/bash
# `make image-test`: boot a copy of the built image under qemu-system-aarch64 (-M virt) with the
# image's own Debian kernel and initramfs, the controller in simulation, an i6300esb watchdog,
# and read the results of boot-test/boot-check from the serial console.
# Usage: boot-test.sh [image.img]. Exit 0 when every check passed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
project="$(dirname "$here")"
image="${1:-$project/out/bfr-appliance.img}"
work="${WORK_DIR:-${TMPDIR:-/var/tmp}/bfr-image}/boot-test"
timeout_s="${BOOT_TEST_TIMEOUT:-900}"
python="${PYTHON:-python3}"
[ -e "$image" ] || { echo "no image at $image: run make image first" >&2; exit 1; }
"$here/host-setup.sh"

rm -rf "$work" && mkdir -p "$work"
cp --sparse=always "$(readlink -f "$image")" "$work/disk.img"

# Root A's place in the image, from the partition table itself.
read -r start sectors < <(sfdisk --json "$work/disk.img" | "$python" -c '
import json, sys
part = json.load(sys.stdin)["partitiontable"]["partitions"][1]
print(part["start"], part["size"])')
dd if="$work/disk.img" of="$work/root-a.ext4" bs=512 skip="$start" count="$sectors" \
    conv=sparse status=none

echo "== add the simulation drop-in and the check unit to a copy of root A"
kernel="$(debugfs -R 'ls /boot' "$work/root-a.ext4" 2>/dev/null | tr -s ' ' '\n' | grep -m1 '^vmlinuz-')"
version="${kernel#vmlinuz-}"
debugfs -R "dump /boot/vmlinuz-$version $work/vmlinuz" "$work/root-a.ext4" 2>/dev/null
debugfs -R "dump /boot/initrd.img-$version $work/initrd.img" "$work/root-a.ext4" 2>/dev/null
[ -s "$work/vmlinuz" ] && [ -s "$work/initrd.img" ] || { echo "no kernel in root A" >&2; exit 1; }
debugfs -w -f - "$work/root-a.ext4" >/dev/null 2>&1 <<EOC
cd /etc/systemd/system
mkdir bfr-controller.service.d
write $here/boot-test/bfr-boot-check.service bfr-boot-check.service
cd /etc/systemd/system/bfr-controller.service.d
write $here/boot-test/controller-sim.conf sim.conf
cd /etc/systemd/system/multi-user.target.wants
symlink bfr-boot-check.service /etc/systemd/system/bfr-boot-check.service
cd /usr/lib/bfr
write $here/boot-test/boot-check boot-check
EOC
debugfs -R 'stat /usr/lib/bfr/boot-check' "$work/root-a.ext4" 2>/dev/null | grep -q 'Mode:  0755' || {
    echo "boot-check was not written into root A" >&2; exit 1; }
dd if="$work/root-a.ext4" of="$work/disk.img" bs=512 seek="$start" conv=notrunc,sparse status=none
rm -f "$work/root-a.ext4"

echo "== boot (kernel $version, timeout ${timeout_s} s)"
log="$work/serial.log"
started=$(date +%s.%N)
# -no-reboot: a watchdog reset or a panic ends the run instead of looping.
timeout "$timeout_s" qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 2048 \
    -nographic -no-reboot \
    -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
    -append "root=LABEL=bfr-root-a ro console=ttyAMA0 panic=10" \
    -drive "file=$work/disk.img,format=raw,if=virtio" \
    -device i6300esb -watchdog-action reset \
    -nic none </dev/null >"$log" 2>&1 || true
elapsed=$("$python" -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.0f}')" \
    "$started" "$(date +%s.%N)")

grep -a -E '^BFR-' "$log" | tr -d '\r' || true
echo "qemu ran ${elapsed} s (TCG emulation); serial log: $log"
grep -a -q '^BFR-BOOT-TEST PASS' "$log"
