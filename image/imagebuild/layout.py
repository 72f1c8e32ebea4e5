"""Partition layout of the SD card image: boot, root A, spare root B, data; all 4 MiB aligned."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

SECTOR = 512
MIB = 1024 * 1024
# SD cards erase in blocks of up to 4 MiB; aligned partitions avoid read-modify-write cycles.
ALIGN_MIB = 4


@dataclass(frozen=True)
class Partition:
    """One MBR primary partition; `label` is the file-system label (empty for a blank slot)."""

    name: str
    label: str
    start_mib: int
    size_mib: int
    mbr_type: str
    bootable: bool = False

    @property
    def start_sector(self) -> int:
        return self.start_mib * MIB // SECTOR

    @property
    def size_sectors(self) -> int:
        return self.size_mib * MIB // SECTOR

    @property
    def offset_bytes(self) -> int:
        return self.start_mib * MIB


@dataclass(frozen=True)
class Layout:
    """The four partitions and the image size. MBR, because the Pi 4 boot ROM reads it everywhere."""

    partitions: tuple[Partition, ...]
    disk_id: str

    @property
    def size_mib(self) -> int:
        last = self.partitions[-1]
        return last.start_mib + last.size_mib

    def by_name(self, name: str) -> Partition:
        for part in self.partitions:
            if part.name == name:
                return part
        raise KeyError(name)


def _aligned(mib: int) -> int:
    return -(-mib // ALIGN_MIB) * ALIGN_MIB


def disk_id_for(seed: str) -> str:
    """A stable MBR disk identifier, so the same inputs give the same partition table."""
    return "0x" + hashlib.sha256(seed.encode()).hexdigest()[:8]


def plan(boot_mib: int, root_mib: int, data_mib: int, seed: str = "bfr") -> Layout:
    """Boot (FAT32), root A and root B (same size, for a later A/B update) and data (last, so it
    can grow into the rest of a larger card)."""
    for name, size in (("boot", boot_mib), ("root", root_mib), ("data", data_mib)):
        if size <= 0:
            raise ValueError(f"{name} size must be positive, got {size} MiB")
    if boot_mib < 64:
        raise ValueError("boot must be at least 64 MiB: firmware, kernel and initrd live there")
    sizes = [
        ("boot", "BFR-BOOT", _aligned(boot_mib), "c", True),
        ("root-a", "bfr-root-a", _aligned(root_mib), "83", False),
        ("root-b", "", _aligned(root_mib), "83", False),
        ("data", "bfr-data", _aligned(data_mib), "83", False),
    ]
    parts = []
    start = ALIGN_MIB
    for name, label, size, mbr_type, bootable in sizes:
        parts.append(Partition(name, label, start, size, mbr_type, bootable))
        start += size
    return Layout(tuple(parts), disk_id_for(seed))


def sfdisk_script(layout: Layout) -> str:
    """Input for `sfdisk` on the image file: no loop device needed."""
    lines = ["label: dos", f"label-id: {layout.disk_id}", "unit: sectors", ""]
    for part in layout.partitions:
        fields = [
            f"start={part.start_sector}",
            f"size={part.size_sectors}",
            f"type={part.mbr_type}",
        ]
        if part.bootable:
            fields.append("bootable")
        lines.append(", ".join(fields))
    return "\n".join(lines) + "\n"


def shell_vars(layout: Layout) -> str:
    """PART_<NAME>_OFFSET/SIZE_MIB/LABEL lines for the disk assembly script."""
    lines = [f"IMAGE_SIZE_MIB={layout.size_mib}"]
    for part in layout.partitions:
        key = part.name.replace("-", "_").upper()
        lines += [
            f"PART_{key}_START_MIB={part.start_mib}",
            f"PART_{key}_SIZE_MIB={part.size_mib}",
            f"PART_{key}_LABEL={part.label}",
        ]
    return "\n".join(lines) + "\n"
