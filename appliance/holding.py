"""How well a cuff held its pressure: the figures of Swain 2025, computed from a control trace."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class HoldPoint:
    """One control tick: true cuff pressure and the actuator state."""

    t: float
    plant_mmHg: float
    pump_duty: float
    valve_open: bool


@dataclass(frozen=True)
class HoldMetrics:
    """Exercise-time quality of holding `target` (true pressure, pulsations included)."""

    target_mmHg: float
    duration_s: float
    within_5_pct: float
    within_10_pct: float
    peak_pct: float
    valley_pct: float
    rep_peak_pct: float
    rep_valley_pct: float
    valve_openings_per_min: float
    pump_starts_per_min: float
    # The same over the reps alone (rests left out, where holding is easier): NaN without reps.
    sets_within_5_pct: float = float("nan")
    sets_within_10_pct: float = float("nan")
    sets_actuations_per_min: float = float("nan")

    @property
    def actuations_per_min(self) -> float:
        return self.valve_openings_per_min + self.pump_starts_per_min


def _share_within(points: Sequence[HoldPoint], target: float, frac: float) -> float:
    """Percent of `points` whose true pressure is within `frac` of `target`."""
    near = sum(1 for p in points if abs(p.plant_mmHg - target) <= frac * target)
    return 100.0 * near / len(points)


def actuations(points: Sequence[HoldPoint]) -> Iterator[tuple[int, str]]:
    """Each valve opening ("valve") and pump start ("pump"), with the index of the point that
    shows it first: what wears the parts and clicks, so what the benches count."""
    for i in range(1, len(points)):
        prev, cur = points[i - 1], points[i]
        if cur.valve_open and not prev.valve_open:
            yield i, "valve"
        if cur.pump_duty > 0 and prev.pump_duty == 0:
            yield i, "pump"


def _actuations(
    points: Sequence[HoldPoint], counted: Sequence[bool] | None = None
) -> tuple[int, int]:
    """Valve openings and pump starts, at the points `counted` marks (all by default)."""
    kinds = [kind for i, kind in actuations(points) if counted is None or counted[i]]
    return kinds.count("valve"), kinds.count("pump")


def _ticks_s(points: Sequence[HoldPoint], counted: Sequence[bool]) -> float:
    """Time covered by the marked points, each counting from the point before it."""
    return sum(points[i].t - points[i - 1].t for i in range(1, len(points)) if counted[i])


def _in_windows(points: Sequence[HoldPoint], windows: Sequence[tuple[float, float]]) -> list[bool]:
    """For each point (in time order), whether it lies in one of the (start, end) windows."""
    ordered = sorted(windows)
    flags, i = [], 0
    for p in points:
        while i < len(ordered) and ordered[i][1] <= p.t:
            i += 1
        flags.append(i < len(ordered) and ordered[i][0] <= p.t)
    return flags


def hold_metrics(
    points: Sequence[HoldPoint],
    target: float,
    start_t: float,
    end_t: float,
    reps: Sequence[tuple[float, float]] = (),
) -> HoldMetrics:
    """Figures over [start_t, end_t]: start at first reaching the target, end at the last rep.

    `peak_pct`/`valley_pct` are the extreme true pressures in the window, so one bad rep shows;
    `rep_peak_pct`/`rep_valley_pct` average each rep's own extremes over the `reps` windows
    (start, end), as Swain 2025 reports them.
    """
    window = [p for p in points if start_t <= p.t <= end_t]
    if len(window) < 2:
        raise ValueError("no trace in the exercise window")
    opens, starts = _actuations(window)
    minutes = (window[-1].t - window[0].t) / 60.0
    rep_peaks, rep_valleys = [], []
    for r0, r1 in reps:
        in_rep = [p.plant_mmHg for p in window if r0 <= p.t < r1]
        if in_rep:
            rep_peaks.append(max(in_rep))
            rep_valleys.append(min(in_rep))
    peak = max(p.plant_mmHg for p in window)
    valley = min(p.plant_mmHg for p in window)
    flags = _in_windows(window, reps)
    in_sets = [p for p, inside in zip(window, flags, strict=True) if inside]
    sets = {}
    if len(in_sets) >= 2:
        # A tick counts when it falls in a rep: a rest's actuations are left out with its time.
        sets = {
            "sets_within_5_pct": _share_within(in_sets, target, 0.05),
            "sets_within_10_pct": _share_within(in_sets, target, 0.10),
            "sets_actuations_per_min": sum(_actuations(window, flags))
            / (_ticks_s(window, flags) / 60.0),
        }
    return HoldMetrics(
        target_mmHg=target,
        duration_s=window[-1].t - window[0].t,
        within_5_pct=_share_within(window, target, 0.05),
        within_10_pct=_share_within(window, target, 0.10),
        peak_pct=100.0 * peak / target,
        valley_pct=100.0 * valley / target,
        rep_peak_pct=100.0 * (sum(rep_peaks) / len(rep_peaks) if rep_peaks else peak) / target,
        rep_valley_pct=100.0
        * (sum(rep_valleys) / len(rep_valleys) if rep_valleys else valley)
        / target,
        valve_openings_per_min=opens / minutes,
        pump_starts_per_min=starts / minutes,
        **sets,
    )
