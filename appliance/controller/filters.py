"""Pressure conditioning for control: reject sensor noise and heartbeat ripple, estimate the slope."""

from __future__ import annotations

import math
from collections import deque


class PressureFilter:
    """First-order low-pass plus a slope over a short window.

    The time constant is short (40 ms) on purpose: rep spikes must be seen within a few tens of
    milliseconds, and the heartbeat ripple (0.5-3 mmHg) is handled by the regulator's bands being
    wider than the ripple rather than by a slow filter that would let spikes through.
    """

    def __init__(self, tau_s: float = 0.04, slope_window_s: float = 0.1) -> None:
        self.tau_s = tau_s
        self.slope_window_s = slope_window_s
        self.value: float | None = None
        self.raw: float | None = None
        self.slope = 0.0
        self._history: deque[tuple[float, float]] = deque()
        self._last_t: float | None = None

    def reset(self) -> None:
        self.value = None
        self.slope = 0.0
        self._history.clear()
        self._last_t = None

    def update(self, t: float, mmHg: float) -> float:
        self.raw = mmHg
        if self.value is None or self._last_t is None:
            self.value = mmHg
        else:
            dt = max(0.0, t - self._last_t)
            alpha = 1.0 - math.exp(-dt / self.tau_s) if dt > 0 else 0.0
            self.value += alpha * (mmHg - self.value)
        self._last_t = t
        self._history.append((t, self.value))
        while self._history and t - self._history[0][0] > self.slope_window_s:
            self._history.popleft()
        t0, v0 = self._history[0]
        self.slope = (self.value - v0) / (t - t0) if t > t0 else 0.0
        return self.value

    def predict(self, horizon_s: float) -> float:
        """Where pressure will be after the actuators' latency if the trend continues."""
        return (self.value or 0.0) + self.slope * horizon_s
