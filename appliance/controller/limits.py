"""Safety limits the controller enforces itself, whatever the UI asks for."""

from __future__ import annotations

from dataclasses import dataclass

ABSOLUTE_CAP_MMHG = 300.0
# Hard continuous-occlusion limits (Patterson 2019; AIS/VALD): 15 min arm, 20 min leg.
HARD_OCCLUSION_S = {"arm": 15 * 60.0, "leg": 20 * 60.0}
LIMBS = ("arm", "leg")
# The longest reperfusion a session may ask for (`configure`).
MAX_REPERFUSION_S = 1800.0


@dataclass(frozen=True)
class SafetyLimits:
    """Controller-wide limits; per-session settings may only tighten them."""

    absolute_cap_mmHg: float = ABSOLUTE_CAP_MMHG
    max_target_mmHg: float = 260.0
    ceiling_margin_mmHg: float = 35.0
    default_occlusion_s: float = 10 * 60.0
    reperfusion_s: float = 180.0
    heartbeat_timeout_s: float = 3.0
    pressurised_mmHg: float = 10.0
    alarm_window_mmHg: float = 15.0
    alarm_window_s: float = 1.0
    high_escalate_s: float = 5.0
    low_escalate_s: float = 20.0
    leak_alarm_s: float = 7.0
    leak_escalate_s: float = 60.0
    unsteady_escalate_s: float = 10.0
    no_rise_window_s: float = 4.0
    no_rise_min_mmHg: float = 3.0
    valve_window_s: float = 2.0
    stuck_window_s: float = 0.5
    read_error_limit: int = 3
    sample_stale_s: float = 0.05
    inflate_timeout_s: float = 60.0
    deflate_timeout_s: float = 30.0  # valve open this long and the cuff still occluding

    def __post_init__(self) -> None:
        if not 0 < self.absolute_cap_mmHg <= ABSOLUTE_CAP_MMHG:
            raise ValueError(f"absolute_cap_mmHg must be in (0, {ABSOLUTE_CAP_MMHG}]")
        if not 0 < self.max_target_mmHg < self.absolute_cap_mmHg:
            raise ValueError("max_target_mmHg must be below the absolute cap")
        if not 1.0 <= self.heartbeat_timeout_s <= 10.0:
            raise ValueError("heartbeat_timeout_s must be 1..10 s")
        if not 60.0 <= self.default_occlusion_s <= min(HARD_OCCLUSION_S.values()):
            raise ValueError("default_occlusion_s must be 60 s up to the arm's hard limit")
        if self.reperfusion_s < 60.0:
            raise ValueError("reperfusion_s must be at least 60 s")


@dataclass(frozen=True)
class SessionLimits:
    """What the current exercise allows: set by `configure`, checked against SafetyLimits."""

    limb: str = "arm"
    lop_mmHg: float | None = None
    max_pct_lop: float = 80.0
    occlusion_limit_s: float = 10 * 60.0
    reperfusion_s: float | None = None  # this session's rest after the limit; None: the default

    def max_target(self, safety: SafetyLimits) -> float:
        if self.lop_mmHg is None:
            return safety.max_target_mmHg
        return min(safety.max_target_mmHg, self.lop_mmHg * self.max_pct_lop / 100.0)

    def ceiling(self, safety: SafetyLimits, target: float) -> float:
        """Above this the session is wrong, not just a rep spike: deflate."""
        return min(safety.absolute_cap_mmHg, target + safety.ceiling_margin_mmHg)
