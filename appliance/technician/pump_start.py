"""How long the pump takes to deliver its flow after it is switched on.

The regulator's horizons assume the BOM's motor, which reaches two thirds of its speed in 50 ms:
a motor three times slower (worn brushes, a tired diaphragm, another model) costs a thigh cuff a
fifth of its time within +-5 % (docs/regulation.md). During a session nothing tells a slow motor
from the limb's own movement, but on the test cylinder two climbs through the same pressures
show it plainly: once with the pump already running (the self-test's pump check) and once from
rest, sealed at the lower pressure. The second takes longer by the flow the motor lost while it
spun up, whatever the cuff's compliance or the pump's back-pressure curve, because both climbs
cross the same pressures in the same cuff.
"""

from __future__ import annotations

from collections.abc import Sequence

Trace = Sequence[tuple[float, float]]  # (time s, raw mmHg), in time order


def crossing_s(trace: Trace, level: float) -> float | None:
    """When the pressure first reached `level`, between the two samples either side of it."""
    for (t0, p0), (t1, p1) in zip(trace, trace[1:], strict=False):
        if p0 < level <= p1:
            return t0 + (t1 - t0) * (level - p0) / (p1 - p0)
    return None


def lost_flow_s(
    running: Trace, restart: Trace, switched_on: float, level: float, up_to: float
) -> float | None:
    """How much longer the climb from rest at `level` took to `up_to` than the running pump's.

    None when either climb never crossed both pressures (the pump check says why).
    """
    t_from = crossing_s(running, level)
    t_to = crossing_s(running, up_to)
    t_up = crossing_s(restart, up_to)
    if t_from is None or t_to is None or t_up is None:
        return None
    return (t_up - switched_on) - (t_to - t_from)
