"""Find the inflation and deflation ramps of a cuff trace that an envelope can be read from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.lop.filters import moving_average, running_median

INFLATION = "inflation"
DEFLATION = "deflation"

# A 2 s median removes the pulsations and rep-like spikes of up to ~1 s while keeping the turn
# from inflation to deflation sharp.
TREND_WINDOW_S = 2.0
TREND_BLOCK_S = 0.1
# Valve dumps fall far faster than any measuring deflation (2-10 mmHg/s).
DUMP_RATE_MMHG_S = 25.0
# A reversal slower than this is drift or limb swelling, faster means the ramp has ended.
REVERSAL_RATE_MMHG_S = 4.0
# Pulsations near 0 mmHg say nothing about occlusion and a loose cuff is mostly noise.
LOWEST_USEFUL_MMHG = 15.0
# The turn at the top rings through the band-pass; the first/last moments are left out.
SETTLE_AFTER_TOP_S = 1.0
SETTLE_BEFORE_TOP_S = 0.5
SETTLE_BEFORE_DUMP_S = 0.3


@dataclass(frozen=True)
class Ramp:
    """Samples [start, stop) of one monotone-ish pass of cuff pressure."""

    direction: str
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def pressure_trend(pressure_mmHg: np.ndarray, rate_hz: float) -> np.ndarray:
    """Slow cuff pressure without pulsations or short spikes.

    The median runs on 0.1 s block means: the same trend at a hundredth of the cost, which
    matters when the estimate is repeated on a growing trace on a Raspberry Pi.
    """
    block = max(1, int(round(TREND_BLOCK_S * rate_hz)))
    n_blocks = pressure_mmHg.size // block
    if n_blocks < 3:
        return np.full(pressure_mmHg.size, float(np.median(pressure_mmHg)))
    means = pressure_mmHg[: n_blocks * block].reshape(n_blocks, block).mean(axis=1)
    slow = running_median(means, int(round(TREND_WINDOW_S / TREND_BLOCK_S)))
    centres = (np.arange(n_blocks) + 0.5) * block
    trend = np.interp(np.arange(pressure_mmHg.size) + 0.5, centres, slow)
    return moving_average(trend, int(0.5 * rate_hz))


def find_ramps(
    pressure_mmHg: np.ndarray, rate_hz: float, trend: np.ndarray | None = None
) -> list[Ramp]:
    """The rise up to the highest pressure and the fall after it, each trimmed of transients.

    `trend` is `pressure_trend` of the same trace, if the caller has it already.
    """
    if trend is None:
        trend = pressure_trend(pressure_mmHg, rate_hz)
    slope = moving_average(np.gradient(trend) * rate_hz, int(0.5 * rate_hz))
    top = int(np.argmax(trend))
    ramps: list[Ramp] = []

    stop = top - int(SETTLE_BEFORE_TOP_S * rate_hz)
    start = stop
    while (
        start > 0
        and trend[start - 1] >= LOWEST_USEFUL_MMHG
        and slope[start - 1] > -REVERSAL_RATE_MMHG_S
    ):
        start -= 1
    if stop > start:
        ramps.append(Ramp(INFLATION, start, stop))

    start = top + int(SETTLE_AFTER_TOP_S * rate_hz)
    stop = start
    n = trend.size
    while (
        stop < n
        and trend[stop] >= LOWEST_USEFUL_MMHG
        and -DUMP_RATE_MMHG_S < slope[stop] < REVERSAL_RATE_MMHG_S
    ):
        stop += 1
    if stop < n:
        stop = max(start, stop - int(SETTLE_BEFORE_DUMP_S * rate_hz))
    if stop > start:
        ramps.append(Ramp(DEFLATION, start, stop))
    return ramps
