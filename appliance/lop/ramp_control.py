"""Pump duty that makes the cuff climb at a commanded rate without imprinting on the pulsations.

The oscillometric reading needs a smooth, monotone inflation. Two things would spoil it:
- a controller acting on the pulse-laden pressure turns every beat into a pump-flow wobble at the
  heart rate, which adds to (or cancels) the very pulsations being measured; so the controller
  sees pressure through a slow low-pass (0.5 s) and has a low gain;
- a setpoint recomputed from the start whenever the rate changes jumps ahead or behind and the
  pump stalls or surges; so the setpoint is integrated and rate changes are slewed.

The pump is modelled only as "flow grows linearly with duty above a back-pressure-dependent
dead zone": the gain (mmHg/s per unit duty) is learned from the full-duty fill, so the same
tuning fits a small arm cuff and a large thigh cuff, a strong pump and a weak one.
"""

from __future__ import annotations

import math

from appliance.pump_model import dead_zone_duty

# Low-pass of pressure and setpoint: attenuates a 0.75 Hz pulsation to under 40 %.
SMOOTHING_S = 0.5
# Closed-loop time constants: crossover near 1 rad/s, integral below it. A pump that differs
# from the nominal one is corrected within a few seconds.
PROPORTIONAL_S = 1.0
INTEGRAL_S = 4.0
# Rates change by at most this much per second: a kink in the ramp would show as a step in
# the pulsation band.
RATE_SLEW_MMHG_S2 = 3.0
# The setpoint may lead the pressure by at most this much when the pump cannot keep up.
MAX_LEAD_MMHG = 6.0
# In the first moments it may also trail the pressure by no more than this: the momentum of
# the fill carries the cuff past the start, and the ramp should go on from where the cuff is
# instead of pausing until the setpoint catches up.
MAX_LAG_MMHG = 2.0
STARTUP_S = 1.5
# A plausible pump never gives less than this (mmHg/s per unit duty) on a tight cuff.
MIN_GAIN = 5.0


def gain_from_fill(rise_mmHg_s: float, pressure_mmHg: float) -> float:
    """mmHg/s per unit duty, from the rise seen at full duty near `pressure_mmHg`."""
    return max(MIN_GAIN, rise_mmHg_s / max(1.0 - dead_zone_duty(pressure_mmHg), 0.05))


class RampTracker:
    """PI on a slowly filtered pressure error around an integrated setpoint, with feed-forward."""

    def __init__(self, now: float, pressure_mmHg: float, rate_mmHg_s: float, gain: float) -> None:
        self.gain = max(gain, MIN_GAIN)
        self.setpoint = pressure_mmHg
        self.rate = rate_mmHg_s
        self.target_rate = rate_mmHg_s
        self._slow_pressure = pressure_mmHg
        self._slow_setpoint = pressure_mmHg
        self._integral = 0.0  # mmHg/s, what the feed-forward misses
        self._last_t = now
        self._began = now
        self._clamped = 0  # +1 at full duty, -1 at none

    def set_rate(self, rate_mmHg_s: float) -> None:
        self.target_rate = rate_mmHg_s

    def duty(self, now: float, pressure_mmHg: float) -> float:
        """Duty for this tick; call on every fresh sample."""
        dt = now - self._last_t
        self._last_t = now
        if dt <= 0:
            return self._output()
        step = RATE_SLEW_MMHG_S2 * dt
        self.rate += min(step, max(-step, self.target_rate - self.rate))
        alpha = 1.0 - math.exp(-dt / SMOOTHING_S)
        self._slow_pressure += alpha * (pressure_mmHg - self._slow_pressure)
        self.setpoint = min(self.setpoint + self.rate * dt, pressure_mmHg + MAX_LEAD_MMHG)
        if now - self._began < STARTUP_S:
            self.setpoint = max(self.setpoint, self._slow_pressure - MAX_LAG_MMHG)
        self._slow_setpoint += alpha * (self.setpoint - self._slow_setpoint)
        error = self._slow_setpoint - self._slow_pressure
        # No integration against a clamped duty: it would only overshoot once it is free.
        if error * self._clamped <= 0:
            self._integral += error / (PROPORTIONAL_S * INTEGRAL_S) * dt
        return self._output()

    def _output(self) -> float:
        error = self._slow_setpoint - self._slow_pressure
        wanted = self.rate + error / PROPORTIONAL_S + self._integral
        duty = dead_zone_duty(self._slow_pressure) + wanted / self.gain
        self._clamped = 1 if duty >= 1.0 else -1 if duty <= 0.0 else 0
        return min(1.0, max(0.0, duty))
