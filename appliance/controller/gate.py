"""What the clinic's socket may ask: nothing inflates a cuff on a limb of an appliance not ready.

The web server checks readiness (a valid calibration, a passed and current self-test) before it
starts a session or an LOP measurement. The controller checks again on its own, so a bug in the
web server, or any other process that reaches the clinic's socket, cannot inflate a cuff on a
patient with an uncalibrated transducer or a failed self-test. Technician procedures inflate a
cuff on a test cylinder before those records exist (that is how they are made), so they come in
on a second socket that only root and the controller's own user can open (docs/ipc.md); the
self-test, its buzzer test and setting a calibration are technicians' commands and are refused
here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("bfr.controller")

TREATING = frozenset({"inflate", "measure_lop"})  # put pressure on a limb
# The technician's commands, with the command line that sends them.
TECHNICIAN_ONLY = {
    "selftest": "sudo bfr selftest",
    "set_calibration": "sudo bfr calibrate",
    "sound_test": "sudo bfr selftest",
}

Handler = Callable[[Any], dict[str, Any]]
# The readiness check reads records from the SD card. The controller answers a command within
# 2 s and a client waits 3 s; a check that takes longer than this (a card stalling) refuses the
# command instead, so no client is told a command failed that the loop runs after all.
CHECK_BUDGET_S = 0.5
Problems = Callable[[], list[str]]


class ClinicGate:
    """Sits in front of the controller's command handler on the clinic's socket.

    `problems` lists why the appliance may not treat now (empty: it may); None when nothing is
    checked (the simulated rig on a desk). It is asked on every treating command, not cached, so
    a self-test that fails between two exercises stops the next one.
    """

    def __init__(self, handler: Handler, problems: Problems | None) -> None:
        self.handler = handler
        self.problems = problems

    def __call__(self, message: Any) -> dict[str, Any]:
        name = message.get("cmd") if isinstance(message, dict) else None
        if not isinstance(name, str):
            name = None  # the controller's own validation explains what is wrong
        if name in TECHNICIAN_ONLY:
            return {
                "ok": False,
                "error": f"{name}: a technician's command, accepted only on the technician socket "
                f"(`{TECHNICIAN_ONLY[name]}`)",
            }
        if name in TREATING and self.problems is not None:
            began = time.monotonic()
            problems = self._problems()
            took = time.monotonic() - began
            if took > CHECK_BUDGET_S:
                log.warning("%s refused: the readiness check took %.1f s", name, took)
                return {
                    "ok": False,
                    "error": f"{name}: not done: checking the appliance's records took "
                    f"{took:.1f} s (is the SD card failing?); try again",
                }
            if problems:
                log.warning("%s refused: not ready: %s", name, "; ".join(problems))
                return {
                    "ok": False,
                    "error": f"{name}: the appliance is not ready: {'; '.join(problems)}",
                    "not_ready": problems,
                }
        return self.handler(message)

    def _problems(self) -> list[str]:
        assert self.problems is not None
        try:
            return list(self.problems())
        except Exception as exc:  # noqa: BLE001 - any doubt refuses, never inflates
            return [f"readiness could not be checked: {exc}"]
