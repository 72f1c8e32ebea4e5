"""Technician operations over SSH: calibration, self-test, status, logs, updates and rollback.

The session start and the LOP measurement ask this package whether the appliance may treat a
patient: `readiness_problems(data_dir, now)` lists every `DeviceNotReady` (calibration missing or
expired, self-test missing, failed or older than this software's checks), each with a message for
the clinician screen and advice; `require_valid_calibration` and `require_passed_selftest` raise
them one at a time; `latest_selftest(data_dir)` feeds the technician's status screen.
"""

from appliance.technician.calibration import require_valid_calibration
from appliance.technician.errors import DeviceNotReady, TechnicianError
from appliance.technician.readiness import readiness_problems
from appliance.technician.selftest_results import latest_selftest, require_passed_selftest

__all__ = [
    "DeviceNotReady",
    "TechnicianError",
    "latest_selftest",
    "readiness_problems",
    "require_passed_selftest",
    "require_valid_calibration",
]
