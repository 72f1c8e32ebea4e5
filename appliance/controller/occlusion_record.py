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
occluded. A record that cannot be read owes the longest reperfusion a session may set (30 min):
the safe reading of "unknown".

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

from appliance.controller.limits import HARD_OCCLUSION_S, MAX_REPERFUSION_S
from appliance.controller.occlusion import OcclusionClock
from appliance.technician.atomic_file import write_atomically

log = logging.getLogger("bfr.controller")

RECORD_NAME = "occlusion.json"
VERSION = 1
# While anything is owed or counting, the record is rewritten this often (and at every change:
# occluded or deflated, owed, limits): about 720 small writes an hour of exercise on the card.
PERIOD_S = 5.0
# Occlusion added across a reboot from an occluded record: the record's age at most, plus the
# 15 s a hung kernel could keep the valve shut before the SoC's watchdog resets it
# (RuntimeWatchdogSec, systemd/watchdog.conf) if the dead-man's power cut-off were missing.
UNKNOWN_OCCLUDED_S = PERIOD_S + 15.0
# A record further behind than this raises OCCLUSION_RECORD and refuses new inflations.
STALE_S = 2 * PERIOD_S
RETRY_S = 1.0
# With nothing counting, a write a minute still proves the card takes them.
IDLE_PERIOD_S = 60.0
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
    """The clock a controller starts with, and why (logged). The clock carries the limits in
    force before the restart: a session may have set a shorter limit or a longer rest than a
    restarted controller's defaults, and the occlusion carried over must still meet them."""

    clock: OcclusionClock
    reason: str


def _number(data: dict[str, Any], key: str, high: float) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key}: not a number")
    if not 0.0 <= value <= high:
        raise ValueError(f"{key}: {value} outside 0..{high:g}")
    return float(value)


@dataclass(frozen=True)
class _Recorded:
    clock: OcclusionClock
    occluded: bool
    boot_id: str
    boot_s: float
    limit_s: float | None
    reperfusion_s: float | None


def _parse(text: str) -> _Recorded:
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
    return _Recorded(
        clock,
        occluded,
        boot_id,
        _number(data, "boot_s", 1e10),
        # Absent from the first records written (none carried): not a damaged record.
        _number(data, "limit_s", max(HARD_OCCLUSION_S.values())) if "limit_s" in data else None,
        _number(data, "reperfusion_s", MAX_REPERFUSION_S) if "reperfusion_s" in data else None,
    )


def resume(
    text: str | None, boot_id: str, boot_s: float, *, limit_s: float, reperfusion_s: float
) -> Resumed:
    """The clock after a restart, from the record's `text` (None: there is none); `limit_s`
    and `reperfusion_s` are a restarted controller's defaults (the record's, if stricter)."""
    if text is None:
        return Resumed(OcclusionClock(), "no occlusion record: nothing owed")
    try:
        rec = _parse(text)
    except Exception as exc:  # anything in a damaged file (even a 400-digit number) is unknown
        # Unknown: the longest rest a session may have been owed, not this controller's default.
        owed = OcclusionClock(owed_s=MAX_REPERFUSION_S)
        why = f"occlusion record unreadable ({type(exc).__name__}: {exc})"
        return Resumed(owed, f"{why}: {MAX_REPERFUSION_S:g} s of reperfusion owed")
    clock, gap = rec.clock, boot_s - rec.boot_s
    if clock.occlusion_s > 0.0 or clock.owed_s is not None:  # limits matter until a full rest
        clock.carried_limit_s, clock.carried_reperfusion_s = rec.limit_s, rec.reperfusion_s
    if rec.boot_id and rec.boot_id == boot_id and gap >= 0.0:
        clock.track(rec.occluded, gap, limit_s=limit_s, reperfusion_s=reperfusion_s)
        how = "occluded" if rec.occluded else "deflated"
        reason = f"resumed after {gap:.1f} s counted as {how}"
    elif rec.occluded:
        clock.track(True, UNKNOWN_OCCLUDED_S, limit_s=limit_s, reperfusion_s=reperfusion_s)
        reason = f"resumed after a reboot: occluded, {UNKNOWN_OCCLUDED_S:g} s added, no rest"
    else:
        reason = "resumed after a reboot: no rest credited for the time off"
    return Resumed(clock, reason)


