"""The appliance's systemd units: stop, start, and decide whether they came up healthy."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from appliance.technician.errors import TechnicianError
from appliance.technician.progress import Progress

CONTROLLER_UNIT = "bfr-controller.service"
WEB_UNIT = "bfr-web.service"
KIOSK_UNIT = "bfr-kiosk.service"
# Stopped screen first (nobody can start a session), controller last (it vents the cuff on the
# way down); started in the reverse order, as their After= lines expect.
STOP_ORDER = (KIOSK_UNIT, WEB_UNIT, CONTROLLER_UNIT)
START_ORDER = tuple(reversed(STOP_ORDER))
DEFAULT_HEALTH_URL = "http://127.0.0.1:8080/healthz"

Runner = Callable[..., subprocess.CompletedProcess]


class Systemctl:
    """`systemctl` as a small object, so tests can hand in a fake one."""

    def __init__(self, run: Runner = subprocess.run, binary: str = "systemctl") -> None:
        self._run = run
        self.binary = binary

    def available(self) -> bool:
        return shutil.which(self.binary) is not None

    def stop(self, units: Sequence[str]) -> None:
        self._call("stop", units)

    def start(self, units: Sequence[str]) -> None:
        self._call("start", units)

    def show(self, unit: str, properties: Sequence[str]) -> dict[str, str]:
        done = self._run(
            [self.binary, "show", "-p", ",".join(properties), unit],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode != 0:
            return {}
        out = {}
        for line in done.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                out[key] = value
        return out

    def _call(self, verb: str, units: Sequence[str]) -> None:
        try:
            done = self._run(
                [self.binary, verb, *units], capture_output=True, text=True, timeout=120
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TechnicianError(f"systemctl {verb} failed: {exc}", "run with sudo") from exc
        if done.returncode != 0:
            raise TechnicianError(
                f"systemctl {verb} {' '.join(units)} failed: {done.stderr.strip()}",
                "see `bfr logs`",
            )


def http_ok(url: str, timeout_s: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class HealthCheck:
    """After a start: the controller active (READY=1 sent from its loop) and answering on its
    socket, the web UI answering its health URL, and neither restarting during `settle_s`."""

    systemctl: Systemctl
    health_url: str = DEFAULT_HEALTH_URL
    controller_answers: Callable[[], bool] = lambda: True
    http_check: Callable[[str], bool] = http_ok
    ready_timeout_s: float = 90.0
    settle_s: float = 5.0
    units: tuple[str, ...] = (CONTROLLER_UNIT, WEB_UNIT)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = field(default=time.monotonic)

    def verify(self, progress: Progress) -> list[str]:
        """Problems found; empty when the release came up healthy."""
        deadline = self.clock() + self.ready_timeout_s
        restarts: dict[str, str] = {}
        for unit in self.units:
            progress.note(f"waiting for {unit}")
            problem = self._wait_active(unit, deadline)
            if problem:
                return [problem]
            restarts[unit] = self.systemctl.show(unit, ["NRestarts"]).get("NRestarts", "")
        progress.note("asking the controller for its status")
        if not self._until(self.controller_answers, deadline):
            return [f"the controller does not answer on its socket ({CONTROLLER_UNIT})"]
        progress.note(f"checking {self.health_url}")
        if not self._until(lambda: self.http_check(self.health_url), deadline):
            return [f"the web UI does not answer {self.health_url} with 200"]
        progress.note(f"watching for restarts for {self.settle_s:g} s")
        self.sleep(self.settle_s)
        for unit in self.units:
            now = self.systemctl.show(unit, ["ActiveState", "NRestarts"])
            if now.get("ActiveState") != "active" or now.get("NRestarts", "") != restarts[unit]:
                return [f"{unit} restarted or stopped after it came up"]
        return []

    def _wait_active(self, unit: str, deadline: float) -> str | None:
        last: dict[str, str] = {}
        while self.clock() < deadline:
            last = self.systemctl.show(unit, ["ActiveState", "SubState", "Result"])
            state = last.get("ActiveState")
            if state == "active" and last.get("SubState") == "running":
                return None
            if state == "failed":
                return f"{unit} failed to start ({last.get('Result', 'unknown')})"
            self.sleep(0.5)
        return f"{unit} not ready after {self.ready_timeout_s:g} s ({last or 'no state'})"

    def _until(self, probe: Callable[[], bool], deadline: float) -> bool:
        while True:
            if probe():
                return True
            if self.clock() >= deadline:
                return False
            self.sleep(0.5)
