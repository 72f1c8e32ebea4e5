"""A sensing line that lags the cuff: a fault the simulator can put between cuff and transducer.

The transducer sits at the end of a thin tube from the cuff. Partly pinched (a hose under the
patient's leg, a kink at the manifold) the tube becomes a restriction in front of the
transducer's small volume, and the reading follows the cuff through a first-order lag: a ramp
reads late by its rate times the lag, a step arrives spread over a few lags. The cuff itself is
unchanged, so the plant's `pressure_mmHg` stays the true pressure (traces, benchmarks) and only
the transducer (`transducer_mmHg`) sees the lag.
"""

from __future__ import annotations

import math
from typing import Any

from hardware.sim.cuff import default_plant
from hardware.sim.plant import Plant


class LaggingLine:
    """Wraps a plant: its transducer reads the cuff through a first-order lag of `lag_s`."""

    def __init__(self, inner: Plant, lag_s: float) -> None:
        if not lag_s > 0.0:
            raise ValueError(f"lag_s: must be above 0 s, not {lag_s}")
        self.inner = inner
        self.lag_s = lag_s
        self._seen = inner.pressure_mmHg

    def step(self, dt_s: float, pump_duty: float, valve_open: bool) -> None:
        self.inner.step(dt_s, pump_duty, valve_open)
        self._seen += (self.inner.pressure_mmHg - self._seen) * -math.expm1(-dt_s / self.lag_s)

    @property
    def pressure_mmHg(self) -> float:
        return self.inner.pressure_mmHg

    @property
    def transducer_mmHg(self) -> float:
        return self._seen

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def lagging_line_plant(seed: int = 0, lag_s: float = 0.3, **overrides: Any) -> LaggingLine:
    """The project's plant behind a line lagging `lag_s` (for `bfr sim hold --plant`)."""
    return LaggingLine(default_plant(seed, **overrides), lag_s)
