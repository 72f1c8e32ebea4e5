"""Hold the cuff at a pressure with the controller's own regulator and limits, and average it."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from appliance.technician.errors import TechnicianError
from appliance.technician.link import ControllerLink
from appliance.technician.preflight import require_idle
from appliance.technician.progress import Progress

VENTED_BELOW_MMHG = 5.0  # the inflate command's minimum target: anything lower means vented
REACH_TIMEOUT_S = 60.0
# After reaching the target the cuff fabric creeps and the air settles for a few seconds.
SETTLE_S = 3.0
WINDOW_S = 3.0
POLL_S = 0.05
IDLE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class HeldPressure:
    """Averages over one steady window at a target."""

    target_mmHg: float
    nominal_mmHg: float  # the transducer before calibration
    calibrated_mmHg: float  # what the controller regulates on
    spread_mmHg: float  # max - min of the calibrated reading in the window
    true_mmHg: float | None  # the simulator's true pressure (None on a device)


class PressureHold:
    def __init__(self, link: ControllerLink, progress: Progress) -> None:
        self.link = link
        self.progress = progress

    def check_targets(self, targets: list[float]) -> None:
        status = self.link.status()
        require_idle(status, "calibration")
        limit = float(status.get("max_target_mmHg") or 0.0)
        for target in targets:
            if target >= VENTED_BELOW_MMHG and not 20.0 <= target <= limit:
                raise TechnicianError(
                    f"point {target:g} mmHg is outside 20..{limit:.0f} mmHg (0 means vented)",
                    "choose points such as 0,100,200",
                )

    def hold(self, target: float) -> HeldPressure:
        if self.link.status().get("state") != "IDLE":
            # Every point is approached from an empty cuff: the same direction each time (gauges
            # have hysteresis), and the regulator starts from its inflate ramp.
            self.progress.note("emptying the cuff first")
            self.release()
        if target < VENTED_BELOW_MMHG:
            self.progress.note("cuff vented")
        else:
            self._inflate(target)
            self.progress.note(f"settling for {SETTLE_S:g} s")
            self._watch(SETTLE_S)
        self.progress.note(f"measuring for {WINDOW_S:g} s")
        return self._measure(target)

    def release(self) -> None:
        """Deflate and wait until the controller is IDLE again; called on every way out."""
        reply = self.link.request({"cmd": "deflate"})
        if not reply.get("ok"):
            self.progress.warn(f"deflate: {reply.get('error')}")
        self._wait_idle(quiet=True)

    def _inflate(self, target: float) -> None:
        reply = self.link.request({"cmd": "inflate", "target_mmHg": target})
        if not reply.get("ok"):
            raise TechnicianError(
                f"the controller refused to inflate to {target:g} mmHg: {reply.get('error')}",
                "see `bfr status`",
            )
        waited = 0.0
        while waited < REACH_TIMEOUT_S:
            status = self._poll()
            p = status.get("mmHg")
            self.progress.live(f"inflating to {target:g} mmHg: {p if p is not None else '--'}")
            if status.get("state") == "HOLDING" and p is not None and abs(p - target) < 3.0:
                self.progress.note(f"holding {target:g} mmHg")
                return
            waited += POLL_S
        raise TechnicianError(
            f"the cuff did not reach {target:g} mmHg in {REACH_TIMEOUT_S:g} s",
            "check the cuff is wrapped around the test cylinder, the hose and the gauge T-piece "
            "are tight, then run `bfr selftest`",
        )

    def _watch(self, seconds: float) -> list[dict[str, Any]]:
        samples = []
        waited = 0.0
        while waited < seconds - 1e-9:
            samples.append(self._poll())
            waited += POLL_S
        return samples

    def _measure(self, target: float) -> HeldPressure:
        nominal: list[float] = []
        calibrated: list[float] = []
        true: list[float] = []
        waited = 0.0
        while waited < WINDOW_S - 1e-9:
            status = self._poll()
            if status.get("nominal_mmHg") is not None and status.get("mmHg") is not None:
                nominal.append(float(status["nominal_mmHg"]))
                calibrated.append(float(status["mmHg"]))
            gauge = self.link.gauge_mmHg()
            if gauge is not None:
                true.append(gauge)
            waited += POLL_S
        if len(nominal) < 5:
            raise TechnicianError(
                "the controller reports no pressure readings", "run `bfr selftest` to check it"
            )
        return HeldPressure(
            target_mmHg=target,
            nominal_mmHg=statistics.fmean(nominal),
            calibrated_mmHg=statistics.fmean(calibrated),
            spread_mmHg=max(calibrated) - min(calibrated),
            true_mmHg=statistics.fmean(true) if true else None,
        )

    def _poll(self) -> dict[str, Any]:
        self.link.wait(POLL_S)
        status = self.link.status()
        if status.get("state") == "FAULT":
            messages = "; ".join(a.get("message", "") for a in status.get("alarms", []))
            raise TechnicianError(
                f"the controller stopped the hold: {status.get('fault')} ({messages})",
                "fix the cause, reset the fault, then start again",
            )
        return status

    def _wait_idle(self, quiet: bool = False) -> None:
        waited = 0.0
        while waited < IDLE_TIMEOUT_S:
            self.link.wait(POLL_S)
            status = self.link.status()
            if status.get("state") in ("IDLE", "FAULT"):
                return
            if not quiet:
                self.progress.live(f"emptying the cuff: {status.get('mmHg')} mmHg")
            waited += POLL_S
        raise TechnicianError(
            f"the cuff did not empty within {IDLE_TIMEOUT_S:g} s",
            "open the cuff by hand; then run `bfr selftest` (valve check)",
        )
