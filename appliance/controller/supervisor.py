"""Safety supervisor: watches the sensor, the outputs and the clock, independent of the regulator.

It never computes actuation. It reports findings: a fault (the loop deflates and latches) or an
alarm (the loop keeps regulating). It keeps its own view of pressure (median of three raw samples
for limits, its own 0.1 s smoothing for the high/low window) so a regulator bug cannot blind it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from appliance.controller.alarms import AlarmCode
from appliance.controller.limits import SafetyLimits
from appliance.controller.watches import (
    ClimbWatch,
    DueRiseWatch,
    FrozenWatch,
    GripWatch,
    LeakWatch,
    PumpRise,
    RefillLedger,
    ShareWindow,
)
from appliance.pump_model import dead_zone_duty
from hardware.ports import Sample
from hardware.transducer import TransducerModel


class State(StrEnum):
    IDLE = "IDLE"
    INFLATING = "INFLATING"
    HOLDING = "HOLDING"
    DEFLATING = "DEFLATING"
    MEASURING_LOP = "MEASURING_LOP"
    SELFTEST = "SELFTEST"
    FAULT = "FAULT"


# The regulator holds a set point: inflating to it, or holding it.
REGULATED = (State.INFLATING, State.HOLDING)
PRESSURISING = (*REGULATED, State.MEASURING_LOP, State.SELFTEST)
PROCEDURES = {"lop": State.MEASURING_LOP, "selftest": State.SELFTEST}


@dataclass(frozen=True)
class Finding:
    code: AlarmCode
    fault: bool


@dataclass
class Observation:
    """One loop iteration as the supervisor sees it."""

    now: float
    sample: Sample | None
    read_error: str | None
    pump_duty: float
    valve_open: bool
    state: State
    target: float | None
    ceiling: float
    occlusion_s: float
    occlusion_limit_s: float
    heartbeat_age_s: float | None


class Supervisor:
    """Independent checks; `check()` returns every finding for this iteration."""

    PUMPING_DUTY = 0.5
    # The varied plants' pumps take up to 0.15 s to spin up: a restart is not yet a climb.
    SPIN_UP_S = 0.15
    # A pump this far above the nominal dead zone moves air on every pump the varied plants
    # draw (their dead zones lie up to 0.12 above it at 240 mmHg), in a cuff that grips.
    DRIVING_OVER_DEAD_ZONE = 0.2
    DRIVING_MIN_DUTY = 0.8  # over the hold pump's lowest duties, which a relaxing limb can match
    DRIVING_MAX_DUTY = 0.95
    MOVING_OVER_DEAD_ZONE = 0.15
    MOVING_WINDOW_S = 1.25
    # Of the rise PumpRise expects at a duty: on 38 arms kinked 5 % under the set point
    # (project and varied) the cuff rose 0.82-2.95 times it between 0.15 and 0.45 s after the
    # pump started (slow motors, dead zones away from the nominal one).
    DUE_SHARE = 0.5
    # Judged over a pump run's first seconds only: a kink starts a run that never ends, while
    # a leak balanced by a pump at its true dead zone, on a cuff above the LOP (no heartbeat),
    # keeps the reading standing for good and is the leak check's.
    DUE_RUN_S = 2.0
    GRIP_mmHg = 20.0
    # Vent pulses within FrozenWatch's window that must have moved the reading: each one is
    # sized to take several mmHg off (the shortest takes 0.4 % off a thigh cuff, 2.4 % off an
    # arm's), and the regulator opens again within the window only while a rep pushes the
    # pressure up, which moves the reading too.
    VENTS_IN_WINDOW = 3
    VENT_OPEN_SHARE = 0.2  # or open this much of the window: 0.1 s empties 10 % of a thigh cuff
    PUMPING_OVER_DEAD_ZONE = 0.1
    # Pump running more than this share of a vent-free 7 s while holding = compensating a leak.
    # With the BOM's 9 L/min pump, holding still on an intact cuff keeps it at 0 %, a 0.2 mm hole
    # at 6-12 % and a 0.35 mm one (a cracked fitting) at 18-32 %. A stronger pump needs a lower
    # share for the same leak, so this threshold belongs to the pump in the BOM.
    # It must hold over twice that window too (`LeakWatch`).
    LEAK_PUMP_FRACTION = 0.15
    # Pump at full duty and the cuff still more than 5 % under the set point: the pump cannot
    # refill the cuff as fast as the limb relaxes (worn or undersized pump, a cuff too large for
    # it). Over any 30 s of a leg press with the BOM's pump that is at most 5.7 % of the time on
    # twelve thighs (0 on arms); with a pump of 60 % of its flow or less, 11-31 %. It alarms above
    # 9 % and clears under 4.5 %, and never deflates: the cuff still holds +-10 %.
    REFILL_SHORT_FRACTION = 0.05
    REFILL_FULL_DUTY = 0.95
    REFILL_WINDOW_S = 30.0
    REFILL_SLOW_SHARE = 0.09
    # Well under the set point with the pump below full duty. On a healthy line the
    # regulator's duty reaches 1 by -5 % (a strong pump on a small cuff is scaled down, but its
    # flow closes such a gap within a tenth of a second), and a pump too weak to keep up is flat
    # out while short (REFILL_SLOW). Behind a partly pinched sensing line the reading lags the
    # cuff: the scaled-down pump has filled the cuff while the reading still shows it short, and
    # the hold swings with its peaks unseen. Healthy holds spend at most 0.9 % of any 10 s so
    # (24 project patients through 30-15-15-15, 48 varied plants and 12 shifting patients
    # through sets), slow reps at 40-50 % of LOP 2.0 % (3.7 % without the 8 mmHg floor);
    # seated arms behind a 0.2-0.3 s lag 5-20 % (docs/safety.md, partly pinched line rows).
    UNSTEADY_UNDER_FRACTION = 0.07
    UNSTEADY_UNDER_MIN_mmHg = 8.0  # at 40-50 % of LOP, 7 % is a heartbeat and a slow rep
    UNSTEADY_WINDOW_S = 10.0
    UNSTEADY_SHARE = 0.04
    UNSTEADY_CLEAR_SHARE = 0.02
    # A sensor that fails now and then, never twice in a row (a loose connector touching a
    # rail, a bus that drops reads): counted over a window, not only in a row. A single glitch
    # a second passes; a rail sample in every hundred, or a quarter of reads failing, faults.
    SENSOR_WINDOW_S = 2.0
    RANGE_BAD_IN_WINDOW = 5
    READ_FAILING_SHARE = 0.25
    # Leak hysteresis: once raised, the alarm holds until the pump's share falls under half the
    # threshold (vents included), so a leak near it cannot flicker (re-sounding through a
    # silence) and restart its escalation each time.
    LEAK_CLEAR_FRACTION = 0.5

    def __init__(self, limits: SafetyLimits, transducer: TransducerModel) -> None:
        self.limits = limits
        self.transducer = transducer
        self._recent: deque[float] = deque(maxlen=3)
        self.pressure: float | None = None
        self._smooth: float | None = None
        self._last_sample_t: float | None = None
        self._read_errors = 0
        self._range_bad = 0
        self._last_code: int | None = None
        self._code_changed_t: float | None = None
        # Monotonic queue: its head is the window's lowest pressure, kept in O(1) per sample.
        self._pump_trace: deque[tuple[float, float]] = deque()
        self._pump_since: float | None = None
        self._climb = ClimbWatch()
        self._grip = GripWatch(self.GRIP_mmHg)
        self._pump_rise = PumpRise()
        self._frozen = FrozenWatch()
        self._frozen_long = FrozenWatch(self.MOVING_WINDOW_S)
        self._due_rise = DueRiseWatch()
        self._refill_ledger = RefillLedger()
        self._vent_frozen = FrozenWatch()
        self._vent_opened = ShareWindow(FrozenWatch.WINDOW_S)  # ticks the valve opened on
        self._vent_share = ShareWindow(FrozenWatch.WINDOW_S)
        self._was_open = False
        self._valve_since: float | None = None
        self._valve_start_p = 0.0
        self._outside_since: float | None = None
        self._outside_sign = 0
        self._leak_watch = LeakWatch(limits.leak_alarm_s)
        self._refill_window = ShareWindow(self.REFILL_WINDOW_S)
        self._refill_slow = False
        self._unsteady_window = ShareWindow(self.UNSTEADY_WINDOW_S)
        self._unsteady_since: float | None = None
        self._unsteady_target: float | None = None
        self._leak_since: float | None = None
        self._state_since: tuple[State, float] | None = None
        self._range_window = ShareWindow(self.SENSOR_WINDOW_S)
        self._read_window = ShareWindow(self.SENSOR_WINDOW_S)

    def reset_after_fault(self) -> None:
        """Forget the conditions of a cleared fault (timers restart from the reset)."""
        self._pump_since = None
        self._climb.clear()
        self._pump_rise.clear()
        self._frozen.clear()
        self._frozen_long.clear()
        self._due_rise.clear()
        self._refill_ledger.clear()
        self._vent_frozen.clear()
        self._vent_opened.clear()
        self._vent_share.clear()
        self._was_open = False
        self._valve_since = None
        self._outside_since = None
        self._leak_since = None
        self._leak_watch.clear()
        self._refill_window.clear()
        self._refill_slow = False
        self._unsteady_window.clear()
        self._unsteady_since = None
        self._read_errors = 0
        self._range_bad = 0
        self._range_window.clear()
        self._read_window.clear()

    def sensor_trusted(self) -> bool:
        """The last read worked and was in range, and the recent ones were not failing."""
        return (
            self._read_errors == 0
            and self._range_bad == 0
            and self._range_window.count() == 0
            and self._read_window.share() <= self.READ_FAILING_SHARE
        )

    def check(self, obs: Observation) -> list[Finding]:
        findings: list[Finding] = []
        lim = self.limits
        self._track_state(obs)
        findings += self._sensor(obs)
        if obs.sample is None and obs.read_error is None:
            # Between conversions only time-driven checks can change their verdict.
            return findings + self._timers(obs)
        p = self.pressure
        if p is not None and obs.sample is not None:
            if p > lim.absolute_cap_mmHg:
                findings.append(Finding(AlarmCode.OVERPRESSURE, True))
            elif obs.state in PRESSURISING and p > obs.ceiling:
                findings.append(Finding(AlarmCode.CEILING, True))
        if p is not None and obs.sample is not None:
            # Judged on fresh samples only: a sensor that stopped answering leaves its last
            # value behind, and a valve check on it named a stuck valve on an empty cuff.
            findings += self._pump_progress(obs, p)
            findings += self._climb_progress(obs, p)
            findings += self._grip_progress(obs, p)
            # After the climb check, which may just have learned the pump's rise.
            due_per_s = self.DUE_SHARE * self._pump_rise.expected_per_s(obs.pump_duty, p)
            findings += self._frozen_progress(obs, p, due_per_s)
            findings += self._refill_progress(obs, p, due_per_s)
            findings += self._vent_progress(obs, p)
            findings += self._valve_progress(obs, p)
            findings += self._window(obs)
        findings += self._leak(obs)
        findings += self._refill(obs)
        findings += self._steadiness(obs)
        return findings + self._timers(obs)

    def _timers(self, obs: Observation) -> list[Finding]:
        """Occlusion time, UI heartbeat and inflation time: they fire on the clock alone."""
        lim = self.limits
        findings: list[Finding] = []
        p = self.pressure
        pressurised = p is not None and p > lim.pressurised_mmHg
        # In every state: a cuff that cannot empty (a valve stuck with a little left) still
        # occludes, and its time still counts against the limit.
        if (obs.state in PRESSURISING or pressurised) and obs.occlusion_s > obs.occlusion_limit_s:
            findings.append(Finding(AlarmCode.OCCLUSION_TIME, True))
        if (
            obs.state in (State.DEFLATING, State.FAULT)
            and pressurised
            and self._state_since is not None
            and obs.now - self._state_since[1] > lim.deflate_timeout_s
        ):
            # The valve has been open this long and the cuff is still occluding: a valve
            # stuck (or a hose kinked) with too little pressure left for _valve_progress.
            findings.append(Finding(AlarmCode.VALVE_STUCK, True))
        if (
            (obs.state in PRESSURISING or pressurised)
            and obs.heartbeat_age_s is not None
            and obs.heartbeat_age_s > lim.heartbeat_timeout_s
        ):
            findings.append(Finding(AlarmCode.HEARTBEAT_LOST, True))
        if (
            obs.state == State.INFLATING
            and self._state_since is not None
            and obs.now - self._state_since[1] > lim.inflate_timeout_s
        ):
            findings.append(Finding(AlarmCode.INFLATE_TIMEOUT, True))
        return findings

    def _track_state(self, obs: Observation) -> None:
        if self._state_since is None or self._state_since[0] != obs.state:
            self._state_since = (obs.state, obs.now)
            if obs.state == State.IDLE:
                self._pump_rise.clear()  # the cuff is empty: another may be put on

    def _sensor(self, obs: Observation) -> list[Finding]:
        lim = self.limits
        out: list[Finding] = []
        if obs.read_error is not None:
            self._read_errors += 1
            self._read_window.add(obs.now, True)
            failing = (
                self._read_window.full() and self._read_window.share() > self.READ_FAILING_SHARE
            )
            if self._read_errors >= lim.read_error_limit or failing:
                out.append(Finding(AlarmCode.SENSOR_READ, True))
        s = obs.sample
        if s is None:
            if (
                self._last_sample_t is not None
                and obs.now - self._last_sample_t > lim.sample_stale_s
            ):
                out.append(Finding(AlarmCode.SENSOR_READ, True))
            if self._last_sample_t is None:
                self._last_sample_t = obs.now
            return out
        self._read_errors = 0
        self._read_window.add(s.t, False)
        self._last_sample_t = s.t
        in_range = self.transducer.volts_in_range(s.volts)
        self._range_window.add(s.t, not in_range)
        if not in_range:
            self._range_bad += 1
            if self._range_bad >= 2 or self._range_window.count() >= self.RANGE_BAD_IN_WINDOW:
                out.append(Finding(AlarmCode.SENSOR_RANGE, True))
            return out
        self._range_bad = 0
        if s.code != self._last_code:
            self._last_code = s.code
            self._code_changed_t = s.t
        elif self._code_changed_t is not None and s.t - self._code_changed_t > lim.stuck_window_s:
            out.append(Finding(AlarmCode.SENSOR_STUCK, True))
        self._recent.append(s.mmHg)
        self.pressure = sorted(self._recent)[len(self._recent) // 2]
        a = 0.04  # ~0.1 s time constant at 250 SPS
        self._smooth = (
            s.mmHg if self._smooth is None else self._smooth + a * (s.mmHg - self._smooth)
        )
        return out

    def _pump_progress(self, obs: Observation, p: float) -> list[Finding]:
        """Pumping hard without pressure rising: dead pump, cuff off, hose disconnected."""
        lim = self.limits
        pumping = obs.pump_duty >= self._pumping_duty(obs, p) and not obs.valve_open
        if not pumping:
            self._pump_since = None
            self._pump_trace.clear()
            return []
        if self._pump_since is None:
            self._pump_since = obs.now
        while self._pump_trace and self._pump_trace[-1][1] >= p:
            self._pump_trace.pop()
        self._pump_trace.append((obs.now, p))
        while obs.now - self._pump_trace[0][0] > lim.no_rise_window_s:
            self._pump_trace.popleft()
        if obs.now - self._pump_since < lim.no_rise_window_s:
            return []
        # From the window's lowest point: a knock on a slack cuff must not fake a high start.
        rise = p - self._pump_trace[0][1]
        if rise < lim.no_rise_min_mmHg:
            return [Finding(AlarmCode.PUMP_NO_RISE, True)]
        return []

    def _climb_progress(self, obs: Observation, p: float) -> list[Finding]:
        """An inflation whose brisk rise stops dead: the reading or the pump is gone.

        Judged only while inflating, when the limb is at rest: during a set a rep's top can
        stall a refill. The taper near the set point counts too: a reading frozen there leaves
        the regulator pumping on (at full duty once the taper sees no rise), and a thigh climbed
        to the relief valve before the 4 s no-rise check. Only fresh, in-range samples of a
        running pump fill the bins, from SPIN_UP_S after it starts. A pause of the pump does not
        clear them: on an arm the prediction stops the pump as the climb nears the set point, and
        a line kinked just before that left the restarted pump to the 4 s check, which an arm
        cuff outlasts at the relief valve.
        """
        if obs.state != State.INFLATING:
            self._climb.clear()
            return []
        if obs.pump_duty < self.PUMPING_DUTY or obs.valve_open:
            self._climb.pause()
            self._pump_rise.stop()
            return []
        self._climb.since, judged = self._spun_up(self._climb.since, obs.now)
        if obs.target is not None:
            at_full = judged and obs.pump_duty >= ClimbWatch.FULL_DUTY
            self._pump_rise.add(obs.now, p, obs.target, at_full)
        if judged and self._climb.add(obs.now, p, obs.pump_duty):
            return [Finding(AlarmCode.PUMP_NO_RISE, True)]
        return []

    def _grip_progress(self, obs: Observation, p: float) -> list[Finding]:
        """A fill from empty at full duty that takes far longer to grip than the last one.

        Inflating or measuring the LOP (whose readings each fill the cuff from empty); not the
        self-test, whose cuff is on a test cylinder.
        """
        if obs.state not in (State.INFLATING, State.MEASURING_LOP) or obs.valve_open:
            self._grip.end()
            return []
        if self._grip.add(obs.now, p, obs.pump_duty):
            return [Finding(AlarmCode.PUMP_NO_RISE, True)]
        return []

    def new_cuff(self) -> None:
        """The cuff may be another (another limb or patient, a new LOP measurement): its fill
        time from empty is not known until it has filled once."""
        self._grip.forget()

    def _spun_up(self, since: float | None, now: float) -> tuple[float, bool]:
        """When the pump reached its duty, and whether this sample may be judged yet.

        Not before SPIN_UP_S (a restarting pump lags), nor out of range (such a sample left
        the pressure as it was).
        """
        since = now if since is None else since
        return since, not self._range_bad and now - since >= self.SPIN_UP_S

    def _frozen_progress(self, obs: Observation, p: float, due_per_s: float) -> list[Finding]:
        """The pump drives a gripping cuff while the reading stands still: it is cut off.

        Inflating or holding, from SPIN_UP_S after the pump reached a duty that must move air
        briskly (for FrozenWatch.WINDOW_S), or that must move air at all (for MOVING_WINDOW_S);
        see FrozenWatch for why a limb, rep or heartbeat does not look like this. `due_per_s`:
        the rise the pump is due to give now (DueRiseWatch).
        """
        dead_zone = dead_zone_duty(p)
        gripping = obs.state in REGULATED and not obs.valve_open and p >= self.GRIP_mmHg
        driving_duty = min(
            self.DRIVING_MAX_DUTY,
            max(self.DRIVING_MIN_DUTY, dead_zone + self.DRIVING_OVER_DEAD_ZONE),
        )
        moving_duty = dead_zone + self.MOVING_OVER_DEAD_ZONE
        frozen = self._judged(self._frozen, gripping and obs.pump_duty >= driving_duty, obs)
        frozen = frozen and self._frozen.add(obs.now, p)
        slow = self._judged(self._frozen_long, gripping and obs.pump_duty >= moving_duty, obs)
        slow = slow and self._frozen_long.add(obs.now, p)
        due = self._judged(self._due_rise, gripping and due_per_s > 0.0, obs)
        started = obs.now if self._due_rise.since is None else self._due_rise.since
        due = due and obs.now - started <= self.DUE_RUN_S
        due = due and self._due_rise.add(obs.now, p, due_per_s)
        return [Finding(AlarmCode.PUMP_NO_RISE, True)] if frozen or slow or due else []

    def _refill_progress(self, obs: Observation, p: float, due_per_s: float) -> list[Finding]:
        """Holding, pump run after pump run at the valleys of a set adds no air to the cuff."""
        if obs.state != State.HOLDING or obs.valve_open or p < self.GRIP_mmHg:
            self._refill_ledger.clear()
            return []
        if self._refill_ledger.add(obs.now, p, due_per_s):
            return [Finding(AlarmCode.PUMP_NO_RISE, True)]
        return []

    def _judged(self, watch: FrozenWatch | DueRiseWatch, pumping: bool, obs: Observation) -> bool:
        """Whether `watch` may judge this sample: `pumping` has held since SPIN_UP_S ago."""
        if not pumping:
            watch.clear()
            return False
        watch.since, judged = self._spun_up(watch.since, obs.now)
        return judged

    def _vent_progress(self, obs: Observation, p: float) -> list[Finding]:
        """Holding, the valve vents again and again while the reading stands still.

        A sensing line kinked above the vent level left the regulator venting the cuff empty,
        pulse after pulse, while the screen showed the set point and nothing alarmed; a valve
        stuck shut looks the same from here. Either way the cuff is not what the reading says:
        fault VALVE_STUCK, whose advice is to release the cuff by hand.
        """
        if obs.state != State.HOLDING or p < self.GRIP_mmHg:
            self._vent_frozen.clear()
            self._vent_opened.clear()
            self._vent_share.clear()
            self._was_open = obs.valve_open
            return []
        self._vent_opened.add(obs.now, obs.valve_open and not self._was_open)
        self._was_open = obs.valve_open
        self._vent_share.add(obs.now, obs.valve_open)
        if self._range_bad or not self._vent_frozen.add(obs.now, p):
            return []
        vented = (
            self._vent_opened.count() >= self.VENTS_IN_WINDOW
            or self._vent_share.share() >= self.VENT_OPEN_SHARE
        )
        return [Finding(AlarmCode.VALVE_STUCK, True)] if vented else []

    def _pumping_duty(self, obs: Observation, p: float) -> float:
        """The duty from which the pump must move air, so the pressure must rise.

        While holding, a strong pump on a small cuff is run at reduced duty; with the reading
        near zero (a hose or the sensing line off) that is under PUMPING_DUTY, yet well above
        the dead zone at that back-pressure: it counts, or nothing would notice for 20 s.
        """
        if obs.state != State.HOLDING:
            return self.PUMPING_DUTY
        return min(self.PUMPING_DUTY, dead_zone_duty(p) + self.PUMPING_OVER_DEAD_ZONE)

    def _valve_progress(self, obs: Observation, p: float) -> list[Finding]:
        """Valve open, pump off, yet pressure not falling: the valve is stuck closed.

        Judged by the outputs, in any state but inflating and holding: deflating, after a
        fault, and the vents of a measurement or self-test (an LOP measurement's rest between
        readings held a stuck cuff above the limb's LOP for minutes). While holding, a vent
        that does not work shows as PRESSURE_HIGH and escalates from there.
        """
        lim = self.limits
        if not obs.valve_open or obs.pump_duty > 0 or obs.state in REGULATED:
            self._valve_since = None
            return []
        if self._valve_since is None:
            self._valve_since = obs.now
            self._valve_start_p = p
            return []
        if obs.now - self._valve_since < lim.valve_window_s:
            return []
        start = self._valve_start_p
        if start > 2 * lim.pressurised_mmHg and p > 0.75 * start and p > lim.pressurised_mmHg:
            return [Finding(AlarmCode.VALVE_STUCK, True)]
        # Re-arm the window so a slow, honest dump is judged on fresh figures.
        self._valve_since = obs.now
        self._valve_start_p = p
        return []

    def _window(self, obs: Observation) -> list[Finding]:
        """Delfi-style high/low window: alarm after 1 s outside +-15 mmHg, fault if it persists."""
        lim = self.limits
        if obs.state != State.HOLDING or obs.target is None or self._smooth is None:
            self._outside_since = None
            return []
        error = self._smooth - obs.target
        sign = 1 if error > lim.alarm_window_mmHg else -1 if error < -lim.alarm_window_mmHg else 0
        if sign == 0 or sign != self._outside_sign:
            self._outside_since = obs.now if sign else None
            self._outside_sign = sign
            return []
        assert self._outside_since is not None
        lasted = obs.now - self._outside_since
        code = AlarmCode.PRESSURE_HIGH if sign > 0 else AlarmCode.PRESSURE_LOW
        escalate = lim.high_escalate_s if sign > 0 else lim.low_escalate_s
        if lasted > escalate:
            return [Finding(code, True)]
        if lasted > lim.alarm_window_s:
            return [Finding(code, False)]
        return []

    def _leak(self, obs: Observation) -> list[Finding]:
        """Pump running much of the last 7 s and of the last 14 s while holding, with no venting.

        After a rep the pump puts back what the valve let out at the rep's top; on a thigh that
        can keep it running half the time, and a weak pump is still topping up a few seconds after
        the last rep of a set. Air the valve vented is not leaking, so only a window that starts
        `LeakWatch.SETTLE_S` after the last vent counts: a real leak never needs venting,
        and the rests show it.
        """
        lim = self.limits
        watch = self._leak_watch
        if obs.state != State.HOLDING:
            watch.clear()
            self._leak_since = None
            return []
        watch.add(obs.now, obs.pump_duty > 0, obs.valve_open)
        if not watch.full():
            return []
        if self._leak_since is None:
            counted = watch.counted(obs.now)
            if counted is None or counted < self.LEAK_PUMP_FRACTION:
                return []
            self._leak_since = obs.now
        elif watch.share() < self.LEAK_PUMP_FRACTION * self.LEAK_CLEAR_FRACTION:
            # Once raised, only a pump that has really gone quiet clears it: not a vent (a
            # leaking cuff's regulator overshoots now and then), not a dip at the threshold.
            self._leak_since = None
            return []
        if obs.now - self._leak_since > lim.leak_escalate_s:
            return [Finding(AlarmCode.LEAK, True)]
        return [Finding(AlarmCode.LEAK, False)]

    def _refill(self, obs: Observation) -> list[Finding]:
        """Pump flat out and the cuff still well under the set point, too often: a slow refill.

        Each rep's valley then sinks past -5 %: the therapy goes on at +-10 %, but the clinician
        should know, and a pump that used to keep up is wearing out.
        """
        if obs.state != State.HOLDING or obs.target is None or self._smooth is None:
            self._refill_window.clear()
            self._refill_slow = False
            return []
        short = self._smooth < obs.target * (1.0 - self.REFILL_SHORT_FRACTION)
        flat_out = obs.pump_duty >= self.REFILL_FULL_DUTY and not obs.valve_open
        self._refill_window.add(obs.now, short and flat_out)
        if not self._refill_window.full():
            return []
        share = self._refill_window.share()
        limit = self.REFILL_SLOW_SHARE / 2 if self._refill_slow else self.REFILL_SLOW_SHARE
        self._refill_slow = share > limit
        return [Finding(AlarmCode.REFILL_SLOW, False)] if self._refill_slow else []

    def _steadiness(self, obs: Observation) -> list[Finding]:
        """Well under the set point with the pump not flat out, too often: the hold swings.

        The regulator never lets a cuff it can see sink that far without its pump at full duty,
        so this is a reading that does not follow the cuff (a partly pinched sensing line, whose
        lag sets the hold swinging with the cuff's peaks unseen). It alarms, regulation goes on,
        and if the swinging lasts it deflates. A new set point starts the window afresh.
        """
        if obs.state != State.HOLDING or obs.target is None or self._smooth is None:
            self._unsteady_window.clear()
            self._unsteady_since = None
            return []
        if obs.target != self._unsteady_target:
            self._unsteady_target = obs.target
            self._unsteady_window.clear()
            self._unsteady_since = None
        under = max(obs.target * self.UNSTEADY_UNDER_FRACTION, self.UNSTEADY_UNDER_MIN_mmHg)
        short = self._smooth < obs.target - under
        self._unsteady_window.add(obs.now, short and obs.pump_duty < self.REFILL_FULL_DUTY)
        if not self._unsteady_window.full():
            return []
        share = self._unsteady_window.share()
        if self._unsteady_since is None:
            if share <= self.UNSTEADY_SHARE:
                return []
            self._unsteady_since = obs.now
        elif share < self.UNSTEADY_CLEAR_SHARE:
            self._unsteady_since = None
            return []
        fault = obs.now - self._unsteady_since > self.limits.unsteady_escalate_s
        return [Finding(AlarmCode.PRESSURE_UNSTEADY, fault)]
