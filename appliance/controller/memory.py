"""Keep the garbage collector's pauses out of the control loop's way.

CPython frees most objects by reference counting, but its cycle collector also scans tracked
containers from time to time, and a full pass scans all of them. After start-up the controller
holds tens of thousands (numpy, the drivers, gpiozero, logging): a full pass over them stops the
loop for 15 ms on a desktop core (`python bench/tick.py`), seven poll periods, and a Raspberry
Pi 4 core is several times slower. Everything made before the loop starts lives as long as the
process, so it is moved out of the collector's sight (`gc.freeze`): the loop's collections then
scan only what the loop itself keeps. Pauses longer than a few poll periods are logged, so the
device's journal shows them."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import Any

# Five poll periods at 250 SPS: shorter pauses are within the loop's normal jitter.
LONG_PAUSE_S = 0.01


def settle_heap() -> int:
    """Collect what start-up left behind, then freeze the rest; returns how many were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class GcPauseLog:
    """Times every collection and logs the long ones (a `gc.callbacks` entry)."""

    def __init__(
        self,
        log: logging.Logger,
        threshold_s: float = LONG_PAUSE_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.log = log
        self.threshold_s = threshold_s
        self.clock = clock
        self.last_s = 0.0
        self.longest_s = 0.0
        self.long_pauses = 0
        self._started: float | None = None

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self.clock()
            return
        if self._started is None:
            return
        pause = self.clock() - self._started
        self._started = None
        self.last_s = pause
        self.longest_s = max(self.longest_s, pause)
        if pause > self.threshold_s:
            self.long_pauses += 1
            self.log.warning(
                "garbage collection paused the loop %.1f ms (generation %s, %s collected)",
                pause * 1000.0,
                info.get("generation"),
                info.get("collected"),
            )

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)
