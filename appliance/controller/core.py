"""The controller's state machine: one `tick()` per poll reads, supervises, regulates and drives.

Order inside a tick is the safety argument: the stop button and queued stop commands are handled
before the sensor is read, faults are decided by the supervisor before the regulator runs, and the
outputs are written on every tick (re-armed), with pump off and valve open in every state that is
not actively pressurising.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from appliance.controller.alarm_sound import AlarmSounder
from appliance.controller.alarms import AlarmBoard, AlarmCode
from appliance.controller.commands import Command, CommandError, parse_command
from appliance.controller.filters import PressureFilter
from appliance.controller.limits import HARD_OCCLUSION_S, SafetyLimits, SessionLimits
from appliance.controller.line_probe import LineProbe, ProbeResult, Verdict
from appliance.controller.occlusion import OcclusionClock, OcclusionNotes
from appliance.controller.regulator import Actuation, PredictiveBandRegulator, Regulator
from appliance.controller.supervisor import (
    PRESSURISING,
    PROCEDURES,
    REGULATED,
    Finding,
    Observation,
    State,
    Supervisor,
)
from hardware.clock import Clock
from hardware.ports import (
    Buzzer,
    PressureSensor,
    Pump,
    Sample,
    SensorError,
    StopButton,
    Valve,
)
from hardware.transducer import Calibration, TransducerModel

if TYPE_CHECKING:
    from hardware.devices import Devices

SAFE = Actuation(0.0, True)
# What may run before the first reading: nothing that pressurises before start-up has seen the
# cuff (it deflates first). What still runs after its client stopped waiting: what only takes
# pressure away or quiets the buzzer, never what the client was told had failed.
SAFE_AT_START = frozenset(
    {"stop", "deflate", "status", "silence", "heartbeat", "configure", "reset"}
)
SAFE_WHEN_LATE = frozenset({"stop", "deflate", "status", "silence"})


class Procedure(Protocol):
    """A measurement the controller runs itself (LOP): it proposes actuation, never forces it.

    The supervisor keeps running underneath and faults at `ceiling_mmHg` (never above 300).
    """

    ceiling_mmHg: float

    def step(self, now: float, f: PressureFilter, sample: Sample | None) -> Actuation | None:
        """Actuation for this tick, or None when finished."""
        ...

    def result(self) -> dict[str, Any]: ...

    def interrupted(self, why: str) -> dict[str, Any] | None:
        """The result to publish when a fault ends it; None leaves what it published."""
        ...


ProcedureFactory = Callable[[dict[str, Any], "Controller"], Procedure]


@dataclass
class TickRecord:
    """What one control tick did, for traces and benches."""

    t: float
    measured_mmHg: float | None
    target_mmHg: float | None
    pump_duty: float
    valve_open: bool
    state: State
    alarm: str


@dataclass
class ControllerHardware:
    sensor: PressureSensor
    pump: Pump
    valve: Valve
    stop_button: StopButton
    buzzer: Buzzer | None = None

    @classmethod
    def of(cls, devices: Devices) -> ControllerHardware:
        """What the controller drives of the device set (the dead-man is the loop's)."""
        return cls(devices.sensor, devices.pump, devices.valve, devices.stop_button, devices.buzzer)


@dataclass
class _Pending:
    command: Any
    done: threading.Event = field(default_factory=threading.Event)
    reply: dict[str, Any] | None = None
    # Set by a client that stopped waiting: it was told the command failed, so it must not run.
    abandoned: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class Controller:
    """Owns the pump and valve. Commands go through `handle` (same thread) or `submit` (others)."""

    def __init__(
        self,
        hardware: ControllerHardware,
        clock: Clock,
        *,
        limits: SafetyLimits | None = None,
        transducer: TransducerModel | None = None,
        regulator: Regulator | None = None,
        procedures: dict[str, ProcedureFactory] | None = None,
        on_tick: Callable[[TickRecord], None] | None = None,
        on_event: Callable[[float, str, dict[str, Any]], None] | None = None,
        occlusion: OcclusionClock | None = None,
        occlusion_record: OcclusionNotes | None = None,
    ) -> None:
        self.hw = hardware
        self.clock = clock
        self.limits = limits or SafetyLimits()
        self.transducer = transducer or TransducerModel()
        self.supervisor = Supervisor(self.limits, self.transducer)
        self.regulator: Regulator = regulator or PredictiveBandRegulator()
        self.filter = PressureFilter()
        # Finds a pinched or blocked sensing line while holding (docs/safety.md, sensor failure).
        self.line_probe: LineProbe | None = None
        self.probe_the_line()
        self.alarms = AlarmBoard()
        self.sounder = AlarmSounder(hardware.buzzer, clock.now())
        self.session = SessionLimits(occlusion_limit_s=self.limits.default_occlusion_s)
        self.limb_named: str | None = None  # the limb the last configure or LOP named
        self.procedures = procedures or {}
        self.on_tick = on_tick
        self.on_event = on_event
        # The loop's last published status, for `status` asked from other threads (IPC).
        self.published_status: Callable[[], dict[str, Any]] | None = None
        # deque append/popleft are atomic: the IPC thread queues, the loop drains, no lock needed.
        self._inbox: deque[_Pending] = deque()
        self._lock = threading.Lock()
        self.state = State.DEFLATING
        self.target: float | None = None
        self.fault: AlarmCode | None = None
        self.pressure: float | None = None
        self.last_sample_t: float | None = None
        self.output = SAFE
        # What the limb has been through, also before a restart (`occlusion_record.resume`).
        self.occlusion = occlusion or OcclusionClock()
        self.occlusion_record = occlusion_record
        self.heartbeat_t: float | None = None
        self.procedure: Procedure | None = None
        self.last_lop: dict[str, Any] | None = None
        self.last_selftest: dict[str, Any] | None = None
        # An LOP measurement has filled this cuff since the last configure: the fills the
        # supervisor learned are this patient's (GripWatch), whatever LOP configure brings.
        self._cuff_measured = False
        self.procedure_kind = ""
        self.nominal_mmHg: float | None = None
        # From start-up: the first reading's tick counts the time since (an occlusion carried
        # over a restart, or a cuff still tight at start, goes on while the controller starts).
        self._tracked_t = clock.now()
        self._startup = True
        self._lowered_from: float | None = None  # the set point before set_target lowered it
        self._recorded: tuple[State, AlarmCode | None] = (self.state, None)
        self.valve_openings = 0
        self.pump_starts = 0
        self._armed_at = float("-inf")
        self._apply(SAFE)
        self._emit("start", {})

    # ---- commands ------------------------------------------------------------------------
    def submit(
        self, message: Any, timeout_s: float = 2.0, *, therapy: bool = False
    ) -> dict[str, Any]:
        """From another thread (IPC): queue for the loop and wait for its reply.

        `therapy`: the command came from the clinic's socket, where a set point is a fraction
        of the patient's LOP (`_check_therapy`); the technicians' socket sends False.
        """
        try:
            command = replace(parse_command(message), therapy=therapy)
        except CommandError as exc:
            return {"ok": False, "error": str(exc)}
        if command.name == "status":
            # Other threads never read live state: the loop may be changing it this instant.
            source = self.published_status or self.status
            return {"ok": True, "status": source()}
        pending = _Pending(command)
        self._inbox.append(pending)
        if not pending.done.wait(timeout_s):
            with pending.lock:
                if pending.reply is None and command.name not in SAFE_WHEN_LATE:
                    pending.abandoned = True
            if pending.reply is None:
                done = "it will still be done" if command.name in SAFE_WHEN_LATE else "not done"
                return {"ok": False, "error": f"controller did not answer in time ({done})"}
        assert pending.reply is not None
        return pending.reply

    def handle(self, message: Any, *, therapy: bool = False) -> dict[str, Any]:
        """From the loop's own thread (in-process simulation): validate and apply now."""
        try:
            command = replace(parse_command(message), therapy=therapy)
        except CommandError as exc:
            return {"ok": False, "error": str(exc)}
        return self._execute(command)

    def _execute(self, command: Command) -> dict[str, Any]:
        if self._startup and command.name not in SAFE_AT_START:
            # Nothing may pressurise before the start-up check has seen the cuff's pressure.
            return {
                "ok": False,
                "error": f"{command.name}: the controller has no pressure reading yet "
                "(it deflates first after starting); retry",
            }
        try:
            if command.therapy:
                self._check_therapy(command)
            getattr(self, f"_cmd_{command.name}")(**command.args)
        except CommandError as exc:
            return {"ok": False, "error": str(exc)}
        if command.name not in ("heartbeat", "status"):
            self._emit("command", {"cmd": command.name, **command.args})
        return {"ok": True, "status": self.status()}

    def _cmd_status(self) -> None:
        pass

    def _cmd_heartbeat(self) -> None:
        self.heartbeat_t = self.clock.now()

    def _cmd_silence(self, codes: list[str] | None = None) -> None:
        named = None if codes is None else frozenset(AlarmCode(c) for c in codes)
        muted = self.alarms.silence(self.clock.now(), named)
        self._emit("silence", {"muted": [c.value for c in muted]})

    def _cmd_stop(self) -> None:
        self._enter_fault(AlarmCode.STOP_UI)

    def _cmd_deflate(self) -> None:
        if self.state in (State.FAULT, State.IDLE):
            return
        # A measurement cut short ends here, or its ceiling would outlive it (300 mmHg for LOP).
        self._end_procedure("stopped by a deflate command; the cuff was deflated")
        self._set_state(State.DEFLATING)

    def _cmd_reset(self) -> None:
        if self.state != State.FAULT:
            raise CommandError("reset: only a FAULT needs a reset")
        if self.hw.stop_button.is_pressed:
            raise CommandError("reset: release the stop button first")
        if not self._reading_trusted():
            raise CommandError(
                "reset: the pressure sensor is not giving good readings; the cuff cannot be "
                "shown empty (check the sensor and its connector)"
            )
        if self.pressure is None or self.pressure > self.limits.pressurised_mmHg:
            raise CommandError("reset: wait until the cuff is empty")
        self.fault = None
        self.alarms.reset_latched()
        self.supervisor.reset_after_fault()
        self._set_state(State.IDLE)

    def _reading_fresh(self, now: float) -> bool:
        return (
            self.pressure is not None
            and self.last_sample_t is not None
            and now - self.last_sample_t <= 4 * self.limits.sample_stale_s
        )

    def _reading_trusted(self) -> bool:
        """A fresh, in-range reading, and a sensor not failing now and then."""
        return self._reading_fresh(self.clock.now()) and self.supervisor.sensor_trusted()

    def _cmd_configure(self, **args: Any) -> None:
        emptying = self.pressure is not None and self.pressure > self.limits.pressurised_mmHg
        if self.state in PRESSURISING or emptying:
            raise CommandError("configure: not while the cuff is inflated or emptying")
        limb = args["limb"]
        if args["lop_mmHg"] != self.session.lop_mmHg and not self._cuff_measured:
            self.supervisor.new_cuff()  # another patient's LOP, typed in: maybe another cuff
        self._cuff_measured = False
        self._name_limb(limb)
        requested = args["occlusion_limit_s"] or self.limits.default_occlusion_s
        occlusion = min(requested, HARD_OCCLUSION_S[limb])
        self.session = SessionLimits(
            limb=limb,
            lop_mmHg=args["lop_mmHg"],
            max_pct_lop=args["max_pct_lop"],
            occlusion_limit_s=occlusion,
            reperfusion_s=args.get("reperfusion_s") or None,
        )

    def _name_limb(self, limb: str | None) -> None:
        """Record which limb the cuff is on, by `configure` or `measure_lop` alike.

        The cuff has not had its full rest since it occluded the limb named before: called
        another limb now, it still keeps that one's hard limit (an arm renamed a leg would get
        20 minutes) until that rest.
        """
        if limb is None:
            return
        was, self.limb_named = self.limb_named, limb
        if limb != was:
            self.supervisor.new_cuff()
        if self.occlusion.occlusion_s > 0 and was is not None and limb != was:
            carried = self.occlusion.carried_limit_s
            hard = HARD_OCCLUSION_S[was]
            self.occlusion.carried_limit_s = hard if carried is None else min(carried, hard)

    def _check_therapy(self, command: Command) -> None:
        """A patient's set point is a fraction of their measured LOP, never the controller-wide
        maximum a technician may use on a test cylinder: a clinic client that skipped
        `configure` (or sent no LOP) cannot inflate a limb to 260 mmHg."""
        if command.name in ("inflate", "set_target") and self.session.lop_mmHg is None:
            raise CommandError(
                f"{command.name}: no LOP configured for this patient; send configure with "
                "lop_mmHg first (a treatment pressure is a fraction of the measured LOP)"
            )

    def _check_target(self, target: float) -> None:
        allowed = self.session.max_target(self.limits)
        if target > allowed + 0.01:  # float rounding of % LOP, not a loophole
            raise CommandError(
                f"target_mmHg: {target:g} exceeds this session's limit of {allowed:.0f} mmHg"
            )

    def _cmd_inflate(self, target_mmHg: float) -> None:
        self._check_target(target_mmHg)
        if self.state == State.FAULT:
            raise CommandError(f"inflate: controller is in FAULT ({self.fault}); reset first")
        if self.state in PROCEDURES.values():
            raise CommandError(f"inflate: {self.state} in progress; deflate to end it first")
        now = self.clock.now()
        self._check_may_occlude("inflate")
        if self.heartbeat_t is None:
            self.heartbeat_t = now
        self.alarms.clear(AlarmCode.LOP_FAILED)  # the clinician has moved on
        if self.state in REGULATED:
            self._retarget(target_mmHg)
            return
        self.target = target_mmHg
        self._set_state(State.INFLATING)
        if self.pressure is not None and self.pressure > target_mmHg:
            # Inflated again while the cuff is still emptying from higher up: the ceiling comes
            # down with the pressure, as for a lowered set point.
            self._lowered_from = self.pressure

    def _cmd_set_target(self, target_mmHg: float) -> None:
        self._check_target(target_mmHg)
        if self.state not in REGULATED:
            raise CommandError("set_target: only while inflating or holding")
        self._retarget(target_mmHg)

    def _retarget(self, target_mmHg: float) -> None:
        """A new set point on a cuff already pressurised, by `set_target` or `inflate`."""
        if self.target is not None and target_mmHg < self.target:
            # The ceiling comes down with the pressure, not ahead of it: lowering the set point
            # by more than the margin would otherwise fault CEILING before the vent has begun.
            self._lowered_from = max(self.target, self._lowered_from or 0.0)
        self.target = target_mmHg  # HOLDING regulates to the new set point from here

    def _cmd_measure_lop(self, **args: Any) -> None:
        self._start_procedure("lop", "measure_lop", args)
        self.supervisor.new_cuff()  # a measurement starts a patient's cuff; its fills teach it
        self._cuff_measured = True
        self._name_limb(args.get("limb"))

    def _cmd_selftest(self, **args: Any) -> None:
        self._start_procedure("selftest", "selftest", args)

    def _check_may_occlude(self, command: str) -> None:
        """A limb may be occluded only after the rest it is owed, and only while the occlusion
        clock is kept: a controller restarted without it would hand out a fresh allowance."""
        lockout = self.reperfusion_remaining_s()
        if lockout is not None:
            raise CommandError(f"{command}: reperfusion lockout, {lockout:.0f} s remaining")
        if self.alarms.is_active(AlarmCode.OCCLUSION_RECORD):
            raise CommandError(
                f"{command}: the occlusion time cannot be saved to the data partition; "
                "no new inflation until it can (ask the technician to check the SD card)"
            )

    def _check_record(self, now: float) -> None:
        if self.occlusion_record is None:
            return
        if not self.occlusion_record.stale(now):
            self.alarms.clear(AlarmCode.OCCLUSION_RECORD)
        elif self.alarms.raise_(AlarmCode.OCCLUSION_RECORD, now, latched=False):
            self._emit("alarm", {"code": AlarmCode.OCCLUSION_RECORD.value, "fault": False})

    def _start_procedure(self, kind: str, command: str, args: dict[str, Any]) -> None:
        if self.state != State.IDLE:
            raise CommandError(f"{command}: controller must be IDLE, it is {self.state}")
        factory = self.procedures.get(kind)
        if factory is None:
            raise CommandError(f"{command}: not available on this controller")
        self._check_may_occlude(command)
        self.heartbeat_t = self.clock.now()
        self.alarms.clear(AlarmCode.LOP_FAILED)  # a new attempt replaces the old verdict
        self.procedure = factory(args, self)
        self.procedure_kind = kind
        self.target = None
        self._set_state(PROCEDURES[kind])

    def _cmd_sound_test(self) -> None:
        """The self-test's buzzer check: one high-priority burst for the technician to hear."""
        if self.state != State.IDLE:
            raise CommandError(f"sound_test: controller must be IDLE, it is {self.state}")
        self.sounder.test(self.clock.now())

    def _cmd_set_calibration(self, zero_mmHg: float, span: float) -> None:
        """Technician calibration: applied by the sensor from the next sample on."""
        if self.state != State.IDLE:
            raise CommandError("set_calibration: only while IDLE with the cuff empty")
        setter = getattr(self.hw.sensor, "set_calibration", None)
        if setter is None:
            raise CommandError("set_calibration: this sensor cannot be calibrated")
        setter(Calibration(zero_mmHg=zero_mmHg, span=span))

    # ---- loop ----------------------------------------------------------------------------
    def tick(self) -> None:
        """One poll: stop inputs, commands, sensor, supervisor, regulator, outputs."""
        now = self.clock.now()
        if self.hw.stop_button.take_press():
            self._enter_fault(AlarmCode.STOP_BUTTON)
        self._drain_inbox()
        sample, error = self._read()
        # The supervisor judges every sample; only one in range may steer the cuff (a rail
        # sample averaged in would hold a real cuff far above the set point).
        usable = (
            sample if sample is not None and self.transducer.volts_in_range(sample.volts) else None
        )
        if usable is not None:
            self.pressure = self.filter.update(usable.t, usable.mmHg)
            self.nominal_mmHg = usable.nominal_mmHg
            self.last_sample_t = usable.t
        self._track_occlusion(now)
        self._check_record(now)
        findings = self.supervisor.check(
            Observation(
                now=now,
                sample=sample,
                read_error=error,
                pump_duty=self.output.pump_duty,
                valve_open=self.output.valve_open,
                state=self.state,
                target=self.target,
                ceiling=self._ceiling(),
                occlusion_s=self.occlusion.occlusion_s,
                occlusion_limit_s=self.occlusion_limits()[0],
                heartbeat_age_s=None if self.heartbeat_t is None else now - self.heartbeat_t,
            )
        )
        self._act_on(findings, now, evaluated=sample is not None or error is not None)
        self._apply(self._decide(now, usable))
        self.sounder.update(now, self.alarms.audible(now))
        if self.on_tick is not None:
            # Every fresh sample is a control tick; so is one whose read failed, and a change of
            # state: a failed sensor must not freeze the stream (and traces) on the last good tick.
            marks = (self.state, self.fault)
            if sample is not None or error is not None or marks != self._recorded:
                self._recorded = marks
                self.on_tick(self._record(now, sample))

    def _read(self) -> tuple[Sample | None, str | None]:
        try:
            return self.hw.sensor.read(), None
        except SensorError as exc:
            return None, str(exc)

    def _drain_inbox(self) -> None:
        while self._inbox:
            pending = self._inbox.popleft()
            with pending.lock:
                if pending.abandoned:
                    continue
                pending.reply = self._execute(pending.command)
            pending.done.set()

    def _act_on(self, findings: list[Finding], now: float, evaluated: bool) -> None:
        seen = set()
        for finding in findings:
            seen.add(finding.code)
            if finding.fault:
                self._enter_fault(finding.code)
            elif self.alarms.raise_(finding.code, now, latched=False):
                self._emit("alarm", {"code": finding.code.value, "fault": False})
        for code in (
            AlarmCode.PRESSURE_HIGH,
            AlarmCode.PRESSURE_LOW,
            AlarmCode.LEAK,
            AlarmCode.REFILL_SLOW,
            AlarmCode.PRESSURE_UNSTEADY,
        ):
            if evaluated and code not in seen:
                self.alarms.clear(code)
        if self._startup and self.pressure is not None:
            self._startup = False
            if self.pressure > self.limits.pressurised_mmHg:
                self._enter_fault(AlarmCode.PRESSURISED_AT_START)

    def _ceiling(self) -> float:
        """A measurement sets its own ceiling; holding is capped just above the set point (the
        previous one, after it was lowered, until the pressure is under the new ceiling)."""
        if self.procedure is not None:
            return min(self.limits.absolute_cap_mmHg, self.procedure.ceiling_mmHg)
        ceiling = self.session.ceiling(self.limits, self.target or 0.0)
        if self._lowered_from is not None:
            if self.target is not None and self.pressure is not None and self.pressure < ceiling:
                self._lowered_from = None
            else:
                return self.session.ceiling(self.limits, self._lowered_from)
        return ceiling

    def _reperfusion_s(self) -> float:
        """This session's rest after the limit, else the appliance's: never a past session's."""
        return self.session.reperfusion_s or self.limits.reperfusion_s

    def reperfusion_remaining_s(self) -> float | None:
        """After the occlusion limit, the limb must stay deflated for the full reperfusion time."""
        return self.occlusion.lockout_s(self.session.occlusion_limit_s, self._reperfusion_s())

    def occlusion_limits(self) -> tuple[float, float]:
        """The occlusion limit and reperfusion time in force: the session's, or those carried
        over a restart while they are stricter and the limb has not had a full rest since."""
        return self.occlusion.limits(self.session.occlusion_limit_s, self._reperfusion_s())

    def _track_occlusion(self, now: float) -> None:
        """Counted from the measured pressure; time without a reading (start-up, a failed read)
        is counted with the next reading, not lost."""
        if self.pressure is None:
            return
        dt = max(0.0, now - self._tracked_t)
        self._tracked_t = now
        occluded = self.pressure > self.limits.pressurised_mmHg
        limit_s, reperfusion_s = self.occlusion_limits()
        self.occlusion.track(occluded, dt, limit_s=limit_s, reperfusion_s=reperfusion_s)
        if self.occlusion_record is not None:
            self.occlusion_record.note(
                now, self.occlusion, occluded, limit_s=limit_s, reperfusion_s=reperfusion_s
            )

    def _decide(self, now: float, sample: Sample | None) -> Actuation:
        if self.state == State.INFLATING:
            assert self.target is not None
            if self.pressure is not None and self.pressure >= self.target * 0.99:
                self._set_state(State.HOLDING)
            else:
                return self.regulator.inflate(now, self.filter, self.target)
        if self.state == State.HOLDING:
            assert self.target is not None
            wanted = self.regulator.hold(now, self.filter, self.target)
            if self.line_probe is None:
                return wanted
            raw = None if sample is None else sample.mmHg
            act = self.line_probe.step(
                now, raw, self.target, wanted, self.regulator.last_rep_vent_t
            )
            if self.line_probe.verdict != Verdict.LAGGING:
                return act
            self._enter_fault(AlarmCode.SENSOR_LAG)
        if self.state in (State.MEASURING_LOP, State.SELFTEST):
            assert self.procedure is not None
            act = self.procedure.step(now, self.filter, sample)
            if act is not None:
                return act
            result = self.procedure.result()
            if self.procedure_kind == "lop" and result.get("lop_mmHg") is None:
                self.alarms.raise_(AlarmCode.LOP_FAILED, now, latched=False)
            self._publish(result)
            self.procedure = None
            self._set_state(State.DEFLATING)
        if self.state == State.DEFLATING and self.pressure is not None and self.pressure < 3.0:
            self._set_state(State.IDLE)
        return SAFE

    def _apply(self, act: Actuation) -> None:
        """Write outputs when they change and re-arm them every 100 ms; count actuations."""
        now = self.clock.now()
        if act == self.output and now - self._armed_at < 0.1:
            return
        self._armed_at = now
        if act.valve_open and not self.output.valve_open:
            self.valve_openings += 1
        if act.pump_duty > 0 and self.output.pump_duty == 0:
            self.pump_starts += 1
        # Valve first when venting, pump first when stopping: never pump into a closed cuff late.
        if act.valve_open:
            self.hw.pump.set_duty(act.pump_duty)
            self.hw.valve.open()
        else:
            self.hw.valve.close()
            self.hw.pump.set_duty(act.pump_duty)
        self.output = act

    def _enter_fault(self, code: AlarmCode) -> None:
        now = self.clock.now()
        self._apply(SAFE)
        if self.alarms.raise_(code, now, latched=True):
            self._emit("alarm", {"code": code.value, "fault": True})
        if self.state != State.FAULT:
            self.fault = code
            self._end_procedure(f"stopped by the {code.value} fault; the cuff was deflated")
            self.regulator.reset()
            self._set_state(State.FAULT)

    def _end_procedure(self, why: str) -> None:
        """A measurement ended before it finished: publish why, and drop it with its ceiling."""
        if self.procedure is None:
            return
        result = self.procedure.interrupted(why)
        if result is not None:
            self._publish(result)
        self.procedure = None

    def _publish(self, result: dict[str, Any]) -> None:
        """A procedure's result, where status() shows it, and as an event."""
        if self.procedure_kind == "lop":
            self.last_lop = result
        else:
            self.last_selftest = result
        self._emit(self.procedure_kind, result)

    def _set_state(self, state: State) -> None:
        if state == self.state:
            return
        previous, self.state = self.state, state
        if state != State.HOLDING and self.line_probe is not None:
            self.line_probe.reset()  # each hold judges its line afresh, from the shortest opening
        if state not in REGULATED:
            self._lowered_from = None  # a set point lowered on the way up holds once there
        if state in (State.IDLE, State.DEFLATING, State.FAULT):
            self.target = None if state != State.DEFLATING else self.target
            self.regulator.reset()
        if state in (State.IDLE, State.FAULT):
            self.target = None
        self._emit("state", {"from": previous.value, "to": state.value})

    def probe_the_line(self, on: bool = True) -> None:
        """Turn the sensing line's probe on (the default) or off (benches comparing its cost)."""
        self.line_probe = LineProbe(on_result=self._probed) if on else None

    def _probed(self, result: ProbeResult) -> None:
        """Every probe of the sensing line goes to the log: a technician sees a line going slow."""
        half_ms = None if result.half_s is None else round(1000 * result.half_s)
        drop = None if result.whole_mmHg != result.whole_mmHg else round(result.whole_mmHg, 2)
        self._emit(
            "line_probe",
            {
                "verdict": result.verdict.value,
                "open_ms": round(1000 * result.open_s),
                "drop_mmHg": drop,
                "half_ms": half_ms,
                "beat_out": result.beat_out,
            },
        )

    def safe_shutdown(self) -> None:
        """On exit (SIGTERM, crash): pump off, valve open, whatever state we were in."""
        self._apply(SAFE)
        self._emit("shutdown", {})

    # ---- reporting -----------------------------------------------------------------------
    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(self.clock.now(), kind, data)

    def _record(self, now: float, sample: Sample | None) -> TickRecord:
        code = self.fault or self.alarms.first_code()
        return TickRecord(
            t=now if sample is None else sample.t,
            measured_mmHg=None if sample is None else sample.mmHg,
            target_mmHg=self.target,
            pump_duty=self.output.pump_duty,
            valve_open=self.output.valve_open,
            state=self.state,
            alarm=code.value if code else "",
        )

    @property
    def healthy(self) -> bool:
        """Loop alive, sensor answering, outputs as commanded: what the watchdog vouches for."""
        now = self.clock.now()
        fresh = self.last_sample_t is not None and now - self.last_sample_t < 0.5
        return fresh or (self.state == State.FAULT and self.output == SAFE)

    def status(self) -> dict[str, Any]:
        now = self.clock.now()
        lockout = self.reperfusion_remaining_s()
        return {
            "t": round(now, 3),
            # A reading that stopped coming is not shown as the cuff's pressure now.
            "mmHg": round(self.pressure, 1) if self._reading_fresh(now) else None,
            "target_mmHg": self.target,
            "state": self.state.value,
            "fault": self.fault.value if self.fault else None,
            "alarms": [a.to_dict() for a in self.alarms.active()],
            "silenced": self.alarms.muted(now),
            "pump_duty": round(self.output.pump_duty, 3),
            "valve_open": self.output.valve_open,
            "occlusion_s": round(self.occlusion.occlusion_s, 1),
            "occlusion_limit_s": self.occlusion_limits()[0],
            "reperfusion_lockout_s": None if lockout is None else round(lockout, 1),
            "limb": self.session.limb,
            "lop_mmHg": self.session.lop_mmHg,
            "max_target_mmHg": round(self.session.max_target(self.limits), 1),
            "last_lop": self.last_lop,
            "last_selftest": self.last_selftest,
            "nominal_mmHg": None if self.nominal_mmHg is None else round(self.nominal_mmHg, 2),
        }
