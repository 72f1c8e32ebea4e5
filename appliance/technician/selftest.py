"""The self-test as a controller Procedure: sensor, valve, pump, leak, pump at low duty, pump start.

Surgical tourniquets test themselves at power-on and on demand (Zimmer ATS manuals); this is that
test for the BFR cuff. The controller runs it tick by tick in its SELFTEST state, so the safety
supervisor keeps watching: a dead pump (PUMP_NO_RISE), a stuck valve (VALVE_STUCK) or a failing
sensor (SENSOR_*) latch a FAULT, which ends the procedure and is itself the evidence for the
failed check. The stop button needs a person and is tested by `bfr selftest` after this.

Limits (documented in docs/technician.md), measured on the simulated arm and thigh cuffs:
- sensor at zero: vented cuff reads within +-5 mmHg; noise present (at least 3 distinct ADC codes
  in 2 s) but below 2 mmHg standard deviation;
- valve: from 40 mmHg the open valve empties the cuff below 10 mmHg within 5 s (healthy cuffs:
  0.2-2 s);
- pump: rises at least 8 mmHg/s between 40 % and 93 % of the leak-test pressure (the BOM's pump:
  thigh cuffs 43-81 mmHg/s, arm cuffs 146-292) and reaches it within 45 s;
- leak: at 150 mmHg with the valve closed and the pump off, after 2 s settling, the pressure
  drops less than 5 mmHg in 10 s (1 s averages at both ends, so the pulse does not count);
- pump at low duty: let down to 85 % of the leak-test pressure (room under the ceiling for a
  strong pump's coasting), the pump run at the nominal dead zone plus PumpRise.DEAD_ZONE_SPREAD
  plus 0.03 lifts the cuff at least half as fast as the supervisor counts on there
  (`counted_rise_per_s`, from the pump check's rate). A pump that needs more drive than that to
  move air (worn, or a supply that sags) passes the full-duty checks, then faults PUMP_NO_RISE
  while holding a patient's cuff at a low duty;
- pump start: let down to 40 % of the leak-test pressure and sealed for 0.5 s, the pump
  restarted at full duty reaches 93 % of it at most 125 ms later than the running pump took over
  the same pressures (`appliance/technician/pump_start.py`). A slower motor is what a regulator
  tuned on the BOM's cannot make up on a thigh (docs/regulation.md).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from appliance.controller.filters import PressureFilter
from appliance.controller.regulator import Actuation
from appliance.controller.watches import PumpRise, counted_rise_per_s
from appliance.pump_model import dead_zone_duty
from appliance.technician.pump_start import lost_flow_s
from hardware.ports import Sample

# The controller measures the first six on the test cylinder; a person confirms the last two.
CHECKS = (
    "sensor_zero",
    "sensor_noise",
    "valve",
    "pump",
    "leak",
    "pump_low_duty",
    "pump_start",
    "stop_button",
    "buzzer",
)
MANUAL_CHECKS = ("stop_button", "buzzer")
DEVICE_CHECKS = tuple(name for name in CHECKS if name not in MANUAL_CHECKS)
VENT = Actuation(0.0, True)
SEAL = Actuation(0.0, False)
PUMP = Actuation(1.0, False)


@dataclass(frozen=True)
class SelftestLimits:
    zero_settle_s: float = 1.0
    zero_window_s: float = 2.0
    zero_tolerance_mmHg: float = 5.0
    min_distinct_codes: int = 3
    max_noise_mmHg: float = 2.0
    valve_test_mmHg: float = 40.0
    valve_empty_mmHg: float = 10.0
    valve_empty_s: float = 5.0
    pump_rate_from: float = 0.40
    pump_rate_to: float = 0.93
    pump_min_rate_mmHg_s: float = 8.0
    pump_timeout_s: float = 45.0
    leak_test_mmHg: float = 150.0
    leak_settle_s: float = 2.0
    leak_hold_s: float = 10.0
    leak_average_s: float = 1.0
    leak_max_drop_mmHg: float = 5.0
    # Duty over the nominal dead zone + DEAD_ZONE_SPREAD: just over the least the supervisor
    # counts on, since it is a pump's dead zone, not its strength, that fakes a dead pump.
    low_duty_over_spread: float = 0.03
    low_duty_from: float = 0.85  # of the leak-test pressure
    low_duty_spin_up_s: float = 0.3  # six of the BOM motor's time constants
    low_duty_moving_mmHg: float = 3.0  # or the pump has lifted the cuff this much already
    low_duty_rise_mmHg: float = 4.0  # timed from the end of the spin-up
    low_duty_max_s: float = 2.5  # with the spin-up, under the supervisor's 4 s no-rise window
    low_duty_min_pct: float = 50.0  # the supervisor's DUE_SHARE
    pump_start_settle_s: float = 0.5
    pump_start_level_s: float = 0.25  # the end of the settling: the level it restarts from
    pump_start_spare_s: float = 1.0  # waited beyond the running pump's climb before failing
    pump_start_max_delay_ms: float = 125.0


# What each check measures and how it is judged (the limit's value comes from SelftestLimits).
RULES = {
    "sensor_zero": ("mmHg", "|vented reading| <= limit"),
    "sensor_noise": ("mmHg SD", "noise <= limit, at least 3 distinct ADC codes"),
    "valve": ("s", "time to empty <= limit"),
    "pump": ("mmHg/s", "rise rate >= limit"),
    "leak": ("mmHg/10 s", "pressure drop < limit"),
    "pump_low_duty": ("% of due", "rise at low duty >= limit % of the supervisor's"),
    "pump_start": ("ms", "flow lost at start <= limit"),
    "stop_button": ("", "press seen by the controller"),
    "buzzer": ("", "a burst of five beeps heard"),
}


@dataclass
class CheckResult:
    """One line of the self-test: the measured figure against its limit."""

    name: str
    status: str  # passed | failed | not_tested | not_run
    figure: float | None
    limit: float | None
    message: str

    @property
    def passed(self) -> bool | None:
        return {"passed": True, "failed": False}.get(self.status)

    def to_dict(self) -> dict[str, Any]:
        unit, rule = RULES[self.name]
        return {
            "name": self.name,
            "status": self.status,
            "passed": self.passed,
            "figure": None if self.figure is None else round(self.figure, 2) + 0.0,  # no -0
            "limit": self.limit,
            "unit": unit,
            "rule": rule,
            "message": self.message,
        }


def judged(name: str, ok: bool, figure: float | None, limit: float, message: str) -> CheckResult:
    return CheckResult(name, "passed" if ok else "failed", figure, limit, message)


def not_done(name: str, status: str, limit: float | None, message: str) -> CheckResult:
    """A check that was skipped (`not_tested`) or never reached (`not_run`)."""
    return CheckResult(name, status, None, limit, message)


@dataclass
class _Phase:
    name: str
    started: float
    marks: dict[str, float] = field(default_factory=dict)


class SelftestProcedure:
    """Proposes actuation each tick; None when done. Results in `result()`."""

    def __init__(self, limits: SelftestLimits, controller: Any) -> None:
        self.limits = limits
        self.controller = controller
        ceiling = controller.session.max_target(controller.limits)
        self.leak_mmHg = min(limits.leak_test_mmHg, ceiling)
        # The supervisor faults above this while the test runs: the same margin as a session's.
        self.ceiling_mmHg = min(
            controller.limits.absolute_cap_mmHg,
            self.leak_mmHg + controller.limits.ceiling_margin_mmHg,
        )
        self.checks: list[CheckResult] = []
        self.phase: _Phase | None = None
        self.t0: float | None = None
        self.t_end: float | None = None
        self.finished = False
        self._zero: list[tuple[float, int]] = []
        self._hold: list[tuple[float, float]] = []
        self._running: list[tuple[float, float]] = []  # the pump check's climb, raw samples
        self._level: list[float] = []
        self._rate = 0.0  # mmHg/s, the pump check's figure
        self._restart: list[tuple[float, float]] = []

    # ---- the Procedure protocol ----------------------------------------------------------
    def step(self, now: float, f: PressureFilter, sample: Sample | None) -> Actuation | None:
        if self.finished:
            return None
        if self.phase is None:
            self.t0 = now
            self._enter("sensor_zero", now)
        assert self.phase is not None
        p = f.value if f.value is not None else 0.0
        act = getattr(self, f"_{self.phase.name}")(now, now - self.phase.started, p, sample)
        if act is None:
            self.t_end = now
        return act

    def interrupted(self, why: str) -> dict[str, Any] | None:
        """Its checks so far are already published as they happen (`_publish`); this adds why
        it ended, so `bfr selftest` can tell a cancelled test from a failed check."""
        published = self.controller.last_selftest
        if not published or published.get("complete", True):
            return None
        return published | {"interrupted": why}

    def result(self) -> dict[str, Any]:
        return {
            "complete": True,
            "running": None,
            "phase": None,
            "passed": all(c.passed for c in self.checks),
            "leak_test_mmHg": self.leak_mmHg,
            "duration_s": round((self.t_end or 0.0) - (self.t0 or 0.0), 1),
            "checks": [c.to_dict() for c in self.checks],
        }

    # ---- phases: each gets (now, seconds in phase, filtered mmHg, fresh sample) ------------
    def _sensor_zero(self, now: float, t: float, p: float, s: Sample | None) -> Actuation | None:
        lim = self.limits
        if t >= lim.zero_settle_s and s is not None:
            self._zero.append((s.mmHg, s.code))
        if t < lim.zero_settle_s + lim.zero_window_s:
            return VENT
        if len(self._zero) < 10:
            message = "no readings from the pressure sensor: check its cable and the ADC board"
            self._judge("sensor_zero", False, None, lim.zero_tolerance_mmHg, message)
            return self._finish()
        values = [v for v, _ in self._zero]
        offset = statistics.fmean(values)
        zero_ok = abs(offset) <= lim.zero_tolerance_mmHg
        if zero_ok:
            message = "the vented cuff reads zero"
        else:
            message = (
                f"the vented cuff reads {offset:+.1f} mmHg: is it really empty? If so the "
                "transducer has drifted: calibrate it (`bfr calibrate`)"
            )
        self._judge("sensor_zero", zero_ok, offset, lim.zero_tolerance_mmHg, message)
        noise = statistics.pstdev(values)
        codes = len({c for _, c in self._zero})
        alive = codes >= lim.min_distinct_codes and noise <= lim.max_noise_mmHg
        if codes < lim.min_distinct_codes:
            message = f"only {codes} distinct ADC codes in {lim.zero_window_s:g} s: sensor frozen"
        elif not alive:
            message = f"noise {noise:.2f} mmHg is too high: check the sensor wiring and supply"
        else:
            message = f"live signal ({codes} distinct ADC codes)"
        self._judge("sensor_noise", alive, noise, lim.max_noise_mmHg, message)
        if not (zero_ok and alive):
            return self._finish()  # readings cannot be trusted: do not pressurise
        self._enter("valve_fill", now)
        return PUMP

    def _valve_fill(self, now: float, t: float, p: float, s: Sample | None) -> Actuation | None:
        lim = self.limits
        if p >= lim.valve_test_mmHg:
            self._enter("valve", now)
            return VENT
        if t > lim.pump_timeout_s:
            return self._pump_timeout(p, lim.valve_test_mmHg)
        return PUMP

    def _valve(self, now: float, t: float, p: float, s: Sample | None) -> Actuation | None:
        lim = self.limits
        if p < lim.valve_empty_mmHg:
            message = (
                f"emptied from {lim.valve_test_mmHg:g} to {lim.valve_empty_mmHg:g} mmHg "
                f"in {t:.1f} s"
            )
            self._judge("valve", True, t, lim.valve_empty_s, message)
            self._enter("pump", now)
            return PUMP
        return self._venting("valve", t, p, lim.valve_empty_s)

    def _pump(self, now: float, t: float, p: float, s: Sample | None) -> Actuation | None:
        lim = self.limits
        assert self.phase is not None
        marks = self.phase.marks
        for key, frac in (("from", lim.pump_rate_from), ("to", lim.pump_rate_to)):
            if key not in marks and p >= frac * self.leak_mmHg:
                marks[key] = now
        if s is not None and s.mmHg >= 0.5 * lim.pump_rate_from * self.leak_mmHg:
            self._running.append((s.t, s.mmHg))
        if p >= self.leak_mmHg:
            span = (lim.pump_rate_to - lim.pump_rate_from) * self.leak_mmHg
            rate = span / max(marks["to"] - marks["from"], 1e-3)
            ok = rate >= lim.pump_min_rate_mmHg_s
            self._rate = rate
            if ok:
                message = f"reached {self.leak_mmHg:g} mmHg in {t:.1f} s"
            else:
                message = (
                    f"the pump is weak ({rate:.1f} mmHg/s): check the pump, its supply and the "
                    "hose for kinks"
                )
            self._judge("pump", ok, rate, lim.pump_min_rate_mmHg_s, message)
            if not ok:
                return self._finish()
            self._enter("leak_settle", now)
            return SEAL
        if t > lim.pump_timeout_s:
            return self._pump_timeout(p, self.leak_mmHg)
        return PUMP

    def _leak_settle(self, now: float, t: float, p: float, s: Sample | None) -> Actuation | None:
        if t >= self.limits.leak_settle_s:
            self._enter("leak", now)
        return SEAL

    def _leak(self, now: float, t: float, p: float, s: Sample | None) -> Actuation | None:
        lim = self.limits
        self._hold.append((t, p))
        if t < lim.leak_hold_s:
            return SEAL
        first = [v for tt, v in self._hold if tt < lim.leak_average_s]
        last = [v for tt, v in self._hold if tt > lim.leak_hold_s - lim.leak_average_s]
        drop = statistics.fmean(first) - statistics.fmean(last)
        ok = drop < lim.leak_max_drop_mmHg
        if ok:
            message = f"sealed at {self.leak_mmHg:g} mmHg"
        else:
            message = (
                f"the cuff lost {drop:.1f} mmHg in {lim.leak_hold_s:g} s: check the bladder, "
                "the hose and its connectors; replace the cuff if it still leaks"
            )
        self._judge("leak", ok, drop, lim.leak_max_drop_mmHg, message)
        if not ok:
            return self._finish()
        self._enter("low_vent", now)
        return VENT

    def _low_vent(self, now: float, t: float, p: float, s: Sample | None) -> Actuation | None:
        lim = self.limits
        if s is not None and s.mmHg <= lim.low_duty_from * self.leak_mmHg:  # the filter lags
            self._enter("pump_low_duty", now)
            assert self.phase is not None
            self.phase.marks["lowest"] = p
            return self._low_duty_at(p)
        return self._venting("pump_low_duty", t, p, lim.low_duty_min_pct)

    def _pump_low_duty(self, now: float, t: float, p: float, s: Sample | None) -> Actuation | None:
        lim = self.limits
        assert self.phase is not None
        marks = self.phase.marks
        if "t" not in marks:
            # The filtered reading still falls a little after the valve shut.
            marks["lowest"] = min(marks["lowest"], p)
            moving = p >= marks["lowest"] + lim.low_duty_moving_mmHg
            if t < lim.low_duty_spin_up_s and not moving:
                return self._low_duty_at(p)
            marks.update(t=now, mmHg=p, duty=self._low_duty_at(p).pump_duty)
        rise, elapsed = p - marks["mmHg"], now - marks["t"]
        if rise < lim.low_duty_rise_mmHg and elapsed < lim.low_duty_max_s:
            return self._low_duty_at(p)
        rate = max(0.0, rise) / max(elapsed, 1e-3)
        at_mmHg = 0.5 * (lim.pump_rate_from + lim.pump_rate_to) * self.leak_mmHg
        due = counted_rise_per_s(self._rate, at_mmHg, marks["duty"], marks["mmHg"])
        pct = 100.0 * rate / due if due > 0.0 else 0.0
        ok = pct >= lim.low_duty_min_pct
        duty = f"at {marks['duty']:.0%} duty"
        if ok:
            message = f"{duty} the pump gives {pct:.0f} % of the rise the supervisor counts on"
        else:
            message = (
                f"{duty} the pump lifts the cuff {rate:.1f} mmHg/s, {pct:.0f} % of the "
                f"{due:.1f} mmHg/s the safety supervisor counts on: it needs more drive than "
                "the BOM's pump to move air (worn diaphragm or valves, a sagging supply) and "
                "would stop a session with PUMP_NO_RISE while holding; replace the pump"
            )
        self._judge("pump_low_duty", ok, pct, lim.low_duty_min_pct, message)
        if not ok:
            return self._finish()
        self._enter("start_vent", now)
        return VENT

    def _low_duty_at(self, p: float) -> Actuation:
        """The same small margin over the duty the supervisor counts on, as the cuff rises."""
        spread = PumpRise.DEAD_ZONE_SPREAD + self.limits.low_duty_over_spread
        return Actuation(min(1.0, dead_zone_duty(p) + spread), False)

    def _start_vent(self, now: float, t: float, p: float, s: Sample | None) -> Actuation | None:
        lim = self.limits
        # On the raw reading: a small cuff's fast dump outruns the filter, and a cuff let down
        # under the running climb's first samples (half this level) has nothing to compare with.
        if s is not None and s.mmHg <= lim.pump_rate_from * self.leak_mmHg:
            self._enter("start_settle", now)
            return SEAL
        return self._venting("pump_start", t, p, lim.pump_start_max_delay_ms)

    def _start_settle(self, now: float, t: float, p: float, s: Sample | None) -> Actuation | None:
        lim = self.limits
        if s is not None and t >= lim.pump_start_settle_s - lim.pump_start_level_s:
            self._level.append(s.mmHg)
        if t < lim.pump_start_settle_s:
            return SEAL
        self._enter("start", now)
        return PUMP

    def _start(self, now: float, t: float, p: float, s: Sample | None) -> Actuation | None:
        lim = self.limits
        assert self.phase is not None
        up_to = lim.pump_rate_to * self.leak_mmHg
        if s is not None:
            self._restart.append((s.t, s.mmHg))
        running_s = (lim.pump_rate_to - lim.pump_rate_from) * self.leak_mmHg / self._rate
        climbed = s is not None and s.mmHg >= up_to
        if not climbed and t < running_s + lim.pump_start_spare_s:
            return PUMP
        level = statistics.fmean(self._level) if self._level else p
        lost = lost_flow_s(self._running, self._restart, self.phase.started, level, up_to)
        limit = lim.pump_start_max_delay_ms
        if lost is None:
            message = (
                f"restarted from {level:.0f} mmHg, the pump did not reach {up_to:.0f} mmHg "
                f"within {t:.1f} s: check the pump's supply and its driver"
            )
            self._judge("pump_start", False, None, limit, message)
            return self._finish()
        ms = lost * 1000.0
        ok = ms <= limit
        if ok:
            message = f"loses {ms:.0f} ms of flow at each start"
        else:
            message = (
                f"the pump loses {ms:.0f} ms of flow each time it starts: the motor is worn or "
                "not the BOM's; replace the pump before the next session"
            )
        self._judge("pump_start", ok, ms, limit, message)
        return self._finish()

    # ---- bookkeeping ---------------------------------------------------------------------
    def _pump_timeout(self, p: float, goal: float) -> None:
        lim = self.limits
        message = (
            f"only {p:.0f} of {goal:g} mmHg after {lim.pump_timeout_s:g} s: check that the cuff "
            "is connected and wrapped, the hose, and the pump"
        )
        self._judge("pump", False, None, lim.pump_min_rate_mmHg_s, message)
        return self._finish()

    def _venting(self, name: str, t: float, p: float, limit: float) -> Actuation | None:
        """Keep the valve open; after valve_empty_s still above the level, `name` fails."""
        if t > self.limits.valve_empty_s:
            return self._valve_stuck(name, p, limit)
        return VENT

    def _valve_stuck(self, name: str, p: float, limit: float) -> None:
        message = (
            f"the open valve left {p:.0f} mmHg after {self.limits.valve_empty_s:g} s: valve stuck "
            "or exhaust blocked; repair before any session"
        )
        self._judge(name, False, None, limit, message)
        return self._finish()

    def _judge(self, name: str, ok: bool, figure: float | None, limit: float, message: str) -> None:
        self.checks.append(judged(name, ok, figure, limit, message))

    def _enter(self, name: str, now: float) -> None:
        self.phase = _Phase(name, now)
        self._publish()

    def _finish(self) -> None:
        self.finished = True
        return None

    def _publish(self) -> None:
        # Status is the only channel IPC clients see, and a FAULT drops the procedure without
        # asking for its result: so the checks done so far and the one running are published as
        # they happen, and `bfr selftest` can tell which check a fault interrupted.
        assert self.phase is not None
        running = {
            "valve_fill": "pump",
            "leak_settle": "leak",
            "low_vent": "pump_low_duty",
            "start_vent": "pump_start",
            "start_settle": "pump_start",
            "start": "pump_start",
        }.get(self.phase.name)
        self.controller.last_selftest = {
            "complete": False,
            "running": running or self.phase.name,
            "phase": self.phase.name,
            "leak_test_mmHg": self.leak_mmHg,
            "checks": [c.to_dict() for c in self.checks],
        }


def selftest_procedure_factory(args: dict[str, Any], controller: Any) -> SelftestProcedure:
    """The `procedures["selftest"]` entry of the controller."""
    limits = SelftestLimits()
    if args.get("leak_test_mmHg") is not None:
        limits = SelftestLimits(leak_test_mmHg=float(args["leak_test_mmHg"]))
    return SelftestProcedure(limits, controller)


def limit_of(name: str, limits: SelftestLimits | None = None) -> float | None:
    """The limit a check is judged against, for reports of checks that did not run."""
    lim = limits or SelftestLimits()
    return {
        "sensor_zero": lim.zero_tolerance_mmHg,
        "sensor_noise": lim.max_noise_mmHg,
        "valve": lim.valve_empty_s,
        "pump": lim.pump_min_rate_mmHg_s,
        "leak": lim.leak_max_drop_mmHg,
        "pump_low_duty": lim.low_duty_min_pct,
        "pump_start": lim.pump_start_max_delay_ms,
    }.get(name)
