#!/bin/bash
# Stage 3: the SD card image from the configured root, without loop devices: each file system is
# made in a file (mkfs.ext4 -d, mkfs.vfat + mcopy), then written into the partitioned image.
# Usage: disk.sh <root> <image.img>. Reads sizes, IMAGE_NAME and SOURCE_DATE_EPOCH from the env.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="${1:?root}"
image="${2:?image}"
: "${BOOT_SIZE_MIB:?}" "${ROOT_SIZE_MIB:?}" "${DATA_SIZE_MIB:?}" "${SOURCE_DATE_EPOCH:?}" "${IMAGE_NAME:?}"
python="${PYTHON:-python3}"
parts="${PARTS_DIR:-$(dirname "$image")/.parts}"
rm -rf "$parts" && mkdir -p "$parts"

layout() { PYTHONPATH="$here" "$python" -m imagebuild layout --boot-mib "$BOOT_SIZE_MIB" \
    --root-mib "$ROOT_SIZE_MIB" --data-mib "$DATA_SIZE_MIB" --seed "$IMAGE_NAME-$SOURCE_DATE_EPOCH" "$@"; }
eval "$(layout --format shell)"
# Same inputs, same file-system identifiers and times.
uuid() { "$python" -c "import sys, uuid; print(uuid.uuid5(uuid.NAMESPACE_URL, sys.argv[1]))" "$1"; }
export E2FSPROGS_FAKE_TIME="$SOURCE_DATE_EPOCH"
ext4_opts=(-q -F -t ext4 -m 0)

echo "== boot partition ($PART_BOOT_SIZE_MIB MiB)"
boot_src="$parts/boot-files"
mkdir -p "$boot_src"
cp -a "$root/boot/firmware/." "$boot_src/"
find "$root/boot/firmware" -mindepth 1 -delete
find "$boot_src" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
volume_id="$(printf '%s' "$IMAGE_NAME-$SOURCE_DATE_EPOCH" | sha256sum | cut -c1-8)"
mkfs.vfat -F 32 -n "$PART_BOOT_LABEL" -i "$volume_id" --invariant \
    -C "$parts/boot.vfat" $((PART_BOOT_SIZE_MIB * 1024)) >/dev/null
mcopy -s -p -m -i "$parts/boot.vfat" "$boot_src"/* ::/

echo "== root A ($PART_ROOT_A_SIZE_MIB MiB, read-only at run time)"
used_mib=$(($(du -sx --block-size=1M "$root" | cut -f1)))
if ((used_mib * 110 / 100 > PART_ROOT_A_SIZE_MIB)); then
    echo "root needs ${used_mib} MiB plus 10 %: raise ROOT_SIZE_MIB (now $PART_ROOT_A_SIZE_MIB)" >&2
    exit 1
fi
find "$root" -xdev -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
root_uuid="$(uuid "$IMAGE_NAME-$SOURCE_DATE_EPOCH-root-a")"
mkfs.ext4 "${ext4_opts[@]}" -L "$PART_ROOT_A_LABEL" -U "$root_uuid" -E "root_owner=0:0,hash_seed=$root_uuid" \
    -d "$root" "$parts/root-a.ext4" "${PART_ROOT_A_SIZE_MIB}M"

echo "== data ($PART_DATA_SIZE_MIB MiB)"
# The directories the mounts and services need from the first boot on (tmpfiles.d keeps them).
data_src="$parts/data-files"
owner() { awk -F: -v n="$2" '$1 == n { print $3 }' "$root/etc/$1"; }
mkdir -p "$data_src"/{bfr,journal,ssh,timesync}
chown "$(owner passwd bfr-ctl):$(owner group bfr)" "$data_src/bfr" && chmod 2770 "$data_src/bfr"
chown "0:$(owner group systemd-journal)" "$data_src/journal" && chmod 2755 "$data_src/journal"
chmod 0700 "$data_src/ssh"
chown "$(owner passwd systemd-timesync):$(owner group systemd-timesync)" "$data_src/timesync"
find "$data_src" -exec touch --date="@$SOURCE_DATE_EPOCH" {} +
data_uuid="$(uuid "$IMAGE_NAME-$SOURCE_DATE_EPOCH-data")"
mkfs.ext4 "${ext4_opts[@]}" -L "$PART_DATA_LABEL" -U "$data_uuid" -E "root_owner=0:0,hash_seed=$data_uuid" \
    -d "$data_src" "$parts/data.ext4" "${PART_DATA_SIZE_MIB}M"
# Full data journalling by default, even when mounted by hand for a repair.
tune2fs -o journal_data "$parts/data.ext4" >/dev/null

echo "== image ($IMAGE_SIZE_MIB MiB)"
rm -f "$image"
truncate -s "${IMAGE_SIZE_MIB}M" "$image"
layout --format sfdisk | sfdisk --quiet --no-reread --no-tell-kernel "$image"
write() { dd if="$1" of="$image" bs=1M seek="$2" conv=notrunc,sparse status=none; }
write "$parts/boot.vfat" "$PART_BOOT_START_MIB"
write "$parts/root-a.ext4" "$PART_ROOT_A_START_MIB"
write "$parts/data.ext4" "$PART_DATA_START_MIB"
# Root B stays empty (zeros, sparse) until an A/B update writes it.
rm -rf "$parts"
(cd "$(dirname "$image")" && sha256sum "$(basename "$image")" >"$(basename "$image").sha256")
echo "$image"
