"""The guided session: a clock-driven state machine from screening to summary, one tick at a time.

The runner owns no thread and never sleeps: the caller passes the time to `tick(now)` (10-20 Hz;
simulated seconds in `bfr sim session`, monotonic seconds on the device). Every tick sends the
UI heartbeat to the controller, samples the cuff pressure into the trace, records alarms, and
moves the session on. Everything is written through `appliance.store` and committed before the
runner reports it: an event reaches listeners with its row id.

Safety rules the runner keeps (the controller enforces its own copy of every limit):
- No inflation without a valid screening, or a clinician's written override (audit trail).
- Any controller FAULT ends the session with outcome "alarm"; the controller has already vented.
- Pain above 7/10 ends the exercise. The exercise also ends 5 s before its occlusion limit, so
  the controller's OCCLUSION_TIME fault stays a backstop rather than the normal path.
- A pause holds the cuff for at most the current set's rest time (30 s after the last set, none
  where rests deflate), then deflates; resuming re-inflates and restarts the unfinished rep.
- A cuff that empties without the runner asking (another client's deflate, a controller that
  restarted) while inflating, in a set, a rest or a pause pauses the session: no rep counts
  without pressure, a CUFF_LOST alarm is recorded until the clinician resumes or the exercise
  ends, and resuming configures the controller again before inflating.
  Every inflation checks that the controller still holds this session's LOP and limb.
- A rating not given when a rest is over keeps the next set waiting; after another rest's length
  the cuff is emptied until it comes.
- `close()` (and leaving the `with` block, also on an exception) always sends deflate; if the
  whole process dies, the controller deflates on its own when the heartbeat stops.

Events (kind / name, detail): phase/phase.<phase>; prompt/prompt.<key> (prompt params);
rep/rep.up|rep.down {rep, phase, reps, set_index, exercise_index}; set/set.start|set.done;
cuff/cuff.at_pressure|cuff.empty|cuff.lost {phase, state, mmHg};
input/input.<action>; lop/lop.reading|lop.failed|lop.stored|lop.used|lop.unavailable|...;
controller/controller.<cmd> {ok, error}; alarm/alarm.raised|alarm.cleared {code, message};
limit/limit.occlusion|limit.pain|limit.pause_hold|limit.rating_overdue;
exercise/exercise.start|exercise.end {ended_by}; session/session.start|session.end {outcome};
screening/screening.blocked|screening.override|screening.caution_confirmed. Countdown events
(countdown/countdown.tick {seconds, phase}) go to listeners only, once per whole second.

Outcomes: "completed" (every set done), "stopped" (an exercise ended early: pain, occlusion
limit, patient or clinician), "aborted" (a clinician's abort, `close()` before the end, a
software error), "alarm" (a controller FAULT, a lost controller link, the runner's timeouts).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

from appliance import screening
from appliance.protocols import DEFAULT_REST_S, Exercise
from appliance.sessions import link as ctl
from appliance.sessions import prompts
from appliance.sessions.events import EventHub, Listener, SessionEvent
from appliance.sessions.metronome import Metronome
from appliance.sessions.phases import ACTIONS, Phase, RunnerView
from appliance.sessions.plan import SessionPlan, release_s
from appliance.sessions.pressure_trace import TraceSampler
from appliance.sessions.prompts import Prompt
from appliance.sessions.summary import session_summary
from appliance.store import Store, audit, records
from appliance.store.records import LOP_RANGE_MMHG, LopMeasurement, SetRecord
from appliance.store.trace import TraceRecorder

log = logging.getLogger(__name__)

PAIN_STOP_ABOVE = 7  # pain or numbness above 7/10 stops (domain page, screening section)
OCCLUSION_MARGIN_S = 5.0  # time to empty the cuff before the controller's own limit
# How long the runner waits for its controller before ending the session. The patient does not
# wait on it: a live controller that hears no heartbeat vents after 3 s, and a restarted one
# empties the cuff at start-up. On a Pi a restart (systemd's RestartSec, the ExecStopPost
# deflate, Python and numpy start-up, or a watchdog kill first) takes several seconds; the
# session pauses at once and, if the controller comes back in time, the clinician resumes it.
LINK_LOSS_S = 15.0
INFLATE_TIMEOUT_S = 90.0  # the controller faults at 60 s; this only covers a silent controller
DEFLATE_TIMEOUT_S = 60.0
LOP_TIMEOUT_S = 240.0
CUFF_LOST = "CUFF_LOST"  # the runner's own alarm: the cuff emptied behind a set's back
MAX_LOP_ATTEMPTS = 4  # two good readings out of at most four inflations
REPERFUSION_GRACE_S = 5.0  # wait this much longer for the controller's occlusion clock to reset
ABOVE_80_ACTION = "session.pct_lop_above_80"

_CUFF_PHASES = (Phase.INFLATING, Phase.SET, Phase.REST, Phase.PAUSED)
_PAUSABLE = (Phase.INFLATING, Phase.SET, Phase.REST, Phase.REPERFUSION, Phase.LOP_REST)


class SessionError(ValueError):
    """An action that does not fit the session's phase, or bad input; nothing was changed."""


@dataclass
class _SetProgress:
    """The set being done: when it began, its metronome (counted sets), time spent paused."""

    started_t: float
    started_at: float
    metronome: Metronome | None
    paused_s: float = 0.0


