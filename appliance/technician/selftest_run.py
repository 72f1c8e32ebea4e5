"""`bfr selftest` on a controller: start the procedure, follow it, then the checks a person makes
(the stop button pressed, the alarm buzzer heard), and report."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from appliance import __version__
from appliance.controller.alarm_sound import TEST
from appliance.technician.errors import TechnicianError
from appliance.technician.link import ControllerLink
from appliance.technician.preflight import require_idle
from appliance.technician.progress import Progress
from appliance.technician.selftest import (
    DEVICE_CHECKS,
    CheckResult,
    judged,
    limit_of,
    not_done,
)

POLL_S = 0.2
RUN_TIMEOUT_S = 180.0
IDLE_TIMEOUT_S = 30.0
BUTTON_WAIT_S = 20.0
RELEASE_WAIT_S = 15.0
BUZZER_LISTEN_S = TEST.burst_s + 0.5  # one burst, five pulses in 1 s
BUZZER_ASKS = 3  # bursts played before a technician who answers neither yes nor no fails it
BUZZER_QUESTION = f"Did the appliance beep {TEST.pulses} times? [y]es / [n]o / [a]gain: "
# Supervisor faults that are evidence against one check, whichever was running.
FAULT_CHECK = {
    "PUMP_NO_RISE": "pump",
    "VALVE_STUCK": "valve",
    "SENSOR_STUCK": "sensor_noise",
    "SENSOR_RANGE": "sensor_zero",
    "SENSOR_READ": "sensor_zero",
}
# Faults that interrupt the test without saying anything about the device.
INTERRUPTIONS = ("STOP_BUTTON", "STOP_UI", "HEARTBEAT_LOST")
# Progress lines for the procedure's phases.
LABELS = {
    "sensor_zero": "sensor: reading the vented cuff",
    "valve_fill": "valve: filling the cuff a little",
    "valve": "valve: emptying the cuff",
    "pump": "pump: filling to the leak-test pressure",
    "leak_settle": "leak test: letting the cuff settle",
    "leak": "leak test: valve closed, pump off",
    "low_vent": "pump at low duty: letting the cuff down a little",
    "pump_low_duty": "pump at low duty: a small rise",
    "start_vent": "pump start: letting the cuff down",
    "start": "pump start: restarting the pump",
}


def run_selftest(
    link: ControllerLink,
    *,
    progress: Progress,
    technician: str,
    leak_test_mmHg: float | None = None,
    button: bool = True,
    buzzer: bool = True,
    reset: bool = False,
    wall: Callable[[], float] = time.time,
    ask: Callable[[str], str] = input,
) -> dict[str, Any]:
    """Run the whole self-test; return the report (see docs/technician.md for its fields)."""
    status = link.status()
    if reset and status.get("state") == "FAULT":
        reply = link.request({"cmd": "reset"})
        if not reply.get("ok"):
            raise TechnicianError(f"reset refused: {reply.get('error')}", "fix the cause first")
        status = link.status()
    require_idle(status, "self-test")
    request: dict[str, Any] = {"cmd": "selftest"}
    if leak_test_mmHg is not None:
        limit = float(status.get("max_target_mmHg") or 0.0)
        if leak_test_mmHg > limit:
            raise TechnicianError(
                f"leak test at {leak_test_mmHg:g} mmHg is above the controller's limit "
                f"{limit:.0f} mmHg",
                "choose a lower --leak-test-mmHg",
            )
        request["leak_test_mmHg"] = leak_test_mmHg
    started = wall()
    reply = link.request(request)
    if not reply.get("ok"):
        raise TechnicianError(f"the controller refused: {reply.get('error')}", "see `bfr status`")
    status = _follow(link, progress)
    published = status.get("last_selftest") or {}
    fault = status.get("fault") if status.get("state") == "FAULT" else None
    if fault in INTERRUPTIONS:
        raise TechnicianError(
            f"the self-test was interrupted ({fault}); the previous result stands",
            "reset the fault and run the self-test again",
        )
    if fault is None and published.get("interrupted"):
        raise TechnicianError(
            f"the self-test was interrupted: {published['interrupted']}; the previous result stands",
            "make sure nothing else uses the appliance, then run the self-test again",
        )
    checks = _device_checks(published, fault, status.get("alarms", []))
    if not button:
        checks.append(not_done("stop_button", "not_tested", None, "skipped (--no-button)"))
    elif status.get("state") != "IDLE":
        checks.append(not_done("stop_button", "not_run", None, "not run: controller in FAULT"))
    else:
        checks.append(_stop_button(link, progress))
    if not buzzer:
        checks.append(not_done("buzzer", "not_tested", None, "skipped (--no-buzzer)"))
    elif link.status().get("state") != "IDLE":
        checks.append(not_done("buzzer", "not_run", None, "not run: controller not IDLE"))
    else:
        checks.append(_buzzer(link, progress, ask))
    passed = all(c.status in ("passed", "not_tested") for c in checks)
    failed = [c for c in checks if c.status == "failed"]
    return {
        "passed": passed,
        "at": dt.datetime.fromtimestamp(round(started), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "at_epoch": round(started, 3),
        "technician": technician,
        "simulated": link.simulated,
        "software_version": __version__,
        "leak_test_mmHg": published.get("leak_test_mmHg"),
        "duration_s": published.get("duration_s"),  # controller time: simulated under --sim
        "fault": fault,
        "checks": [c.to_dict() for c in checks],
        "advice": failed[0].message if failed else "",
    }


def _follow(link: ControllerLink, progress: Progress) -> dict[str, Any]:
    """Poll until the procedure has ended and the cuff is empty (or the controller FAULTed)."""
    phase = None
    waited = 0.0
    status = link.status()
    while status.get("state") == "SELFTEST":
        now_phase = (status.get("last_selftest") or {}).get("phase")
        if now_phase != phase and now_phase in LABELS:
            phase = now_phase
            progress.step(LABELS[phase])
        p = status.get("mmHg")
        if phase is not None and p is not None:
            progress.live(f"{round(p)} mmHg")
        if waited > RUN_TIMEOUT_S:
            link.request({"cmd": "stop"})
            raise TechnicianError(
                f"the self-test did not finish in {RUN_TIMEOUT_S:g} s and was stopped",
                "see `bfr logs --unit bfr-controller`",
            )
        link.wait(POLL_S)
        waited += POLL_S
        status = link.status()
    waited = 0.0
    while status.get("state") == "DEFLATING" and waited < IDLE_TIMEOUT_S:
        link.wait(POLL_S)
        waited += POLL_S
        status = link.status()
    return status


def _device_checks(
    published: dict[str, Any], fault: str | None, alarms: list[dict[str, Any]]
) -> list[CheckResult]:
    """The device checks: as measured, failed by a supervisor fault, or not reached."""
    done = {c["name"]: c for c in published.get("checks", [])}
    interrupted = None
    if fault is not None:
        interrupted = FAULT_CHECK.get(fault)
        if interrupted is None or interrupted in done:  # the evidence is against the running one
            interrupted = published.get("running") or "sensor_zero"
    advice = next((a.get("message", "") for a in alarms if a.get("code") == fault), "")
    out = []
    for name in DEVICE_CHECKS:
        if name in done:
            c = done[name]
            out.append(CheckResult(name, c["status"], c["figure"], c["limit"], c["message"]))
        elif name == interrupted:
            message = f"the safety supervisor stopped the test with {fault}: {advice}".rstrip(": ")
            out.append(judged(name, False, None, limit_of(name) or 0.0, message))
        else:
            out.append(
                not_done(name, "not_run", limit_of(name), "not run: an earlier check failed")
            )
    return out


def _stop_button(link: ControllerLink, progress: Progress) -> CheckResult:
    if link.simulated:
        progress.step("stop button (simulated press)")
        link.press_stop_button()
    else:
        progress.step(f"stop button: press and release the STOP button now ({BUTTON_WAIT_S:g} s)")
    waited = 0.0
    seen = False
    while waited <= BUTTON_WAIT_S:
        status = link.status()
        codes = {a.get("code") for a in status.get("alarms", [])} | {status.get("fault")}
        if "STOP_BUTTON" in codes:
            seen = True
            break
        progress.live(f"waiting for the press: {BUTTON_WAIT_S - waited:.0f} s left")
        link.wait(POLL_S)
        waited += POLL_S
    if not seen:
        return CheckResult(
            "stop_button",
            "failed",
            None,
            None,
            f"no press seen in {BUTTON_WAIT_S:g} s: check the button and its cable, then run "
            "the self-test again",
        )
    progress.note("press seen; the controller stopped")
    waited = 0.0
    while waited <= RELEASE_WAIT_S:
        if link.request({"cmd": "reset"}).get("ok"):
            return CheckResult("stop_button", "passed", None, None, "press seen, reset done")
        progress.live("release the stop button")
        link.wait(POLL_S)
        waited += POLL_S
    return CheckResult(
        "stop_button",
        "failed",
        None,
        None,
        "the button still reads pressed: check it is not jammed and its cable is not shorted",
    )


def _buzzer(link: ControllerLink, progress: Progress, ask: Callable[[str], str]) -> CheckResult:
    """One high-priority burst; the simulated bench counts it, on a device a person hears it."""

    def verdict(status: str, message: str) -> CheckResult:
        return CheckResult("buzzer", status, None, None, message)

    for _ in range(BUZZER_ASKS):
        reply = link.request({"cmd": "sound_test"})
        if not reply.get("ok"):
            return verdict("failed", f"the controller refused: {reply.get('error')}")
        progress.step(f"buzzer: listen for {TEST.pulses} short beeps")
        heard = link.hear_buzzer(BUZZER_LISTEN_S)
        if heard is not None:
            answer = "y" if heard == TEST.pulses else "n"
        else:
            try:
                answer = ask(BUZZER_QUESTION).strip().lower()
            except EOFError:
                return verdict(
                    "failed",
                    "nobody answered (no terminal): run the self-test at a terminal, or with "
                    "--no-buzzer to record it as not tested",
                )
        if answer in ("y", "yes"):
            return verdict("passed", f"{TEST.pulses} beeps heard")
        if answer in ("n", "no"):
            return verdict(
                "failed",
                "no beeps heard: check the buzzer, its transistor and its cable "
                "(hardware/README.md); the controller cannot call staff without it",
            )
    return verdict("failed", f"no yes or no after {BUZZER_ASKS} bursts")
