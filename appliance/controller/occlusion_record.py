"""The occlusion clock on the data partition, so a restart cannot forget what a limb has been through.

A controller that crashes, is killed by the watchdog, is updated or loses power starts again with
the cuff deflated. Without this record it would also start with a fresh occlusion allowance and no
reperfusion owed: a patient 9 minutes into a 10-minute limit could be held another 10, and a
lockout could be ended by a restart. The record keeps the clock across restarts and reboots.

Timing comes from the kernel's boot clock (CLOCK_BOOTTIME, which counts suspended time too) and
the boot's id. Within one boot the time between the record and the restart is known exactly: it
counts as occluded if the cuff was occluded at the record (a dead process may have left the valve
shut), and as rest only if the record says deflated. Across a reboot it is unknown (the Pi has no
real-time clock), so no rest is credited and an occluded record adds `UNKNOWN_OCCLUDED_S`: a power
cut opens the normally-open valve at once, and the record is never older than `PERIOD_S` while
occluded. A record that cannot be read owes a full reperfusion: the safe reading of "unknown".

The loop only hands a snapshot over (`note`); a thread of its own writes it, so the control loop
never waits on the SD card.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.controller.limits import MAX_REPERFUSION_S
from appliance.controller.occlusion import OcclusionClock
from appliance.technician.atomic_file import write_atomically

log = logging.getLogger("bfr.controller")

RECORD_NAME = "occlusion.json"
VERSION = 1
# While anything is owed or counting, the record is rewritten this often (and at every change
# between occluded and deflated): about 720 small writes an hour of exercise on the SD card.
PERIOD_S = 5.0
# Occlusion added across a reboot from an occluded record: the record's age at most, plus the
# 15 s a hung kernel could keep the valve shut before the SoC's watchdog resets it
# (RuntimeWatchdogSec, systemd/watchdog.conf) if the dead-man's power cut-off were missing.
UNKNOWN_OCCLUDED_S = PERIOD_S + 15.0
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class BootClock:
    """Which boot this is, and seconds on that boot's clock (injected: tests run it simulated)."""

    boot_id: str
    seconds: Callable[[], float]

    @classmethod
    def system(cls) -> BootClock:
        try:
            boot_id = _BOOT_ID.read_text().strip()
        except OSError:
            boot_id = ""  # no boot id: every record looks like another boot's (no rest credited)
        return cls(boot_id, lambda: time.clock_gettime(time.CLOCK_BOOTTIME))


@dataclass(frozen=True)
class Resumed:
    """The clock a controller starts with, and why (logged and emitted as an event)."""

    clock: OcclusionClock
    reason: str


def _number(data: dict[str, Any], key: str, high: float) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key}: not a number")
    if not 0.0 <= value <= high:
        raise ValueError(f"{key}: {value} outside 0..{high:g}")
    return float(value)


def _parse(text: str) -> tuple[OcclusionClock, bool, str, float]:
    """The recorded clock, whether the cuff was occluded, and the boot it was written on."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ValueError("not a version 1 occlusion record")
    occluded, boot_id = data["occluded"], data["boot_id"]
    if not isinstance(occluded, bool) or not isinstance(boot_id, str):
        raise ValueError("occluded/boot_id: wrong type")
    owed = data["owed_s"]
    clock = OcclusionClock(
        occlusion_s=_number(data, "occlusion_s", 1e7),
        deflated_s=_number(data, "deflated_s", 1e7),
        owed_s=None if owed is None else _number(data, "owed_s", MAX_REPERFUSION_S),
    )
    return clock, occluded, boot_id, _number(data, "boot_s", 1e10)


def resume(
    text: str | None, boot_id: str, boot_s: float, *, limit_s: float, reperfusion_s: float
) -> Resumed:
    """The clock after a restart, from the record's `text` (None: there is none)."""
    if text is None:
        return Resumed(OcclusionClock(), "no occlusion record: nothing owed")
    try:
        clock, occluded, recorded_boot, recorded_s = _parse(text)
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        owed = OcclusionClock(owed_s=reperfusion_s)
        return Resumed(owed, f"occlusion record unreadable ({exc}): a full reperfusion is owed")
    gap = boot_s - recorded_s
    if recorded_boot and recorded_boot == boot_id and gap >= 0.0:
        clock.track(occluded, gap, limit_s=limit_s, reperfusion_s=reperfusion_s)
        how = "occluded" if occluded else "deflated"
        return Resumed(clock, f"resumed after {gap:.1f} s counted as {how}")
    if occluded:
        clock.track(True, UNKNOWN_OCCLUDED_S, limit_s=limit_s, reperfusion_s=reperfusion_s)
        return Resumed(
            clock, f"resumed after a reboot: occluded, {UNKNOWN_OCCLUDED_S:g} s added, no rest"
        )
    return Resumed(clock, "resumed after a reboot: no rest credited for the time off")


class OcclusionRecord:
    """Keeps the controller's OcclusionClock in `path`; `note` from the loop, written off it."""

    def __init__(self, path: Path, boot: BootClock | None = None, period_s: float = PERIOD_S):
        self.path = path
        self.boot = boot or BootClock.system()
        self.period_s = period_s
        self._pending: str | None = None
        self._closing = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._last: tuple[bool, bool, float] | None = None  # occluded, owed, when (loop clock)
        self._failed: str | None = None
        self.writes = 0

    def load(self, *, limit_s: float, reperfusion_s: float) -> Resumed:
        try:
            text: str | None = self.path.read_text()
        except FileNotFoundError:
            text = None
        except (OSError, UnicodeDecodeError) as exc:
            text = f"unreadable: {exc}"  # parses as unreadable: a full reperfusion is owed
        return resume(
            text,
            self.boot.boot_id,
            self.boot.seconds(),
            limit_s=limit_s,
            reperfusion_s=reperfusion_s,
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="occlusion-record", daemon=True)
        self._thread.start()

    def note(self, now: float, clock: OcclusionClock, occluded: bool) -> None:
        """From the loop on every tick: hand a snapshot over when it changed or is due."""
        owed = clock.owed_s is not None
        counting = owed or clock.occlusion_s > 0.0
        if self._last is not None:
            was_occluded, was_owed, at = self._last
            changed = occluded != was_occluded or owed != was_owed
            if not changed and (not counting or now - at < self.period_s):
                return
        self._last = (occluded, owed, now)
        snapshot = {
            "version": VERSION,
            "boot_id": self.boot.boot_id,
            "boot_s": round(self.boot.seconds(), 3),
            "occluded": occluded,
            "occlusion_s": round(clock.occlusion_s, 3),
            "deflated_s": round(clock.deflated_s, 3),
            "owed_s": clock.owed_s,
        }
        with self._wake:
            self._pending = json.dumps(snapshot)
            self._wake.notify()
        if self._thread is None:
            self._write_pending()  # not started (in-process simulation): write in place

    def close(self) -> None:
        """Write what is pending, then stop the writer."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._pending is None and not self._closing:
                    self._wake.wait()
                if self._pending is None:
                    return
            self._write_pending()

    def _write_pending(self) -> None:
        with self._wake:
            text, self._pending = self._pending, None
        if text is None:
            return
        try:
            write_atomically(self.path, text, mode=0o640)
        except OSError as exc:
            if str(exc) != self._failed:  # once per kind of failure, not every 5 s
                log.warning("occlusion record not written to %s: %s", self.path, exc)
            self._failed = str(exc)
            return
        if self._failed is not None:
            log.info("occlusion record written again to %s", self.path)
        self._failed = None
        self.writes += 1
