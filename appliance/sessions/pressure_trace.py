"""The session's pressure trace on a fixed-rate grid, from the cuff pressures seen at each tick."""

from __future__ import annotations

import math
from collections.abc import Callable

from appliance.store.trace import TraceRecorder

# Beyond this the runner was not ticking (a stall, a lost link): leave a gap rather than invent a
# flat line. Shorter gaps are filled with the last pressure, as a sample-and-hold ADC would.
MAX_HOLD_S = 1.0
_EPS = 1e-6


class TraceSampler:
    """Feeds a `TraceRecorder` one sample per grid point, in wall time.

    The runner ticks at its own pace (10-20 Hz, with jitter on the device); the recorder wants
    evenly spaced samples, or it starts a new chunk at every irregular one. So samples are put on
    a grid of `rate_hz` from the first tick, each taking the newest pressure known at that point.
    """

    def __init__(
        self, recorder: TraceRecorder, to_wall: Callable[[float], float], rate_hz: float
    ) -> None:
        self.recorder = recorder
        self.to_wall = to_wall
        self.period_s = 1.0 / rate_hz
        self._t0: float | None = None
        self._k = 0

    def add(self, now: float, mmhg: float | None) -> None:
        value = math.nan if mmhg is None else float(mmhg)
        if self._t0 is None or now - self._grid() > MAX_HOLD_S:
            self._t0, self._k = now, 0
        while self._grid() <= now + _EPS:
            self.recorder.add(self.to_wall(self._grid()), value)
            self._k += 1

    def flush(self) -> None:
        self.recorder.flush()

    def _grid(self) -> float:
        assert self._t0 is not None
        return self._t0 + self._k * self.period_s
