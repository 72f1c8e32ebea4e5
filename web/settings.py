"""What the web server needs to know: where the controller and the records are, and its timings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class WebSettings:
    """Timings are chosen against the controller's 3 s heartbeat timeout (docs/ui.md)."""

    data_dir: Path
    socket_path: str
    language: str = DEFAULT_LANGUAGE
    # Socket.IO `pressure` rate; the controller publishes at 50 Hz, the screen needs >= 20 Hz.
    pressure_hz: float = 30.0
    # Full `status` is pushed on every change and at least this often.
    status_period_s: float = 1.0
    heartbeat_period_s: float = 0.5
    # A page that has not said "alive" for this long is not a working screen.
    ui_timeout_s: float = 2.0
    # Without a fresh controller snapshot for this long the link is down.
    link_timeout_s: float = 1.0
    console_idle_lock_s: float = 300.0
    pin_max_failures: int = 5
    pin_lockout_s: float = 60.0
    # Sessions and LOP measurements need a valid calibration and a passed self-test on record
    # (`appliance.technician.readiness`); only a simulated rig (`bfr run --sim`) goes without.
    device_checks: bool = True
    # A self-test older than this refuses them too (e.g. 86400 for one every day of use).
    selftest_max_age_s: float | None = None

    def __post_init__(self) -> None:
        if not 20.0 <= self.pressure_hz <= 50.0:
            raise ValueError("pressure_hz: must be 20-50 (the controller streams at most 50 Hz)")
        if not 0.1 <= self.heartbeat_period_s <= 1.0:
            raise ValueError("heartbeat_period_s: must be 0.1-1.0 s (the controller waits 3 s)")
        if not self.heartbeat_period_s < self.ui_timeout_s <= 2.5:
            raise ValueError("ui_timeout_s: must exceed the heartbeat period and stay under 2.5 s")
        if self.selftest_max_age_s is not None and not 0 < self.selftest_max_age_s < 1e9:
            raise ValueError("self-test max age: must be a positive number of hours, or none")
