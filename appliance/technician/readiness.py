"""May the appliance treat a patient now? A valid calibration and a passed, current self-test.

Asked before anything inflates a cuff on a limb (a session or an LOP measurement). Every problem
is listed, not just the first, so one visit from the technician fixes them all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from appliance.technician.calibration import require_valid_calibration
from appliance.technician.errors import DeviceNotReady
from appliance.technician.selftest_results import require_passed_selftest


def readiness_problems(
    data_dir: Path | str, now: float, *, selftest_max_age_s: float | None = None
) -> list[DeviceNotReady]:
    """What stands between the appliance and a patient; empty when it may treat.

    `now` is wall-clock seconds since the epoch.
    """
    checks: tuple[Callable[[], object], ...] = (
        lambda: require_valid_calibration(data_dir, now),
        lambda: require_passed_selftest(data_dir, now, selftest_max_age_s),
    )
    problems = []
    for check in checks:
        try:
            check()
        except DeviceNotReady as exc:
            problems.append(exc)
    return problems
