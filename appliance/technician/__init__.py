"""Technician operations over SSH: calibration, self-test, status, logs, updates and rollback.

The session start asks this package whether the appliance may treat a patient:
`require_valid_calibration(data_dir, now)` and `require_passed_selftest(data_dir, now)` raise
`DeviceNotReady` with a message for the clinician screen; `latest_selftest(data_dir)` feeds it.
"""

from appliance.technician.calibration import require_valid_calibration
from appliance.technician.errors import DeviceNotReady, TechnicianError
from appliance.technician.selftest_results import latest_selftest, require_passed_selftest

__all__ = [
    "DeviceNotReady",
    "TechnicianError",
    "latest_selftest",
    "require_passed_selftest",
    "require_valid_calibration",
]
