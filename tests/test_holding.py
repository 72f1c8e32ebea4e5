"""Hold figures from a trace: the reps alone are reported apart from the rests."""

from __future__ import annotations

import math

from appliance.holding import HoldPoint, hold_metrics


def trace() -> tuple[list[HoldPoint], list[tuple[float, float]]]:
    """100 Hz: 10 s of rest at the set point, then five 2 s reps, each 1 s at +8 % with one
    vent and one pump start, then 10 s of rest with one pump start."""
    points = []
    reps = [(10.0 + 2 * k, 12.0 + 2 * k) for k in range(5)]
    for i in range(3000):
        t = i / 100
        in_rep = 10.0 <= t < 20.0
        high = in_rep and (t - 10.0) % 2.0 < 1.0
        vent = in_rep and 0.5 <= (t - 10.0) % 2.0 < 0.55
        pump = (in_rep and 1.2 <= (t - 10.0) % 2.0 < 1.4) or 25.0 <= t < 25.5
        points.append(HoldPoint(t, 108.0 if high else 100.0, 1.0 if pump else 0.0, vent))
    return points, reps


def test_the_reps_alone_are_measured_without_the_rests() -> None:
    points, reps = trace()
    m = hold_metrics(points, 100.0, 0.0, 29.99, reps)
    assert math.isclose(m.sets_within_5_pct, 50.0, abs_tol=0.2)
    assert math.isclose(m.within_5_pct, 100.0 * 2500 / 3000, abs_tol=0.2)
    assert math.isclose(m.sets_within_10_pct, 100.0)
    # Ten actuations in 10 s of reps; the rest's pump start counts only over the whole run.
    assert math.isclose(m.sets_actuations_per_min, 60.0, rel_tol=0.01)
    assert math.isclose(m.actuations_per_min, 11 / (29.99 / 60.0), rel_tol=0.01)


def test_without_reps_the_sets_figures_are_not_a_number() -> None:
    points, _ = trace()
    m = hold_metrics(points, 100.0, 0.0, 29.99)
    assert math.isnan(m.sets_within_5_pct) and math.isnan(m.sets_actuations_per_min)
