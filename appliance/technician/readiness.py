"""May the appliance treat a patient now? A valid calibration and a passed, current self-test.

Asked before anything inflates a cuff on a limb (a session or an LOP measurement). Every problem
is listed, not just the first, so one visit from the technician fixes them all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from appliance.technician.calibration import require_valid_calibration
from appliance.technician.errors import DeviceNotReady, TechnicianError
from appliance.technician.preflight import open_sessions
from appliance.technician.selftest_results import require_passed_selftest

log = logging.getLogger("bfr.readiness")


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


def treatment_problems(
    data_dir: Path | str, now: float, *, selftest_max_age_s: float | None = None
) -> list[DeviceNotReady]:
    """For every inflation on a limb: `readiness_problems`, except that a session under way ends.

    A calibration or a self-test that runs out of time while a patient is between two exercises
    must not end the session halfway (the next exercise's inflation refused): the appliance was
    ready when the session started and nothing has been found wrong since. So when the records
    only fail because time passed, and a session that is not a crash's leftover was started when
    they were all good, it may go on. A failed self-test, a damaged or missing record, or a clock
    set back refuse as before, and the next session is refused by the web server's own check.
    """
    problems = readiness_problems(data_dir, now, selftest_max_age_s=selftest_max_age_s)
    if not problems:
        return []
    try:
        sessions = open_sessions(Path(data_dir))
    except TechnicianError:
        return problems
    running = [s for s in sessions if s.started_at <= now and s.running(now)]
    if not running:
        return problems
    started = running[-1].started_at
    if readiness_problems(data_dir, started, selftest_max_age_s=selftest_max_age_s):
        return problems
    log.warning(
        "%s; session %d started before and may finish",
        "; ".join(map(str, problems)),
        running[-1].id,
    )
    return []
