"""One clock abstraction: real time on the device, simulated time for tests, benches and `bfr sim`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds and a way to wait; everything time-dependent takes one of these."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    """Wall-clock monotonic time, used on the device."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class SimClock:
    """Simulated time that advances only when someone sleeps.

    Sleeping steps the simulated world (plant, emulated chips) in slices of at most `step_s`, so a
    single-threaded loop of `tick(); clock.sleep(period)` runs the whole device as fast as the CPU
    allows. With `realtime=True` each slice also waits for real time (for `make run`).
    """

    def __init__(self, start: float = 0.0, step_s: float = 0.001, realtime: bool = False) -> None:
        self._t = float(start)
        self.step_s = step_s
        self.realtime = realtime
        self._hooks: list[Callable[[float, float], None]] = []
        self._wall_origin = time.monotonic() - self._t

    def now(self) -> float:
        return self._t

    def on_advance(self, hook: Callable[[float, float], None]) -> None:
        """Register `hook(t_before, dt)` to run for every slice of simulated time."""
        self._hooks.append(hook)

    def sleep(self, seconds: float) -> None:
        remaining = float(seconds)
        while remaining > 1e-12:
            dt = min(self.step_s, remaining)
            for hook in self._hooks:
                hook(self._t, dt)
            self._t += dt
            remaining -= dt
        if self.realtime:
            lag = self._wall_origin + self._t - time.monotonic()
            if lag > 0:
                time.sleep(lag)
