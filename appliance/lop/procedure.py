"""LOP measurement inside the controller: one controlled inflation watched beat by beat.

Each reading empties the cuff, fills it at full pump duty to a start pressure below any
diastolic pressure under that cuff, then inflates along a smooth ramp: quickly until the
pulsations have passed their peak (about mean arterial pressure), then slowly through the
fade-out to occlusion (see `search`). The estimator runs on the growing trace twice a
second; inflation stops as soon as two successive estimates confirm the same occlusion (see
`confirmation`), so the limb is squeezed no higher and no longer than needed. The supervisor
keeps running underneath and faults at `ceiling_mmHg`.
`repeats=2` measures twice with a rest between and flags a spread over 15 mmHg.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.controller.filters import PressureFilter
from appliance.controller.regulator import Actuation
from appliance.lop.confirmation import Verdict
from appliance.lop.live_estimate import LiveEstimate
from appliance.lop.ramp_control import MAX_LEAD_MMHG, RampTracker, gain_from_fill
from appliance.lop.report import Reading, combine, interrupted
from appliance.lop.result import LopEstimate
from appliance.lop.search import InflationSearch, SearchSettings
from hardware.clock import SimClock
from hardware.ports import Sample

VENT = Actuation(0.0, True)


@dataclass(frozen=True)
class LopSettings:
    """Pressures, rates and limits of the measurement (see docs/lop.md for where they come from)."""

    # Below the lowest diastolic pressure seen through an arm or thigh cuff (about 60 and
    # 90 mmHg), so the rise of the pulsations to their peak is on the record.
    start_mmHg: dict[str, float] = field(default_factory=lambda: {"arm": 45.0, "leg": 75.0})
    # The search stops here; the supervisor's ceiling sits above it with room for a pulse and
    # a knock on the cuff, and everything stays under the 300 mmHg cap.
    max_search_mmHg: float = 290.0
    ceiling_margin_mmHg: float = 10.0
    # The fill ends with a kink the band-pass would ring on; the estimator starts after it.
    record_after_fill_s: float = 1.0
    fill_momentum_s: float = 0.1
    # The pump's full-duty rise is read off the raw samples above this share of the start
    # pressure, where the bladder grips and the pump has spun up.
    fill_rise_from: float = 0.5
    fill_rise_min_s: float = 0.02
    # Each new estimate can end the search, so its cadence is the lag of every decision.
    estimate_every_s: float = 0.5
    # Two successive estimates must read occlusion within this of each other to stop.
    agreement_mmHg: float = 3.0
    # Occlusion is read where the arterial pulsation has fallen to this share of its peak.
    # Lower than the estimator's offline 1/3 (tuned to agree with reference systolic pressure):
    # LOP is where arterial pulsation ends, and a controlled inflation can always go far enough
    # past it to read that low (docs/lop.md, "Which fade-out level").
    arterial_fraction: float = 0.2
    # A safety net only: a measurement ends long before on confirmation or failure.
    time_limit_s: float = 90.0
    empty_mmHg: float = 4.0
    empty_timeout_s: float = 30.0
    fill_timeout_s: float = 45.0
    rest_s: float = 60.0
    # The reading must follow the ramp. A fall this far under the highest it reached (pulses and
    # knocks are a few mmHg) is a hose or the sensing line coming off; the setpoint's lead
    # pinned at its maximum for this long with the reading risen less than `follow_mmHg` is a
    # reading cut off from the cuff (a kinked line) or a pump that stopped. Either way the
    # tracker would pump ever harder into a cuff nobody sees, so the reading ends and vents.
    drop_mmHg: float = 15.0
    follow_s: float = 3.0
    follow_mmHg: float = 3.0
    # A thigh needs more pressure and has a wider fade-out (occlusion 30-70 mmHg above the
    # peak): room for a faster approach.
    search: dict[str, SearchSettings] = field(
        default_factory=lambda: {
            "arm": SearchSettings(),
            "leg": SearchSettings(
                approach_mmHg_per_beat=5.0,
                approach_rate_mmHg_s=(3.75, 7.0),
                coarse_mmHg_per_beat=8.0,
                coarse_rate_mmHg_s=(6.0, 9.0),
            ),
        }
    )


DEFAULT_SETTINGS = LopSettings()

EMPTY, FILL, RAMP, REST = "empty", "fill", "ramp", "rest"


class LopProcedure:
    """One or two LOP readings; `step` proposes actuation each tick and returns None when done."""

    def __init__(
        self,
        args: dict[str, Any],
        clock: Any,
        settings: LopSettings = DEFAULT_SETTINGS,
        absolute_cap_mmHg: float = 300.0,
    ) -> None:
        self.args = args
        self.settings = settings
        self.ceiling_mmHg = min(
            absolute_cap_mmHg, settings.max_search_mmHg + settings.ceiling_margin_mmHg
        )
        self.max_search_mmHg = min(
            settings.max_search_mmHg, self.ceiling_mmHg - settings.ceiling_margin_mmHg
        )
        self.repeats = int(args.get("repeats", 1))
        self.rest_s = float(args.get("rest_s", settings.rest_s))
        self.start_mmHg = settings.start_mmHg.get(args["limb"], min(settings.start_mmHg.values()))
        # Inline only where simulated time waits for it; the simulated appliance that runs in
        # real time (`bfr run --sim`) estimates in a worker process, as the device does.
        self.live = LiveEstimate(
            settings.estimate_every_s,
            inline=isinstance(clock, SimClock) and not clock.realtime,
            arterial_fraction=settings.arterial_fraction,
        )
        self.readings: list[Reading] = []
        self._began: float | None = None
        self._ended: float | None = None
        self._phase = EMPTY
        self._phase_t: float | None = None
        self._new_reading()

    def _new_reading(self) -> None:
        self.live.restart()
        self.search = InflationSearch(self.settings.search.get(self.args["limb"]))
        self._tracker: RampTracker | None = None
        self._reading_began: float | None = None
        self._fill_samples: list[tuple[float, float]] = []
        self._record_from = float("inf")
        self._duty = 0.0
        self._max_p = 0.0
        self._last_verdict: Verdict | None = None
        self._pinned: tuple[float, float] | None = None  # since when, and the reading then

    # ---- the tick ----------------------------------------------------------------------------
    def step(self, now: float, f: PressureFilter, sample: Sample | None) -> Actuation | None:
        if self._began is None:
            self._began = now
        if self._phase_t is None:
            self._phase_t = now
        if self._reading_began is None:
            self._reading_began = now
        p = f.value or 0.0
        if self._phase == REST:
            if now - self._phase_t >= self.rest_s:
                self._new_reading()
                self._enter(EMPTY, now)
            return VENT
        if self._phase == EMPTY:
            if p <= self.settings.empty_mmHg:
                self._enter(FILL, now)
                return Actuation(1.0, False)
            if now - self._phase_t > self.settings.empty_timeout_s:
                return self._fail(now, f"cuff did not empty: still {p:.0f} mmHg")
            return VENT
        self._max_p = max(self._max_p, p)
        if self._phase == FILL:
            if sample is not None and sample.mmHg >= self.settings.fill_rise_from * self.start_mmHg:
                self._fill_samples.append((sample.t, sample.mmHg))
            return self._fill(now, f)
        return self._ramp(now, p, sample)

    def _enter(self, phase: str, now: float) -> None:
        self._phase = phase
        self._phase_t = now

    def _fill(self, now: float, f: PressureFilter) -> Actuation | None:
        s = self.settings
        p = f.value or 0.0
        assert self._phase_t is not None
        # The pump's momentum carries on for a moment: stop on the pressure it is heading for.
        if f.predict(s.fill_momentum_s) >= self.start_mmHg:
            rise, at = self._fill_rise(f)
            self._tracker = RampTracker(now, p, self.search.rate_mmHg_s, gain_from_fill(rise, at))
            self._record_from = now + s.record_after_fill_s
            self._enter(RAMP, now)
            return Actuation(self._tracker.duty(now, p), False)
        if now - self._phase_t > s.fill_timeout_s:
            return self._fail(
                now,
                f"cuff did not fill: {p:.0f} of {self.start_mmHg:.0f} mmHg after "
                f"{s.fill_timeout_s:.0f} s (cuff off the limb or a leaking hose?)",
            )
        return Actuation(1.0, False)

    def _fill_rise(self, f: PressureFilter) -> tuple[float, float]:
        """Full-duty rise (mmHg/s) and the pressure it was seen at: sets the ramp's gain.

        A least-squares line through the raw samples of the fill's second half. A strong pump
        crosses it in a few hundredths of a second: the filtered slope lags that by its window
        and read such a pump 3-4 times too weak, so the ramp's loop ran as many times too hot
        and printed the heartbeat into the pulsations it measures (LOP read 20 mmHg high).
        """
        pts = self._fill_samples
        if len(pts) >= 4 and pts[-1][0] - pts[0][0] >= self.settings.fill_rise_min_s:
            t, mmHg = np.array(pts).T
            slope = float(np.polyfit(t - t[0], mmHg, 1)[0])
            return max(slope, f.slope), float(mmHg.mean())
        return f.slope, f.value or 0.0

    def _ramp(self, now: float, p: float, sample: Sample | None) -> Actuation | None:
        s = self.settings
        assert self._tracker is not None and self._reading_began is not None
        if sample is not None:
            if sample.t >= self._record_from:
                self.live.add(sample.t, sample.mmHg)
            self._duty = self._tracker.duty(now, sample.mmHg)
            lost = self._reading_lost(now, p)
            if lost is not None:
                return self._fail(now, lost)
        try:
            verdict = self.live.poll(now)
        except Exception as error:  # whatever broke, this reading is over
            # A bug in the estimator, or its worker process killed (out of memory): the
            # measurement ends with a reason and the cuff empties; the controller carries on.
            return self._fail(now, f"the estimator failed ({type(error).__name__}: {error})")
        if verdict is not None:
            if self._agrees(verdict):
                return self._succeed(now, verdict.estimate)
            self._last_verdict = verdict
            self.search.update(verdict.estimate)
            self._tracker.set_rate(self.search.rate_mmHg_s)
        if self.search.lost(p):
            return self._fail(
                now,
                f"no occlusion found up to {p:.0f} mmHg, far above the largest pulsations at "
                f"{self.search.peak_mmHg:.0f} mmHg (pulsations too weak or too disturbed)",
            )
        if p >= self.max_search_mmHg:
            return self._fail(
                now,
                f"pressure reached {p:.0f} mmHg without confirming occlusion "
                "(LOP above the measurable range, or pulsations too weak to follow)",
            )
        if now - self._reading_began >= s.time_limit_s:
            return self._fail(
                now,
                f"no confirmed occlusion within {s.time_limit_s:.0f} s (reached {p:.0f} mmHg)",
            )
        return Actuation(self._duty, False)

    def _reading_lost(self, now: float, p: float) -> str | None:
        """Why the reading no longer follows the cuff, or None while it does."""
        s = self.settings
        assert self._tracker is not None
        if p < self._max_p - s.drop_mmHg:
            return (
                f"pressure fell from {self._max_p:.0f} to {p:.0f} mmHg while inflating "
                "(hose or sensing line off?)"
            )
        # Against the filtered reading: the lead is pinned to the raw sample, which is noisy.
        if self._tracker.setpoint - p < MAX_LEAD_MMHG - 2.0:
            self._pinned = None
        elif self._pinned is None:
            self._pinned = (now, p)
        elif now - self._pinned[0] >= s.follow_s and p - self._pinned[1] < s.follow_mmHg:
            return (
                f"pressure stayed at {p:.0f} mmHg for {now - self._pinned[0]:.0f} s while the "
                "pump ran harder (sensing line kinked, or the pump stopped?)"
            )
        return None

    def _agrees(self, verdict: Verdict) -> bool:
        """Stop on two verdicts in a row that both may stop and read the same occlusion.

        Half a second more of inflation is cheap insurance against a reading that one knock
        on the cuff, or one beat more or less, would make or break.
        """
        previous = self._last_verdict
        return bool(
            verdict.stop
            and previous is not None
            and previous.stop
            and previous.estimate.lop_mmHg is not None
            and verdict.estimate.lop_mmHg is not None
            and abs(verdict.estimate.lop_mmHg - previous.estimate.lop_mmHg)
            <= self.settings.agreement_mmHg
        )

    # ---- ending a reading ------------------------------------------------------------------
    def _succeed(self, now: float, estimate: LopEstimate) -> Actuation | None:
        return self._record(now, estimate.lop_mmHg, None, estimate)

    def _fail(self, now: float, why: str) -> Actuation | None:
        estimate = None if self.live.latest is None else self.live.latest.estimate
        # The estimator's own reason says more than "ran out of pressure" when it has one.
        detail = None if estimate is None else estimate.reason
        reason = why if detail is None else f"{why}; last estimate: {detail}"
        return self._record(now, None, reason, estimate)

    def _record(
        self, now: float, lop: float | None, reason: str | None, estimate: LopEstimate | None
    ) -> Actuation | None:
        assert self._reading_began is not None
        heart_rate = self.search.heart_rate_bpm
        if estimate is not None and estimate.heart_rate_bpm is not None:
            heart_rate = estimate.heart_rate_bpm
        self.readings.append(
            Reading(
                lop_mmHg=lop,
                reason=reason,
                confidence=0.0 if estimate is None or lop is None else estimate.confidence,
                heart_rate_bpm=heart_rate,
                duration_s=now - self._reading_began,
                max_pressure_mmHg=self._max_p,
                peak_pulsation_mmHg=None if estimate is None else estimate.peak_pulsation_mmHg,
            )
        )
        self._ended = now
        if lop is not None and len(self.readings) < self.repeats:
            self._enter(REST, now)
            return VENT
        self.live.close()
        return None

    def interrupted(self, why: str) -> dict[str, Any]:
        """A fault ended it: no value, so the console stops waiting and the record says why."""
        self.live.close()  # its estimating process is not needed any more
        return interrupted(self.result(), why)

    def result(self) -> dict[str, Any]:
        total = 0.0 if self._began is None or self._ended is None else self._ended - self._began
        context = {key: self.args.get(key) for key in ("limb", "side", "posture", "cuff")}
        return combine(self.readings, context, total)


def lop_procedure_factory(args: dict[str, Any], controller: Any) -> LopProcedure:
    return LopProcedure(
        args, controller.clock, absolute_cap_mmHg=controller.limits.absolute_cap_mmHg
    )
