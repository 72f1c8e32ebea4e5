"""LOP measurement inside the controller: a controlled inflation watched beat by beat.

The cuff is emptied, filled quickly to a start pressure well below any arterial pressure, then
inflated along a ramp slow enough for about three beats per 10 mmHg (the rate follows the heart
rate once it is known). The estimator runs on the growing trace about once a second; inflation
stops as soon as it confirms occlusion, so the limb is squeezed no higher and no longer than
needed. `repeats=2` measures twice with a rest between and flags a spread over 15 mmHg.

On the device the estimator runs in a worker thread so the control loop never waits for it; in
simulated time it runs inline (simulated time does not pass while it computes).
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from appliance.controller.filters import PressureFilter
from appliance.controller.regulator import Actuation
from appliance.lop.estimator import estimate_lop
from appliance.lop.result import LopEstimate
from hardware.clock import SimClock
from hardware.ports import Sample

SPREAD_FLAG_MMHG = 15.0


@dataclass(frozen=True)
class LopSettings:
    start_mmHg: dict[str, float]
    max_search_mmHg: float = 290.0
    min_rate_mmHg_s: float = 3.0
    max_rate_mmHg_s: float = 6.0
    beats_per_10_mmHg: float = 3.0
    estimate_every_s: float = 1.0
    time_limit_s: float = 90.0
    empty_mmHg: float = 4.0
    rest_s: float = 60.0


DEFAULT_SETTINGS = LopSettings(start_mmHg={"arm": 50.0, "leg": 70.0})


class LopProcedure:
    """One or two LOP measurements; `step` proposes actuation each tick, None when done."""

    def __init__(
        self,
        args: dict[str, Any],
        clock: Any,
        settings: LopSettings = DEFAULT_SETTINGS,
        absolute_cap_mmHg: float = 300.0,
    ) -> None:
        self.args = args
        self.settings = settings
        self.ceiling_mmHg = min(absolute_cap_mmHg, settings.max_search_mmHg + 10.0)
        self.repeats = int(args.get("repeats", 1))
        self.rest_s = float(args.get("rest_s", settings.rest_s))
        self.inline = isinstance(clock, SimClock)
        self._pool: ThreadPoolExecutor | None = None if self.inline else ThreadPoolExecutor(1)
        self.readings: list[dict[str, Any]] = []
        self._phase = "empty"
        self._phase_t: float | None = None
        self._begin_measurement()

    def _begin_measurement(self) -> None:
        self._t: list[float] = []
        self._p: list[float] = []
        self._started: float | None = None
        self._ramp_from: tuple[float, float] | None = None
        self._rate = self.settings.max_rate_mmHg_s
        self._integral = 0.5
        self._last_estimate_t = -math.inf
        self._pending: Future[LopEstimate] | None = None
        self._estimate: LopEstimate | None = None
        self._max_p = 0.0

    # ---- the tick ----------------------------------------------------------------------------
    def step(self, now: float, f: PressureFilter, sample: Sample | None) -> Actuation | None:
        p = f.value or 0.0
        if self._phase_t is None:
            self._phase_t = now
        if self._phase == "empty":
            if p <= self.settings.empty_mmHg:
                self._enter("fill", now)
            return Actuation(0.0, True)
        if self._phase == "rest":
            if now - self._phase_t >= self.rest_s:
                self._begin_measurement()
                self._enter("empty", now)
            return Actuation(0.0, True)
        if self._started is None:
            self._started = now
        if sample is not None:
            self._t.append(sample.t)
            self._p.append(sample.mmHg)
            self._max_p = max(self._max_p, sample.mmHg)
        finished = self._watch(now)
        if finished is not None:
            return self._finish(now, finished)
        if self._phase == "fill":
            if p >= self.settings.start_mmHg.get(self.args["limb"], 60.0):
                self._ramp_from = (now, p)
                self._enter("ramp", now)
            return Actuation(1.0, False)
        return Actuation(self._ramp_duty(now, f), False)

    def _enter(self, phase: str, now: float) -> None:
        self._phase = phase
        self._phase_t = now

    def _ramp_duty(self, now: float, f: PressureFilter) -> float:
        """Track a pressure ramp with feed-forward duty that learns the pump (PI, clamped)."""
        assert self._ramp_from is not None
        t0, p0 = self._ramp_from
        setpoint = p0 + self._rate * (now - t0)
        error = setpoint - (f.value or 0.0)
        self._integral = min(1.0, max(0.3, self._integral + 0.02 * error * 0.002))
        return min(1.0, max(0.0, self._integral + 0.08 * error))

    def _watch(self, now: float) -> str | None:
        """Estimate on the growing trace; return why the measurement ends, if it does."""
        s = self.settings
        if self._pending is not None and self._pending.done():
            self._estimate = self._pending.result()
            self._pending = None
        if self._phase == "ramp" and now - self._last_estimate_t >= s.estimate_every_s:
            self._last_estimate_t = now
            t = np.asarray(self._t)
            p = np.asarray(self._p)
            if self.inline:
                self._estimate = estimate_lop(t, p)
            elif self._pending is None and self._pool is not None:
                self._pending = self._pool.submit(estimate_lop, t, p)
            hr = self._estimate.heart_rate_bpm if self._estimate else None
            if hr:
                rate = s.beats_per_10_mmHg and 10.0 * (hr / 60.0) / s.beats_per_10_mmHg
                self._rate = min(s.max_rate_mmHg_s, max(s.min_rate_mmHg_s, rate))
        if self._estimate is not None and self._estimate.occlusion_confirmed:
            return "confirmed"
        if self._max_p >= s.max_search_mmHg:
            return "ceiling"
        if self._started is not None and now - self._started >= s.time_limit_s:
            return "time"
        return None

    def _finish(self, now: float, why: str) -> Actuation | None:
        estimate = self._estimate
        if why != "confirmed" and len(self._t) > 10:
            estimate = estimate_lop(np.asarray(self._t), np.asarray(self._p))
        reason = None if estimate is None else estimate.reason
        lop = None if estimate is None else estimate.lop_mmHg
        if why == "ceiling" and not (estimate and estimate.occlusion_confirmed):
            lop = None
            reason = f"pressure reached {self._max_p:.0f} mmHg without confirming occlusion"
        elif why == "time" and lop is None:
            reason = reason or "measurement took too long"
        assert self._started is not None
        self.readings.append(
            {
                "lop_mmHg": None if lop is None else round(lop, 1),
                "confidence": 0.0 if estimate is None else round(estimate.confidence, 2),
                "reason": reason,
                "heart_rate_bpm": None
                if estimate is None or estimate.heart_rate_bpm is None
                else round(estimate.heart_rate_bpm, 1),
                "duration_s": round(now - self._started, 2),
                "max_pressure_mmHg": round(self._max_p, 1),
            }
        )
        if len(self.readings) < self.repeats and lop is not None:
            self._enter("rest", now)
            return Actuation(0.0, True)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        return None

    def result(self) -> dict[str, Any]:
        values = [r["lop_mmHg"] for r in self.readings if r["lop_mmHg"] is not None]
        first = self.readings[0] if self.readings else {}
        spread = max(values) - min(values) if len(values) > 1 else None
        failed = next((r["reason"] for r in self.readings if r["lop_mmHg"] is None), None)
        return {
            "lop_mmHg": round(sum(values) / len(values), 1) if values and not failed else None,
            "readings": self.readings,
            "spread_mmHg": None if spread is None else round(spread, 1),
            "spread_flag": spread is not None and spread > SPREAD_FLAG_MMHG,
            "reason": failed,
            "confidence": first.get("confidence", 0.0),
            "heart_rate_bpm": first.get("heart_rate_bpm"),
            "duration_s": first.get("duration_s"),
            "max_pressure_mmHg": max((r["max_pressure_mmHg"] for r in self.readings), default=0.0),
            "limb": self.args["limb"],
            "side": self.args["side"],
            "posture": self.args["posture"],
            "cuff": self.args["cuff"],
        }


def lop_procedure_factory(args: dict[str, Any], controller: Any) -> LopProcedure:
    return LopProcedure(
        args, controller.clock, absolute_cap_mmHg=controller.limits.absolute_cap_mmHg
    )
