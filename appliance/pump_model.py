"""The nominal diaphragm pump, as the regulator and the LOP ramp see it.

Flow grows linearly with PWM duty above a dead zone that widens with back-pressure: no flow below
25 % duty (static friction), and none at all once the pressure reaches the pump's shut-off
(~400 mmHg). Only feed-forward uses these figures; each user learns the actual pump's strength
from the full-duty fill and corrects the rest in closed loop.
"""

from __future__ import annotations

NOMINAL_MIN_DUTY = 0.25
NOMINAL_STALL_MMHG = 400.0


def dead_zone_duty(pressure_mmHg: float) -> float:
    """Duty at which the nominal pump just holds this back-pressure."""
    share = min(max(pressure_mmHg, 0.0) / NOMINAL_STALL_MMHG, 0.95)
    return NOMINAL_MIN_DUTY + (1.0 - NOMINAL_MIN_DUTY) * share
