"""Self-test results in the data directory: the latest for the clinician screen, and the gate.

`selftest.json` holds the latest result (written atomically); every result also goes to the audit
trail, which is the history. Sessions are refused while the latest self-test failed, when there
is none, and when it predates a check this software runs (an update that adds a check asks for a
self-test before the next session, rather than trusting a report that never looked).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from appliance.technician.atomic_file import write_atomically
from appliance.technician.errors import DeviceNotReady, TechnicianError
from appliance.technician.selftest import CHECKS

SELFTEST_FILE = "selftest.json"


def record_selftest(data_dir: Path, report: dict[str, Any]) -> Path:
    path = data_dir / SELFTEST_FILE
    try:
        write_atomically(path, json.dumps(report, indent=2, allow_nan=False) + "\n")
    except OSError as exc:
        raise TechnicianError(
            f"cannot write {path}: {exc}", "run with sudo and check the data partition"
        ) from exc
    return path


def latest_selftest(data_dir: Path | str) -> dict[str, Any] | None:
    """The latest self-test report for the clinician screen; None when none has run.

    A damaged file reads as a failed self-test, never as a passed one.
    """
    path = Path(data_dir) / SELFTEST_FILE
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"passed": False, "damaged": True, "message": f"cannot read {path}: {exc}"}
    if not isinstance(report, dict) or not isinstance(report.get("passed"), bool):
        return {"passed": False, "damaged": True, "message": f"{path} is not a self-test report"}
    return report


def missing_checks(report: dict[str, Any]) -> list[str]:
    """The checks this software runs that the report has no result for, in the self-test's order."""
    checks = report.get("checks")
    if not isinstance(checks, list):
        return list(CHECKS)
    done = {c.get("name") for c in checks if isinstance(c, dict)}
    return [name for name in CHECKS if name not in done]


def require_passed_selftest(
    data_dir: Path | str, now: float, max_age_s: float | None = None
) -> dict[str, Any]:
    """For the session start: the latest report, or DeviceNotReady.

    Refuses when no self-test has run, the latest failed or it lacks a check this software runs;
    with `max_age_s` also when it is older than that (e.g. 86400 for a self-test every day of
    use). `now` is `time.time()`.
    """
    report = latest_selftest(data_dir)
    if report is None:
        raise DeviceNotReady(
            "the appliance has not been self-tested",
            "a technician must run the self-test (`bfr selftest`)",
        )
    if not report["passed"]:
        failed = [c["name"] for c in report.get("checks", []) if c.get("status") == "failed"]
        what = ", ".join(failed) or report.get("message") or "see the report"
        raise DeviceNotReady(
            f"the last self-test failed ({what})",
            "have a technician fix the fault and run the self-test again (`bfr selftest`)",
        )
    missing = missing_checks(report)
    if missing:
        raise DeviceNotReady(
            "the last self-test predates this software's "
            + ", ".join(missing)
            + (" checks" if len(missing) > 1 else " check"),
            "a technician must run the self-test again (`bfr selftest`)",
        )
    at = report.get("at_epoch")
    if max_age_s is not None and (not isinstance(at, int | float) or now - at > max_age_s):
        raise DeviceNotReady(
            "the last self-test is too old", "a technician must run the self-test (`bfr selftest`)"
        )
    return report