class SessionRunner:
    """Runs one session of `plan` through `link` (see `appliance.sessions.link`), storing it all.

    Use as a context manager, or call `close()` in a `finally`: both always send deflate.
    Methods are serialised by a lock; listeners run under it and must not call back in.
    """

    def __init__(
        self,
        store: Store,
        link: ctl.Link,
        plan: SessionPlan,
        *,
        to_wall: Callable[[float], float] | None = None,
    ) -> None:
        self.store = store
        self.link = link
        self.plan = plan.checked()
        self._to_wall = to_wall
        self._hub = EventHub()
        self._lock = threading.RLock()
        self._exercises: tuple[Exercise, ...] = self.plan.exercises
        self._phase = Phase.NOT_STARTED
        self._phase_since = 0.0
        self._prompt: Prompt | None = None
        self._now = 0.0
        self._status: dict[str, Any] = {}
        self._ctrl_t0 = 0.0
        self._session: records.Session | None = None
        self._trace: TraceSampler | None = None
        # timer: running (`_timer_end`) or frozen by a pause (`_timer_left`)
        self._timer_end: float | None = None
        self._timer_left: float | None = None
        self._last_countdown: int | None = None
        self._ex_i: int | None = None
        self._set_i = 0
        self._set: _SetProgress | None = None
        self._sets: list[SetRecord] = []
        self._pending_rating: SetRecord | None = None
        self._ended_by: dict[int, str] = {}
        self._after_inflate = Phase.SET
        self._inflate_sent = False
        self._inflate_t = 0.0
        self._needs_configure = False
        self._cuff_lost_alarm: int | None = None
        self._cuff_inflated = False
        self._released = False
        self._rest_overdue_deflated = False
        self._occlusion_s = 0.0
        self._deflated_s = 0.0
        self._paused_from: Phase | None = None
        self._pause_t = 0.0
        self._pause_deflate_at: float | None = None
        self._lop: LopMeasurement | None = None
        self._target: float | None = None
        self._lop_readings: list[float] = []
        self._lop_attempts = 0
        self._lop_sent = False
        self._lop_sent_t = 0.0
        self._lop_pending: LopMeasurement | None = None
        self._lop_reason = ""
        self._alarms_seen: set[tuple[str, float]] = set()
        self._alarm_rows: dict[tuple[str, float], int] = {}
        self._link_down_since: float | None = None
        self._outcome: str | None = None
        self._end_reason = ""
        self._summary: dict[str, Any] | None = None

    # ---------------------------------------------------------------- public: reading

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(SessionEvent)` for every event; returns the unsubscribe function."""
        return self._hub.subscribe(listener)

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def finished(self) -> bool:
        return self._phase == Phase.FINISHED

    @property
    def outcome(self) -> str | None:
        return self._outcome

    @property
    def session_id(self) -> int | None:
        return self._session.id if self._session else None

    @property
    def summary(self) -> dict[str, Any] | None:
        """What the session did, read back from the store; None until it finished."""
        return self._summary

    @property
    def prompt(self) -> Prompt | None:
        return self._prompt

    def view(self) -> RunnerView:
        """A snapshot for the screen."""
        with self._lock:
            ex = self._exercise if self._ex_i is not None else None
            rep = rep_phase = reps_target = reps_done = None
            if self._set is not None and self._set.metronome is not None:
                metronome = self._set.metronome
                reps_target, reps_done = metronome.reps, metronome.done
                current = metronome.current(self._now)
                if current is not None and self._phase == Phase.SET:
                    rep, rep_phase = current
            prompt = self._prompt
            return RunnerView(
                phase=self._phase.value,
                prompt_key=prompt.key if prompt else None,
                prompt_params=dict(prompt.params) if prompt else {},
                countdown_s=self._countdown(),
                rep=rep,
                rep_phase=rep_phase,
                reps_target=reps_target,
                reps_done=reps_done,
                set_index=self._set_i if ex is not None else None,
                sets_total=len(ex.sets) if ex is not None else None,
                exercise_index=self._ex_i,
                exercises_total=len(self._exercises),
                exercise=ex.name if ex is not None else None,
                target_mmHg=self._target,
                pct_lop=self.plan.pct_lop,
                lop_mmHg=self._lop.lop_mmhg if self._lop else None,
                pressure_mmHg=self._status.get("mmHg"),
                controller_state=self._status.get("state"),
                cuff_inflated=self._cuff_inflated,
                occlusion_s=round(self._occlusion_s, 1),
                occlusion_limit_s=ex.max_occlusion_s if ex is not None else None,
                awaiting_rating=self._pending_rating is not None,
                paused=self._phase == Phase.PAUSED,
                actions=self._actions(),
                session_id=self.session_id,
                outcome=self._outcome,
            )

    # ---------------------------------------------------------------- public: driving

    def start(self, now: float) -> None:
        """Check the controller and the screening; open the session or wait for a clinician."""
        with self._lock:
            if self._phase != Phase.NOT_STARTED:
                raise SessionError("start: the session was already started")
            self._now = now
            if self._to_wall is None:
                offset = time.time() - now
                self._to_wall = lambda t: offset + t
            reply = ctl.send(self.link, {"cmd": "heartbeat"})
            if not reply.get("ok"):
                raise SessionError(f"start: {reply.get('error', 'controller unreachable')}")
            self._status = reply.get("status", {})
            if self._status.get("state") == ctl.FAULT:
                raise SessionError(
                    f"start: the controller is in FAULT ({self._status.get('fault')}):"
                    " empty the cuff and reset it first"
                )
            self._ctrl_t0 = float(self._status.get("t", 0.0))
            # Alarms already on the board belong to whatever ran before this session.
            for alarm in self._status.get("alarms", []):
                self._alarms_seen.add((alarm["code"], alarm["since"]))
            self._check_screening()

    def tick(self, now: float) -> None:
        """Advance to `now`: heartbeat, trace, alarms, limits, then the current phase."""
        with self._lock:
            if self._phase in (Phase.NOT_STARTED, Phase.FINISHED):
                return
            dt = max(0.0, now - self._now)
            self._now = now
            try:
                self._tick(dt)
            except BaseException:
                # Whatever broke, the cuff must not stay up behind it.
                self._send_deflate("runner error")
                raise

    def close(self, error: BaseException | None = None) -> None:
        """End the session if it is still running (outcome "aborted") and always send deflate."""
        with self._lock:
            self._send_deflate("close")
            if self._phase in (Phase.NOT_STARTED, Phase.FINISHED):
                return
            reason = "closed before the end"
            if error is not None:
                reason = f"software error: {type(error).__name__}: {error}"[:500]
            try:
                self._finish("aborted", reason)
            except Exception:
                log.exception("could not record the end of session %s", self.session_id)

    def __enter__(self) -> SessionRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(exc)

    # ---------------------------------------------------------------- public: clinician

    def override_screening(self, by: str, reason: str) -> None:
        """Allow BFR despite a blocking screening; the written reason goes to the audit trail."""
        with self._lock:
            current = self._blocked_screening()
            try:
                done = screening.override(
                    self.store, current.id, by=by, reason=reason, at=self._wall()
                )
            except screening.ScreeningError as exc:
                raise SessionError(str(exc)) from None
            self._store("screening", "screening.override", {"screening_id": done.id, "by": by})
            self._check_screening()

    def confirm_caution(self, by: str, note: str = "") -> None:
        """A clinician accepts the cautions of the screening (audit trail)."""
        with self._lock:
            current = self._blocked_screening()
            try:
                done = screening.confirm_caution(
                    self.store, current.id, by=by, note=note, at=self._wall()
                )
            except screening.ScreeningError as exc:
                raise SessionError(str(exc)) from None
            detail = {"screening_id": done.id, "by": by}
            self._store("screening", "screening.caution_confirmed", detail)
            self._check_screening()

    def recheck_screening(self) -> None:
        """Look again, e.g. after the clinician recorded a new screening."""
        with self._lock:
            self._require(Phase.SCREENING)
            self._check_screening()

    def accept_lop(self) -> None:
        """Use the flagged pair (their mean) or the single good reading."""
        with self._lock:
            self._require(Phase.LOP_REVIEW)
            self._store("input", "input.accept_lop", {"reason": self._lop_reason})
            if self._lop_pending is not None:
                self._use_lop(self._lop_pending, "measured")
            elif len(self._lop_readings) == 1:
                self._use_lop(self._insert_lop(self._lop_readings[0], None), "measured")
            else:
                raise SessionError("accept_lop: there is no reading to accept")

    def remeasure_lop(self) -> None:
        """Discard the readings of this round (they stay on record) and measure twice again."""
        with self._lock:
            self._require(Phase.LOP_REVIEW)
            self._store("input", "input.remeasure_lop", {"reason": self._lop_reason})
            self._lop_readings, self._lop_attempts, self._lop_pending = [], 0, None
            self._lop_rest()

    def enter_lop(
        self,
        first_mmhg: float,
        second_mmhg: float | None = None,
        *,
        method: str = "doppler",
        by: str | None = None,
    ) -> None:
        """A LOP the clinician measured (handheld Doppler) for this limb, cuff and posture."""
        with self._lock:
            self._require(Phase.LOP_REVIEW)
            try:
                lop = records.insert_lop(
                    self.store,
                    patient_id=self.plan.patient_id,
                    limb=self.plan.limb,
                    side=self.plan.side,
                    posture=self.plan.posture,
                    cuff=self.plan.cuff,
                    first_mmhg=first_mmhg,
                    second_mmhg=second_mmhg,
                    method=method,
                    measured_by=by or self.plan.clinician,
                    at=self._wall(),
                )
            except records.RecordError as exc:
                raise SessionError(str(exc)) from None
            self._store("lop", "lop.stored", self._lop_detail(lop))
            self._use_lop(lop, "entered")

    def use_recorded_lop(self) -> None:
        """Use the newest LOP on record for this limb, side, posture and cuff, if recent."""
        with self._lock:
            self._require(Phase.LOP_REVIEW)
            if not self._use_recorded():
                raise SessionError("use_recorded_lop: no recent LOP on record for this cuff")

    def end_exercise(self, reason: str = "clinician") -> None:
        """Stop the current exercise now: the set ends, the cuff empties, the plan goes on."""
        with self._lock:
            self._require(Phase.SET, Phase.REST, Phase.PAUSED)
            self._store("input", "input.end_exercise", {"reason": reason})
            self._stop_exercise("clinician")

    def abort(self, by: str, reason: str) -> None:
        """A clinician ends the session early: deflate first, then outcome "aborted" (audit)."""
        with self._lock:
            if self._phase in (Phase.NOT_STARTED, Phase.FINISHED):
                raise SessionError("abort: no session is running")
            if not by.strip() or not reason.strip():
                raise SessionError("abort: say who aborts and why")
            self._send_deflate("abort")
            self._finish("aborted", reason.strip(), aborted_by=by.strip())

    # ---------------------------------------------------------------- public: patient

    def confirm_cuff(self) -> None:
        """The cuff is on as shown: go on to the LOP."""
        with self._lock:
            self._require(Phase.CUFF_PLACEMENT)
            self._store("input", "input.cuff_placed", {})
            self._begin_lop()

    def rate(self, rpe: int | None, pain: int | None) -> None:
        """Effort (RPE) and discomfort of the last set, 0-10 each (None: not answered)."""
        with self._lock:
            pending = self._pending_rating
            if pending is None:
                raise SessionError("rate: no set is waiting for a rating")
            try:
                records.rate_set(self.store, pending.id, rpe=rpe, pain=pain)
            except records.RecordError as exc:
                raise SessionError(str(exc)) from None
            self._pending_rating = None
            detail = {
                "set_id": pending.id,
                "exercise_index": pending.exercise_index,
                "set_index": pending.set_index,
                "rpe": rpe,
                "pain": pain,
            }
            self._store("input", "input.rating", detail)
            exercise_running = pending.exercise_index == self._ex_i and (
                self._phase == Phase.REST
                or (self._phase == Phase.PAUSED and self._paused_from == Phase.REST)
            )
            if pain is not None and pain > PAIN_STOP_ABOVE:
                self._store("limit", "limit.pain", detail)
                if exercise_running:
                    self._stop_exercise("pain")
                    return
            self._show_phase_prompt()

    def end_set(self) -> None:
        """The patient cannot go on with this set: it ends with the reps done so far."""
        with self._lock:
            self._require(Phase.SET)
            self._store("input", "input.end_set", {})
            self._complete_set("patient")

    def pause(self) -> None:
        """Freeze the set or countdown; the cuff holds for at most the rest time, then empties."""
        with self._lock:
            self._require(*_PAUSABLE)
            self._freeze()
            hold = self._pause_hold_s() if self._cuff_inflated else 0.0
            self._store("input", "input.pause", {"from": self._phase.value, "hold_s": hold})
            self._set_phase(Phase.PAUSED)
            if self._cuff_inflated and hold > 0:
                self._pause_deflate_at = self._now + hold
                self._show(prompts.PAUSED, hold_s=hold)
            else:
                self._pause_deflate_at = None
                self._deflate("pause")
                self._show(prompts.PAUSED_DEFLATED)

    def _freeze(self) -> None:
        """Stop the clocks of the phase being paused: its timer and its set's metronome."""
        self._paused_from = self._phase
        self._pause_t = self._now
        self._freeze_timer()
        if self._set is not None and self._set.metronome is not None:
            self._set.metronome.pause()

    def resume(self) -> None:
        """Carry on where the pause began, re-inflating first if the cuff was emptied."""
        with self._lock:
            self._require(Phase.PAUSED)
            if self._link_down_since is not None:
                raise SessionError("the pressure controller is not answering: wait for it")
            origin = self._paused_from
            assert origin is not None
            paused_for = self._now - self._pause_t
            if self._set is not None:
                self._set.paused_s += paused_for
            self._paused_from = None
            self._pause_deflate_at = None
            self._store("input", "input.resume", {"to": origin.value, "paused_s": paused_for})
            self._clear_cuff_lost()
            if origin in (Phase.SET, Phase.INFLATING) and not self._cuff_inflated:
                self._inflate(then=self._after_inflate if origin == Phase.INFLATING else Phase.SET)
            elif origin == Phase.SET:
                self._resume_set()
            else:
                self._set_phase(origin)
                if origin != Phase.INFLATING:
                    self._run_timer()
                self._show_phase_prompt()

    # ---------------------------------------------------------------- the tick

    def _tick(self, dt: float) -> None:
        if not self._heartbeat():
            return
        st = self._status
        if self._trace is not None:
            self._trace.add(self._now, st.get("mmHg"))
        self._watch_alarms()
        if st.get("state") == ctl.FAULT:
            self._end_by_fault()
            return
        if self._cuff_lost():
            return
        self._count_occlusion(dt)
        if self._occlusion_limit_reached():
            return
        handler = {
            Phase.LOP_MEASURING: self._tick_lop_measuring,
            Phase.LOP_REST: self._tick_lop_rest,
            Phase.INFLATING: self._tick_inflating,
            Phase.SET: self._tick_set,
            Phase.REST: self._tick_rest,
            Phase.PAUSED: self._tick_paused,
            Phase.RELEASING: self._tick_releasing,
            Phase.REPERFUSION: self._tick_reperfusion,
        }.get(self._phase)
        if handler is not None:
            handler()
        self._countdown_event()

    def _heartbeat(self) -> bool:
        reply = ctl.send(self.link, {"cmd": "heartbeat"})
        if reply.get("ok"):
            self._status = reply.get("status", self._status)
            if self._link_down_since is not None:
                self._link_back()
            return True
        if self._link_down_since is None:
            self._link_down_since = self._now
            log.warning("controller link down: %s", reply.get("error"))
            self._link_lost(str(reply.get("error", "")))
        elif self._now - self._link_down_since >= LINK_LOSS_S:
            code = "CONTROLLER_UNREACHABLE"
            self._record_alarm(code, str(reply.get("error", "")), latched=True)
            self._finish("alarm", f"{code}: {reply.get('error', '')}", code=code)
        return False

    def _link_lost(self, error: str) -> None:
        """No answer from the controller: freeze the set at once, so no rep or second counts
        while nobody knows what the cuff holds, and wait for it (LINK_LOSS_S)."""
        self._store("controller", "controller.link_down", {"error": error})
        if self._phase not in _CUFF_PHASES:
            return
        self._pause_here()
        self._show(prompts.CONTROLLER_LINK, limit_s=LINK_LOSS_S)

    def _pause_here(self) -> None:
        """The runner's own pause, for what it cannot go on through: freeze the phase under
        way (a pause already under way keeps its clocks and its hold)."""
        if self._phase != Phase.PAUSED:
            self._freeze()
            self._set_phase(Phase.PAUSED)
            self._pause_deflate_at = None

    def _link_back(self) -> None:
        """The controller answers again: the session stays paused for the clinician.

        A cuff it no longer holds is a cuff lost (the tick decides that next); one it still
        holds is held for at most what a pause allows, counted from when the pause began.
        """
        down_s = self._now - (self._link_down_since or self._now)
        self._link_down_since = None
        self._store("controller", "controller.link_back", {"down_s": down_s})
        if self._phase != Phase.PAUSED:
            return
        if not self._cuff_inflated:
            self._show(prompts.PAUSED_DEFLATED)
            return
        if self._status.get("state") not in (ctl.INFLATING, ctl.HOLDING):
            return
        if self._pause_deflate_at is None:
            hold = self._pause_hold_s()
            if hold <= 0:
                self._deflate("pause")
                self._show(prompts.PAUSED_DEFLATED)
                return
            self._pause_deflate_at = self._pause_t + hold
        self._show(prompts.PAUSED, hold_s=max(0.0, self._pause_deflate_at - self._now))

    def _watch_alarms(self) -> None:
        current = {(a["code"], a["since"]): a for a in self._status.get("alarms", [])}
        for key, alarm in current.items():
            if key in self._alarms_seen:
                continue
            self._alarms_seen.add(key)
            self._alarm_rows[key] = self._record_alarm(
                alarm["code"], alarm.get("message", ""), latched=bool(alarm.get("latched"))
            )
        for key in [k for k in self._alarm_rows if k not in current]:
            self._clear_alarm(key[0], self._alarm_rows.pop(key))

    def _clear_alarm(self, code: str, alarm_id: int) -> None:
        records.clear_alarm(self.store, alarm_id, at=self._wall())
        self._store("alarm", "alarm.cleared", {"code": code, "alarm_id": alarm_id})

    def _cuff_lost(self) -> bool:
        """The cuff emptied without the runner asking: pause, so no rep counts without pressure.

        The controller is idle while the runner holds the cuff when another client deflated it,
        or when the controller restarted (its start-up empties the cuff, and its first reading
        faults only if pressure is still there). The set stops counting and the clinician
        decides: resume inflates again (configuring a controller that forgot the session), or
        end the exercise.
        """
        if not self._cuff_inflated or self._phase not in _CUFF_PHASES:
            return False
        if self._phase == Phase.INFLATING and not self._inflate_sent:
            return False
        state = self._status.get("state")
        # A restarted controller answers before its first reading: that reading decides,
        # a FAULT if the cuff is still tight (which ends the session), or an empty cuff.
        if state in (ctl.INFLATING, ctl.HOLDING) or self._status.get("mmHg") is None:
            return False
        self._send_deflate("cuff lost")
        self._needs_configure = True
        detail = {"phase": self._phase.value, "state": state, "mmHg": self._status.get("mmHg")}
        self._store("cuff", "cuff.lost", detail)
        self._clear_cuff_lost()
        message = f"the cuff emptied without the session asking (controller {state})"
        self._cuff_lost_alarm = self._record_alarm(CUFF_LOST, message, latched=False)
        self._pause_here()
        self._pause_deflate_at = None  # nothing left to hold: the cuff is empty
        self._show(prompts.CUFF_LOST, reason=f"controller {state}")
        return True

    def _clear_cuff_lost(self) -> None:
        """The clinician resumed, or the exercise or session ended: CUFF_LOST is over."""
        if self._cuff_lost_alarm is not None:
            self._clear_alarm(CUFF_LOST, self._cuff_lost_alarm)
            self._cuff_lost_alarm = None

    def _record_alarm(self, code: str, message: str, *, latched: bool) -> int:
        row = records.record_alarm(
            self.store,
            code=code.lower(),
            message=message,
            session_id=self.session_id,
            detail={"controller_code": code, "latched": latched},
            at=self._wall(),
        )
        detail = {"code": code, "message": message, "latched": latched, "alarm_id": row.id}
        self._store("alarm", "alarm.raised", detail)
        return row.id

    def _end_by_fault(self) -> None:
        code = str(self._status.get("fault") or "FAULT")
        message = next(
            (a.get("message", "") for a in self._status.get("alarms", []) if a["code"] == code),
            "",
        )
        self._finish("alarm", f"{code}: {message}".strip(), code=code)

    def _count_occlusion(self, dt: float) -> None:
        mmhg = self._status.get("mmHg")
        pressurised = self._cuff_inflated or (mmhg is not None and mmhg > ctl.PRESSURISED_MMHG)
        if pressurised:
            self._occlusion_s += dt
            self._deflated_s = 0.0
            return
        self._deflated_s += dt
        ex = self._exercise if self._ex_i is not None else None
        if self._deflated_s >= (release_s(ex) if ex is not None else 180.0):
            self._occlusion_s = 0.0

    def _occlusion_limit_reached(self) -> bool:
        if self._ex_i is None or not self._cuff_inflated or self._phase not in _CUFF_PHASES:
            return False
        limit = self._exercise.max_occlusion_s
        if self._occlusion_s < limit - OCCLUSION_MARGIN_S:
            return False
        self._store(
            "limit", "limit.occlusion", {"occlusion_s": self._occlusion_s, "limit_s": limit}
        )
        self._stop_exercise("occlusion_limit")
        return True

    # ---------------------------------------------------------------- screening and session

    def _check_screening(self) -> None:
        plan = self.plan
        try:
            cleared = screening.require_clearance(
                self.store, plan.patient_id, limb=plan.limb, side=plan.side, now=self._wall()
            )
        except screening.ScreeningBlocked as exc:
            problem = str(exc)
            current = screening.clearance(
                self.store, plan.patient_id, limb=plan.limb, side=plan.side, now=self._wall()
            ).screening
            detail = {
                "patient_id": plan.patient_id,
                "problem": problem,
                "screening_id": current.id if current else None,
                "outcome": current.outcome if current else None,
            }
            self._store("screening", "screening.blocked", detail)
            self._set_phase(Phase.SCREENING)
            self._show(
                prompts.SCREENING_BLOCKED,
                problem=problem,
                can_override=bool(current and current.outcome == screening.Outcome.BLOCKED),
                can_confirm=bool(current and current.outcome == screening.Outcome.CAUTION),
            )
            return
        self._open_session(cleared)

    def _blocked_screening(self) -> records.Screening:
        self._require(Phase.SCREENING)
        plan = self.plan
        current = screening.clearance(
            self.store, plan.patient_id, limb=plan.limb, side=plan.side, now=self._wall()
        ).screening
        if current is None:
            raise SessionError("no screening for this limb and side: record one first")
        return current

    def _open_session(self, cleared: records.Screening) -> None:
        plan = self.plan
        snapshot = replace(plan.protocol, exercises=self._exercises).to_dict()
        self._session = records.start_session(
            self.store,
            patient_id=plan.patient_id,
            screening_id=cleared.id,
            protocol=snapshot,
            limb=plan.limb,
            side=plan.side,
            posture=plan.posture,
            cuff=plan.cuff,
            clinician=plan.clinician,
            pct_lop=plan.pct_lop,
            at=self._wall(),
        )
        recorder = TraceRecorder(self.store, self._session.id, rate_hz=plan.trace_hz)
        assert self._to_wall is not None
        self._trace = TraceSampler(recorder, self._to_wall, plan.trace_hz)
        assert plan.pct_lop is not None
        if plan.pct_lop > 80.0 and plan.above_80_reason.strip():
            audit.record_audit(
                self.store,
                actor=plan.clinician,
                action=ABOVE_80_ACTION,
                subject=f"session:{self._session.id}",
                reason=plan.above_80_reason.strip(),
                detail={"pct_lop": plan.pct_lop, "protocol": plan.protocol.name},
                at=self._wall(),
            )
        detail = {
            "protocol": plan.protocol.name,
            "protocol_version": plan.protocol.version,
            "limb": plan.limb,
            "side": plan.side,
            "posture": plan.posture,
            "cuff": plan.cuff,
            "pct_lop": plan.pct_lop,
            "screening_id": cleared.id,
            "screening_outcome": cleared.outcome,
            "override_by": cleared.override_by,
            "override_reason": cleared.override_reason,
            "caution_confirmed_by": cleared.confirmed_by,
        }
        self._store("session", "session.start", detail)
        self._set_phase(Phase.CUFF_PLACEMENT)
        self._show(
            prompts.PLACE_CUFF,
            limb=plan.limb,
            side=plan.side,
            posture=plan.posture,
            cuff=plan.cuff,
            picture=prompts.cuff_picture(plan.limb, plan.side),
        )

    # ---------------------------------------------------------------- LOP

    def _begin_lop(self) -> None:
        if self.plan.lop_source == "recorded" and self._use_recorded():
            return
        self._lop_readings, self._lop_attempts, self._lop_pending = [], 0, None
        self._measure_next()

    def _use_recorded(self) -> bool:
        plan = self.plan
        lop = records.latest_lop(
            self.store,
            plan.patient_id,
            limb=plan.limb,
            side=plan.side,
            posture=plan.posture,
            cuff=plan.cuff,
        )
        if lop is None or self._wall() - lop.at > plan.recorded_lop_max_age_s:
            self._store("lop", "lop.no_recent_record", {"max_age_s": plan.recorded_lop_max_age_s})
            return False
        self._use_lop(lop, "recorded")
        return True

    def _measure_next(self) -> None:
        self._lop_sent = False
        self._set_phase(Phase.LOP_MEASURING)
        reading = len(self._lop_readings) + 1
        self._show(prompts.LOP_RELAX, reading=reading, limb=self.plan.limb, side=self.plan.side)
        self._tick_lop_measuring()

    def _tick_lop_measuring(self) -> None:
        state = self._status.get("state")
        if not self._lop_sent:
            if state != ctl.IDLE:
                return  # still emptying after the last reading
            plan = self.plan
            reply = self._command(
                {
                    "cmd": "measure_lop",
                    "limb": plan.limb,
                    "side": plan.side,
                    "posture": plan.posture,
                    "cuff": plan.cuff,
                }
            )
            if ctl.unavailable(reply):
                self._store("lop", "lop.unavailable", {"error": reply.get("error", "")})
                self._lop_review("unavailable")
            elif not reply.get("ok"):
                self._lop_review(f"refused: {reply.get('error', '')}")
            else:
                self._lop_sent, self._lop_sent_t = True, self._now
                self._lop_attempts += 1
            return
        if state == ctl.IDLE:
            self._lop_result(self._status.get("last_lop") or {})
        elif self._now - self._lop_sent_t > LOP_TIMEOUT_S:
            self._send_deflate("lop timeout")
            self._lop_result({"lop_mmHg": None, "reason": "timed out"})

    def _lop_result(self, result: dict[str, Any]) -> None:
        value = result.get("lop_mmHg")
        low, high = LOP_RANGE_MMHG
        good = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and low <= value <= high
        )
        detail = {k: v for k, v in result.items() if isinstance(v, str | int | float | bool)}
        detail |= {"attempt": self._lop_attempts, "reading": len(self._lop_readings) + 1}
        if good:
            self._lop_readings.append(float(value))
            self._store("lop", "lop.reading", detail)
        else:
            self._store("lop", "lop.failed", detail)
        if len(self._lop_readings) == 2:
            lop = self._insert_lop(*self._lop_readings)
            if lop.spread_flag:
                self._lop_pending = lop
                self._lop_review("spread")
            else:
                self._use_lop(lop, "measured")
        elif self._lop_attempts >= MAX_LOP_ATTEMPTS:
            self._lop_review(str(result.get("reason") or "not measured"))
        else:
            self._lop_rest()

    def _lop_rest(self) -> None:
        self._set_phase(Phase.LOP_REST)
        self._start_timer(self.plan.lop_rest_s)
        self._show(prompts.LOP_REST, seconds=self.plan.lop_rest_s)

    def _tick_lop_rest(self) -> None:
        if self._timer_done():
            self._measure_next()

    def _insert_lop(self, first: float, second: float | None) -> LopMeasurement:
        plan = self.plan
        lop = records.insert_lop(
            self.store,
            patient_id=plan.patient_id,
            limb=plan.limb,
            side=plan.side,
            posture=plan.posture,
            cuff=plan.cuff,
            first_mmhg=first,
            second_mmhg=second,
            method="oscillometric",
            measured_by=plan.clinician,
            at=self._wall(),
        )
        self._store("lop", "lop.stored", self._lop_detail(lop))
        return lop

    def _lop_review(self, reason: str) -> None:
        self._lop_reason = reason
        self._set_phase(Phase.LOP_REVIEW)
        pending = self._lop_pending
        if reason == "spread" and pending is not None and pending.second_mmhg is not None:
            self._show(
                prompts.LOP_SPREAD,
                first_mmhg=pending.first_mmhg,
                second_mmhg=pending.second_mmhg,
                spread_mmhg=pending.spread_mmhg,
            )
        else:
            self._show(prompts.LOP_NEEDED, reason=reason, readings=list(self._lop_readings))

    def _use_lop(self, lop: LopMeasurement, source: str) -> None:
        assert self._session is not None and self.plan.pct_lop is not None
        pct = self.plan.pct_lop
        # Round down to 0.1 mmHg: the controller refuses anything above LOP x % LOP.
        target = math.floor(lop.lop_mmhg * pct / 10.0) / 10.0
        self._session = records.set_session_target(
            self.store, self._session.id, lop_id=lop.id, pct_lop=pct, target_mmhg=target
        )
        self._lop, self._target = lop, target
        detail = self._lop_detail(lop) | {"source": source, "pct_lop": pct, "target_mmhg": target}
        self._store("lop", "lop.used", detail)
        self._begin_exercise(0)

    @staticmethod
    def _lop_detail(lop: LopMeasurement) -> dict[str, Any]:
        return {
            "lop_id": lop.id,
            "lop_mmhg": lop.lop_mmhg,
            "first_mmhg": lop.first_mmhg,
            "second_mmhg": lop.second_mmhg,
            "spread_mmhg": lop.spread_mmhg,
            "spread_flag": lop.spread_flag,
            "method": lop.method,
            "at": lop.at,
        }

    # ---------------------------------------------------------------- exercises and sets

    @property
    def _exercise(self) -> Exercise:
        assert self._ex_i is not None
        return self._exercises[self._ex_i]

    def _begin_exercise(self, index: int) -> None:
        self._ex_i, self._set_i = index, 0
        ex = self._exercise
        detail = {
            "exercise_index": index,
            "exercise": ex.name,
            "title": ex.title,
            "sets": len(ex.sets),
            "cadence_s": ex.cadence_s,
            "max_occlusion_s": ex.max_occlusion_s,
        }
        self._store("exercise", "exercise.start", detail)
        self._needs_configure = True
        self._inflate(then=Phase.SET)

    def _inflate(self, then: Phase) -> None:
        self._after_inflate = then
        self._inflate_sent = False
        self._set_phase(Phase.INFLATING)
        self._show(prompts.INFLATING, target_mmhg=self._target, exercise=self._exercise.title)
        self._tick_inflating()

    def _tick_inflating(self) -> None:
        state = self._status.get("state")
        if not self._inflate_sent:
            if self._needs_configure or not self._controller_configured():
                if state != ctl.IDLE:
                    if self._now - self._phase_since > DEFLATE_TIMEOUT_S:
                        self._fail("DEFLATE_TIMEOUT", "the cuff did not empty before configuring")
                    return
                if not self._configure():
                    return
            assert self._target is not None
            reply = self._command({"cmd": "inflate", "target_mmHg": self._target})
            if not reply.get("ok"):
                self._fail("COMMAND_REFUSED", f"inflate: {reply.get('error', '')}")
                return
            self._inflate_sent, self._inflate_t = True, self._now
            self._cuff_inflated = True
            return
        if state == ctl.HOLDING:
            self._store("cuff", "cuff.at_pressure", {"mmHg": self._status.get("mmHg")})
            if self._after_inflate == Phase.SET:
                if self._set is None:
                    self._start_set()
                else:
                    self._resume_set()
            else:
                self._set_phase(self._after_inflate)
                self._run_timer()
                self._show_phase_prompt()
        elif self._now - self._inflate_t > INFLATE_TIMEOUT_S:
            self._fail("INFLATE_TIMEOUT", "the cuff did not reach its pressure")

    def _controller_configured(self) -> bool:
        """Whether the controller still holds this session's LOP and limb (a restart forgets)."""
        assert self._lop is not None
        st = self._status
        return st.get("lop_mmHg") == self._lop.lop_mmhg and st.get("limb") == self.plan.limb

    def _configure(self) -> bool:
        assert self._lop is not None and self.plan.pct_lop is not None
        ex = self._exercise
        reply = self._command(
            {
                "cmd": "configure",
                "limb": self.plan.limb,
                "lop_mmHg": self._lop.lop_mmhg,
                "max_pct_lop": self.plan.pct_lop,
                "allow_above_80": self.plan.pct_lop > 80.0,
                "occlusion_limit_s": ex.max_occlusion_s,
                "reperfusion_s": release_s(ex),
            }
        )
        if not reply.get("ok"):
            self._fail("COMMAND_REFUSED", f"configure: {reply.get('error', '')}")
            return False
        self._needs_configure = False
        return True

    def _start_set(self) -> None:
        ex = self._exercise
        spec = ex.sets[self._set_i]
        metronome = None
        if spec.reps is not None:
            cadence = ex.cadence_s or 2.0
            metronome = Metronome(spec.reps, cadence, self._now, self.plan.lead_in_s)
        self._set = _SetProgress(self._now, self._wall(), metronome)
        if spec.duration_s is not None:
            self._start_timer(spec.duration_s)
        self._set_phase(Phase.SET)
        detail = {
            "exercise_index": self._ex_i,
            "set_index": self._set_i,
            "reps": spec.reps,
            "duration_s": spec.duration_s,
            "cadence_s": ex.cadence_s,
        }
        self._store("set", "set.start", detail)
        self._show_phase_prompt()

    def _resume_set(self) -> None:
        assert self._set is not None
        if self._set.metronome is not None:
            self._set.metronome.resume(self._now, self.plan.lead_in_s)
        self._set_phase(Phase.SET)
        self._run_timer()
        self._show_phase_prompt()

    def _tick_set(self) -> None:
        progress = self._set
        assert progress is not None
        metronome = progress.metronome
        if metronome is not None:
            for beat in metronome.due(self._now):
                detail = {
                    "rep": beat.rep,
                    "phase": beat.phase,
                    "reps": metronome.reps,
                    "set_index": self._set_i,
                    "exercise_index": self._ex_i,
                }
                self._store("rep", f"rep.{beat.phase}", detail, t=beat.t)
            if metronome.finished:
                self._complete_set("done")
        elif self._timer_done():
            self._complete_set("done")

    def _finish_set(self, ended_by: str) -> SetRecord | None:
        """Store the set in progress (also a partial one) and ask for its rating."""
        progress = self._set
        if progress is None or self._ex_i is None:
            return None
        self._set = None
        ex = self._exercise
        spec = ex.sets[self._set_i]
        metronome = progress.metronome
        paused = progress.paused_s + (
            self._now - self._pause_t if self._phase == Phase.PAUSED else 0.0
        )
        record = records.record_set(
            self.store,
            session_id=self._session.id if self._session else 0,
            exercise_index=self._ex_i,
            exercise=ex.name,
            set_index=self._set_i,
            started_at=progress.started_at,
            ended_at=max(progress.started_at, self._wall()),
            reps_target=spec.reps,
            reps_done=metronome.done if metronome is not None else None,
            duration_s=round(max(0.0, self._now - progress.started_t - paused), 3),
        )
        self._sets.append(record)
        self._pending_rating = record
        detail = {
            "set_id": record.id,
            "exercise_index": record.exercise_index,
            "set_index": record.set_index,
            "reps_target": record.reps_target,
            "reps_done": record.reps_done,
            "duration_s": record.duration_s,
            "ended_by": ended_by,
        }
        self._store("set", "set.done", detail)
        return record

    def _complete_set(self, ended_by: str) -> None:
        self._finish_set(ended_by)
        if self._set_i >= len(self._exercise.sets) - 1:
            self._end_exercise("done")
        else:
            self._enter_rest()

    def _enter_rest(self) -> None:
        ex = self._exercise
        rest = ex.sets[self._set_i].rest_after_s
        self._set_i += 1
        self._rest_overdue_deflated = False
        self._set_phase(Phase.REST)
        self._start_timer(rest)
        if not ex.inflate_during_rest:
            self._deflate("rest")
        self._show_phase_prompt()

    def _tick_rest(self) -> None:
        if not self._timer_done():
            return
        if self._pending_rating is not None:
            overdue = self._now - (self._timer_end or self._now)
            hold = self._exercise.sets[self._set_i - 1].rest_after_s
            if self._cuff_inflated and not self._rest_overdue_deflated and overdue >= hold:
                self._rest_overdue_deflated = True
                self._store("limit", "limit.rating_overdue", {"waited_s": overdue})
                self._deflate("rating overdue")
            return
        if self._cuff_inflated:
            self._start_set()
        else:
            self._inflate(then=Phase.SET)

    def _stop_exercise(self, ended_by: str) -> None:
        """End the exercise early: the set in progress is stored as it stands."""
        if self._set is not None:
            self._finish_set(ended_by)
        self._end_exercise(ended_by)

    def _end_exercise(self, ended_by: str) -> None:
        assert self._ex_i is not None
        ex = self._exercise
        self._ended_by[self._ex_i] = ended_by
        self._clear_cuff_lost()
        self._paused_from = None
        self._pause_deflate_at = None
        self._timer_end = self._timer_left = None
        done = sum(1 for s in self._sets if s.exercise_index == self._ex_i)
        detail = {
            "exercise_index": self._ex_i,
            "exercise": ex.name,
            "ended_by": ended_by,
            "sets_done": done,
            "sets_planned": len(ex.sets),
        }
        self._store("exercise", "exercise.end", detail)
        self._deflate(ended_by)
        self._released = False
        self._set_phase(Phase.RELEASING)
        self._show_phase_prompt()

    def _tick_releasing(self) -> None:
        assert self._ex_i is not None
        if not self._released:
            if self._status.get("state") != ctl.IDLE:
                if self._now - self._phase_since > DEFLATE_TIMEOUT_S:
                    self._fail("DEFLATE_TIMEOUT", "the cuff did not empty")
                return
            self._released = True
            self._store("cuff", "cuff.empty", {"mmHg": self._status.get("mmHg")})
            if self._ex_i + 1 < len(self._exercises):
                self._set_phase(Phase.REPERFUSION)
                self._start_timer(self._exercise.reperfusion_after_s)
                self._show_phase_prompt()
                return
        if self._pending_rating is None:
            self._wrap_up()

    def _tick_reperfusion(self) -> None:
        assert self._ex_i is not None
        if not self._timer_done() or self._pending_rating is not None:
            return
        occluded = float(self._status.get("occlusion_s") or 0.0)
        overdue = self._now - (self._timer_end or self._now)
        if occluded > 0 and overdue < REPERFUSION_GRACE_S:
            return  # the controller's occlusion clock resets a tick or two later than ours
        self._timer_end = None
        self._begin_exercise(self._ex_i + 1)

    def _tick_paused(self) -> None:
        if self._pause_deflate_at is not None and self._now >= self._pause_deflate_at:
            self._pause_deflate_at = None
            self._store("limit", "limit.pause_hold", {"held_s": self._now - self._pause_t})
            self._deflate("pause")
            self._show(prompts.PAUSED_DEFLATED)

    def _pause_hold_s(self) -> float:
        """A pause holds pressure as long as a rest would, and not where rests deflate."""
        if self._ex_i is None or self._paused_from not in (Phase.SET, Phase.REST, Phase.INFLATING):
            return 0.0
        ex = self._exercise
        if not ex.inflate_during_rest:
            return 0.0
        index = min(self._set_i, len(ex.sets) - 1)
        if self._paused_from == Phase.REST:
            index = max(0, self._set_i - 1)
        rest = ex.sets[index].rest_after_s
        return rest if rest > 0 else DEFAULT_REST_S

    # ---------------------------------------------------------------- the end

    def _wrap_up(self) -> None:
        early = {i: why for i, why in self._ended_by.items() if why != "done"}
        if not early:
            self._finish("completed", "")
            return
        reason = "; ".join(f"{self._exercises[i].name}: {why}" for i, why in sorted(early.items()))
        self._finish("stopped", reason)

    def _fail(self, code: str, message: str) -> None:
        """The runner's own alarm (the controller stayed silent): record it and end."""
        self._send_deflate(code.lower())
        self._record_alarm(code, message, latched=True)
        self._finish("alarm", f"{code}: {message}", code=code)

    def _finish(
        self,
        outcome: str,
        reason: str,
        *,
        code: str | None = None,
        aborted_by: str | None = None,
    ) -> None:
        if self._phase == Phase.FINISHED:
            return
        self._send_deflate(outcome)
        self._clear_cuff_lost()
        if self._ex_i is not None and self._ex_i not in self._ended_by:
            if self._set is not None:
                self._finish_set(outcome)
            self._ended_by[self._ex_i] = outcome
            ex = self._exercise
            detail = {
                "exercise_index": self._ex_i,
                "exercise": ex.name,
                "ended_by": outcome,
                "sets_done": sum(1 for s in self._sets if s.exercise_index == self._ex_i),
                "sets_planned": len(ex.sets),
            }
            self._store("exercise", "exercise.end", detail)
        self._outcome, self._end_reason = outcome, reason
        session = self._session
        if session is not None:
            if self._trace is not None:
                self._trace.flush()
            if aborted_by is not None:
                records.abort_session(
                    self.store, session.id, by=aborted_by, reason=reason, at=self._wall()
                )
            else:
                records.end_session(
                    self.store, session.id, outcome=outcome, reason=reason, at=self._wall()
                )
        elif aborted_by is not None:
            audit.record_audit(
                self.store,
                actor=aborted_by,
                action=audit.SESSION_ABORT,
                subject=f"patient:{self.plan.patient_id}",
                reason=reason,
                detail={"phase": self._phase.value, "protocol": self.plan.protocol.name},
                at=self._wall(),
            )
        self._store("session", "session.end", {"outcome": outcome, "reason": reason, "code": code})
        self._set_phase(Phase.FINISHED)
        if outcome == "alarm":
            self._show(prompts.SESSION_ALARM, code=code or "", message=reason)
        else:
            self._show(prompts.SESSION_DONE, outcome=outcome)
        if session is not None:
            self._summary = session_summary(self.store, session.id)
        else:
            self._summary = {"session_id": None, "outcome": outcome, "reason": reason}

    # ---------------------------------------------------------------- controller commands

    def _command(self, message: dict[str, Any], reason: str = "") -> dict[str, Any]:
        reply = ctl.send(self.link, message)
        if reply.get("ok"):
            self._status = reply.get("status", self._status)
        args = {k: v for k, v in message.items() if k != "cmd"}
        detail = args | {"ok": bool(reply.get("ok")), "error": reply.get("error")}
        if reason:
            detail["reason"] = reason
        self._store("controller", f"controller.{message['cmd']}", detail)
        return reply

    def _deflate(self, reason: str) -> None:
        """Empty the cuff as part of the plan (rests, exercise ends, pauses)."""
        if self._cuff_inflated:
            self._cuff_inflated = False
            self._command({"cmd": "deflate"}, reason)

    def _send_deflate(self, reason: str) -> None:
        """The safety path: send deflate whatever the runner believes, never raise."""
        self._cuff_inflated = False
        try:
            reply = ctl.send(self.link, {"cmd": "deflate"})
            if reply.get("ok"):
                self._status = reply.get("status", self._status)
            else:
                log.error("deflate (%s) refused: %s", reason, reply.get("error"))
        except Exception:
            log.exception("deflate (%s) failed", reason)

    # ---------------------------------------------------------------- phases, prompts, timers

    def _set_phase(self, phase: Phase) -> None:
        if phase == self._phase:
            return
        previous, self._phase = self._phase, phase
        self._phase_since = self._now
        detail = {"from": previous.value, "to": phase.value}
        if self._ex_i is not None:
            detail |= {"exercise_index": self._ex_i, "set_index": self._set_i}
        self._store("phase", f"phase.{phase.value}", detail)

    def _show(self, key: str, **params: Any) -> None:
        self._prompt = Prompt(key, params)
        self._store("prompt", f"prompt.{key}", params)

    def _show_phase_prompt(self) -> None:
        phase = self._phase
        ex = self._exercise if self._ex_i is not None else None
        waiting = self._pending_rating
        if waiting is not None and phase in (Phase.REST, Phase.RELEASING, Phase.REPERFUSION):
            self._show(
                prompts.RATE_SET,
                set_number=waiting.set_index + 1,
                exercise=self._exercises[waiting.exercise_index].title,
            )
        elif phase == Phase.SET and ex is not None:
            spec = ex.sets[self._set_i]
            common = {"exercise": ex.title, "set_number": self._set_i + 1, "sets": len(ex.sets)}
            if spec.reps is not None:
                self._show(prompts.DO_REPS, reps=spec.reps, cadence_s=ex.cadence_s, **common)
            else:
                self._show(prompts.TIMED_BOUT, duration_s=spec.duration_s, **common)
        elif phase == Phase.REST and ex is not None:
            spec = ex.sets[self._set_i]
            upcoming = f"{spec.reps} reps" if spec.reps is not None else f"{spec.duration_s:g} s"
            self._show(
                prompts.REST,
                seconds=self._countdown() or 0.0,
                next=upcoming,
                cuff_inflated=self._cuff_inflated,
            )
        elif phase == Phase.RELEASING:
            self._show(prompts.RELEASING)
        elif phase == Phase.REPERFUSION and self._ex_i is not None:
            following = self._exercises[self._ex_i + 1]
            self._show(
                prompts.REPERFUSION, seconds=self._countdown() or 0.0, next_exercise=following.title
            )
        elif phase == Phase.INFLATING:
            self._show(prompts.INFLATING, target_mmhg=self._target, exercise=ex.title if ex else "")
        elif phase == Phase.LOP_REST:
            self._show(prompts.LOP_REST, seconds=self._countdown() or 0.0)

    def _start_timer(self, seconds: float) -> None:
        self._timer_end, self._timer_left = self._now + seconds, None

    def _freeze_timer(self) -> None:
        if self._timer_end is not None:
            self._timer_left = max(0.0, self._timer_end - self._now)
            self._timer_end = None

    def _run_timer(self) -> None:
        if self._timer_left is not None:
            self._timer_end, self._timer_left = self._now + self._timer_left, None

    def _timer_done(self) -> bool:
        return self._timer_end is not None and self._now >= self._timer_end - 1e-6

    def _countdown(self) -> float | None:
        if self._timer_left is not None:
            return round(self._timer_left, 1)
        if self._phase == Phase.SET and self._set is not None and self._set.metronome is not None:
            left = self._set.metronome.lead_in_left(self._now)
            return round(left, 1) if left > 0 else None
        if self._timer_end is not None:
            return round(max(0.0, self._timer_end - self._now), 1)
        return None

    def _countdown_event(self) -> None:
        left = self._countdown()
        whole = None if left is None else math.ceil(left - 1e-6)
        if whole is not None and whole != self._last_countdown:
            self._publish("countdown", "countdown.tick", {"seconds": whole, "phase": self._phase})
        self._last_countdown = whole

    def _actions(self) -> tuple[str, ...]:
        actions = ACTIONS.get(self._phase, ())
        if self._pending_rating is not None:
            actions = ("rate", *actions)
        if self._phase not in (Phase.NOT_STARTED, Phase.FINISHED):
            actions = (*actions, "abort")
        return actions

    def _require(self, *phases: Phase) -> None:
        if self._phase not in phases:
            names = ", ".join(p.value for p in phases)
            raise SessionError(f"not now: the session is {self._phase.value} (needs {names})")

    # ---------------------------------------------------------------- records and events

    def _wall(self, t: float | None = None) -> float:
        assert self._to_wall is not None
        return self._to_wall(self._now if t is None else t)

    def _store(
        self, kind: str, name: str, detail: dict[str, Any], *, t: float | None = None
    ) -> SessionEvent:
        """Write the event, then tell the listeners: what they hear is already on disk."""
        t = self._now if t is None else t
        row = records.record_event(
            self.store,
            kind=kind,
            name=name,
            session_id=self.session_id,
            detail=_plain(detail),
            at=self._wall(t),
        )
        event = SessionEvent(kind, name, t, row.at, row.detail, row.id)
        self._hub.publish(event)
        return event

    def _publish(self, kind: str, name: str, detail: dict[str, Any]) -> None:
        self._hub.publish(SessionEvent(kind, name, self._now, self._wall(), _plain(detail)))


def _plain(detail: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready: enums as their values, floats rounded, non-finite numbers as None."""
    out: dict[str, Any] = {}
    for key, value in detail.items():
        if isinstance(value, Phase):
            value = value.value
        elif isinstance(value, float):
            # float() too: numpy scalars are floats but print and compare as numpy types.
            value = round(float(value), 3) if math.isfinite(value) else None
        out[key] = value
    return out
