"""How long the limb has been occluded, and the reperfusion it is owed before the next inflation.

Occlusion is counted from the measured pressure, whatever inflated the cuff (an exercise, an LOP
measurement, a self-test on a limb), and a rest as long as the reperfusion time clears it. Once
the limit is reached the lockout is fixed at that moment: a `configure` that raises the limit,
changes the limb or shortens the reperfusion time afterwards cannot end it early.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class OcclusionClock:
    """Seconds occluded, seconds deflated since, and the reperfusion owed (None: none owed).

    `carried_limit_s` / `carried_reperfusion_s`: the limits in force before a restart, which
    the occlusion carried over must still meet (no longer limit, no shorter rest) until a full
    rest clears the clock, whatever a restarted controller's defaults or a new session say.
    """

    occlusion_s: float = 0.0
    deflated_s: float = 0.0
    owed_s: float | None = None
    carried_limit_s: float | None = None
    carried_reperfusion_s: float | None = None

    def limits(self, limit_s: float, reperfusion_s: float) -> tuple[float, float]:
        """The limit and rest that apply: the given ones, or the carried ones if stricter."""
        if self.carried_limit_s is not None:
            limit_s = min(limit_s, self.carried_limit_s)
        if self.carried_reperfusion_s is not None:
            reperfusion_s = max(reperfusion_s, self.carried_reperfusion_s)
        return limit_s, reperfusion_s

    def track(self, occluded: bool, dt: float, *, limit_s: float, reperfusion_s: float) -> None:
        """One tick of `dt` seconds with the cuff `occluded` (above the pressurised level) or not."""
        limit_s, reperfusion_s = self.limits(limit_s, reperfusion_s)
        if occluded:
            self.occlusion_s += dt
            self.deflated_s = 0.0
        else:
            self.deflated_s += dt
        self.owed_s = self._owed(limit_s, reperfusion_s)
        rest_s = reperfusion_s if self.owed_s is None else self.owed_s
        if not occluded and self.deflated_s >= rest_s:
            self.occlusion_s = 0.0
            self.owed_s = None
            self.carried_limit_s = self.carried_reperfusion_s = None  # a full rest: a new start

    def _owed(self, limit_s: float, reperfusion_s: float) -> float | None:
        """The rest owed: fixed once the limit is reached, whatever the limits say later."""
        if self.owed_s is None and self.occlusion_s >= limit_s:
            return reperfusion_s
        return self.owed_s

    def lockout_s(self, limit_s: float, reperfusion_s: float) -> float | None:
        """Seconds of reperfusion still owed before the cuff may inflate again, or None.

        Also when the limit has just been lowered under the time already occluded, before the
        next tick fixes it. Reads only: status() asks from the IPC threads.
        """
        owed = self._owed(*self.limits(limit_s, reperfusion_s))
        return None if owed is None else max(0.0, owed - self.deflated_s)


class OcclusionNotes(Protocol):
    """Where the loop hands the clock on every tick, to keep it across restarts."""

    def note(
        self,
        now: float,
        clock: OcclusionClock,
        occluded: bool,
        *,
        limit_s: float,
        reperfusion_s: float,
    ) -> None: ...

    def stale(self, now: float) -> bool:
        """The kept clock is further behind than a restart may safely resume from."""
        ...