class OcclusionRecord:
    """Keeps the controller's OcclusionClock in `path`; `note` from the loop, written off it."""

    def __init__(self, path: Path, boot: BootClock | None = None, period_s: float = PERIOD_S):
        self.path = path
        self.boot = boot or BootClock.system()
        self.period_s = period_s
        # The snapshot to write, and since when (loop clock) the card has been behind it.
        self._pending: tuple[str, float] | None = None
        self._unwritten_since: float | None = None  # the oldest snapshot not yet on the card
        self._closing = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._last: tuple[tuple, float] | None = None  # what was handed over last, and when
        self._failed: str | None = None
        self.writes = 0

    def load(self, *, limit_s: float, reperfusion_s: float) -> Resumed:
        try:
            text: str | None = self.path.read_text()
        except FileNotFoundError:
            text = None
        except (OSError, UnicodeDecodeError) as exc:
            text = f"unreadable: {exc}"  # parses as unreadable: the longest rest is owed
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

    def stale(self, now: float) -> bool:
        """Whether the card is behind by more than `STALE_S`: the writes fail or hang, and a
        restart now would resume from an older clock than the limb's."""
        since = self._unwritten_since
        return since is not None and now - since > STALE_S

    def note(
        self,
        now: float,
        clock: OcclusionClock,
        occluded: bool,
        *,
        limit_s: float,
        reperfusion_s: float,
    ) -> None:
        """From the loop on every tick: hand a snapshot over when it changed or is due (every
        `period_s` while anything counts, every `IDLE_PERIOD_S` otherwise: a card that died
        while the appliance stood idle is noticed before the next exercise, not 10 s into it)."""
        counting = clock.owed_s is not None or clock.occlusion_s > 0.0
        key = (occluded, clock.owed_s is not None, counting, limit_s, reperfusion_s)
        if self._last is not None:
            last_key, at = self._last
            due = now - at >= (self.period_s if counting else IDLE_PERIOD_S)
            if key == last_key and not due:
                if self._thread is None and self._pending is not None and now - at >= RETRY_S:
                    self._last = (key, now)  # in-process simulation: retry a failed write
                    self._write_pending()
                return
        self._last = (key, now)
        snapshot = {
            "version": VERSION,
            "boot_id": self.boot.boot_id,
            "boot_s": round(self.boot.seconds(), 3),
            "occluded": occluded,
            "occlusion_s": round(clock.occlusion_s, 3),
            "deflated_s": round(clock.deflated_s, 3),
            "owed_s": clock.owed_s,
            "limit_s": limit_s,
            "reperfusion_s": reperfusion_s,
        }
        with self._wake:
            # A snapshot replacing one still waiting keeps the older one's time: how far behind
            # the card is runs from the first snapshot it has not taken.
            since = now if self._pending is None else self._pending[1]
            self._pending = (json.dumps(snapshot), since)
            if self._unwritten_since is None:
                self._unwritten_since = now
            self._wake.notify()
        if self._thread is None:
            self._write_pending()  # not started (in-process simulation): write in place

    def close(self, timeout_s: float = 2.0) -> None:
        """Write what is pending, then stop the writer (a card that hangs is not waited for
        past `timeout_s`: the service's stop timeout is 5 s)."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._pending is None and not self._closing:
                    self._wake.wait()
                if self._pending is None:
                    return
            if not self._write_pending():
                with self._wake:  # a failing card is retried once a second, not hammered
                    if not self._closing:
                        self._wake.wait(RETRY_S)

    def _write_pending(self) -> bool:
        with self._wake:
            pending, self._pending = self._pending, None
        if pending is None:
            return True
        try:
            write_atomically(self.path, pending[0], mode=0o640)
        except OSError as exc:
            with self._wake:  # try again: this one, or a newer one since, as old as this one
                if self._pending is None and not self._closing:
                    self._pending = pending
                elif self._pending is not None:
                    self._pending = (self._pending[0], pending[1])
            if str(exc) != self._failed:  # once per kind of failure, not every 5 s
                log.warning("occlusion record not written to %s: %s", self.path, exc)
            self._failed = str(exc)
            return False
        with self._wake:  # on the card up to this snapshot; a newer one may be waiting
            self._unwritten_since = None if self._pending is None else self._pending[1]
        if self._failed is not None:
            log.info("occlusion record written again to %s", self.path)
        self._failed = None
        self.writes += 1
        return True
