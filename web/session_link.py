"""The guided session as the screens see it: one runner at a time, ticked here, pushed to Socket.IO.

The runner (`appliance.sessions.runner`) owns the session's logic and records; this module only
starts it from the console's plan, ticks it from a background thread, forwards its events to the
screens (`session` views, `beat` for the metronome) and hands it the screens' input.

The runner sends the controller heartbeat on every tick. The heartbeat means "a working screen
is in front of the patient", so while no page is alive it is turned into a plain `status`
request: the runner keeps its view of the cuff, and the controller deflates on its timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask_socketio import SocketIO

from appliance.protocols import Protocol
from appliance.sessions.events import SessionEvent
from appliance.sessions.phases import Phase
from appliance.sessions.plan import PlanError, SessionPlan
from appliance.sessions.recovery import end_interrupted_sessions
from appliance.sessions.runner import SessionError, SessionRunner
from appliance.store import Store
from web.controller_link import ControllerLink
from web.settings import WebSettings

log = logging.getLogger("bfr.web.session")

TICK_HZ = 20.0  # the runner's rate: metronome beats land within 50 ms
VIEW_PERIOD_S = 0.25  # countdowns refresh at least this often on screen
PATIENT_ACTIONS = ("confirm_cuff", "rate_set")
RATING_RANGE = (0, 10)


class SessionBusy(RuntimeError):
    """A session is already running; the message says which."""


class SessionLink:
    """Starts, ticks and closes the runner; everything it says reaches the screens."""

    def __init__(
        self,
        settings: WebSettings,
        socketio: SocketIO,
        link: ControllerLink,
        store: Store,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.socketio = socketio
        self.link = link
        self.store = store
        self.clock = clock
        self._runner: SessionRunner | None = None
        self._clinic_id: str | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._dirty = False
        self._thread_started = False

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """At start-up no runner can be alive: sessions still open were cut off by a restart."""
        ended = end_interrupted_sessions(self.store)
        if ended:
            log.warning("ended interrupted session(s) %s as aborted", ended)
        if not self._thread_started:
            self._thread_started = True
            self.socketio.start_background_task(self._tick_loop)

    def close(self) -> None:
        self._closing.set()
        self._wake.set()
        with self._lock:
            runner = self._runner
        if runner is not None:
            runner.close()

    # ---- reading -------------------------------------------------------------------------
    def runner(self) -> SessionRunner | None:
        return self._runner

    def active(self) -> bool:
        """A session is under way (a finished one on screen does not count)."""
        runner = self._runner
        return runner is not None and not runner.finished

    def view(self) -> dict[str, Any]:
        runner = self._runner
        if runner is None:
            return {"active": False}
        out = runner.view().to_dict()
        plan = runner.plan
        index = out.get("exercise_index")
        out.update(
            active=True,
            clinic_id=self._clinic_id,
            protocol=plan.protocol.name,
            protocol_title=plan.protocol.title,
            picture={"limb": plan.limb, "side": plan.side},
            exercise_title=plan.exercises[index].title if index is not None else None,
            summary=runner.summary,
        )
        return out

    # ---- starting ------------------------------------------------------------------------
    def begin(
        self,
        *,
        patient_id: int,
        clinic_id: str,
        protocol: Protocol,
        limb: str,
        side: str,
        posture: str,
        cuff: str,
        clinician: str,
        pct_lop: float | None,
        above_80_reason: str,
        lop_source: str,
    ) -> dict[str, Any]:
        """Check the plan and start the runner; `PlanError`/`SessionError` say what is wrong."""
        plan = SessionPlan(
            patient_id=patient_id,
            protocol=protocol,
            limb=limb,
            side=side,
            posture=posture,
            cuff=cuff,
            clinician=clinician,
            pct_lop=pct_lop,
            above_80_reason=above_80_reason,
            lop_source=lop_source,
        )
        with self._lock:
            if self.active():
                raise SessionBusy("a session is already running: finish or abort it first")
            runner = SessionRunner(self.store, self._runner_request, plan, to_wall=self._to_wall)
            runner.subscribe(self._on_event)
            runner.start(self.clock())
            previous, self._runner, self._clinic_id = self._runner, runner, clinic_id
        if previous is not None:
            previous.close()
        self._changed()
        return self.view()

    def dismiss(self) -> None:
        """Take a finished session off the screens."""
        with self._lock:
            runner = self._runner
            if runner is None:
                return
            if not runner.finished:
                raise SessionError("dismiss: the session is still running")
            self._runner = None
            self._clinic_id = None
        runner.close()
        self._changed()

    # ---- input ---------------------------------------------------------------------------
    def act(self, action: str, **args: Any) -> dict[str, Any]:
        """A clinician's action, named as the runner's method; SessionError if not now."""
        runner = self._require_runner()
        method = getattr(runner, action)
        method(**args)
        self._changed()
        return self.view()

    def patient_input(self, data: Any) -> None:
        """What the patient may do at the screen: say the cuff is on, rate the set."""
        if not isinstance(data, dict):
            raise ValueError("input must be an object with an action")
        action = data.get("action")
        if action not in PATIENT_ACTIONS:
            raise ValueError(f"action: must be one of {', '.join(PATIENT_ACTIONS)}")
        try:
            if action == "confirm_cuff":
                self.act("confirm_cuff")
            else:
                rpe, pain = rating(data.get("rpe")), rating(data.get("pain"))
                self.act("rate", rpe=rpe, pain=pain)
        except (SessionError, PlanError) as exc:
            raise ValueError(str(exc)) from None

    def on_stop(self, source: str) -> None:
        """STOP went to the controller; tick now so the session ends on screen at once."""
        log.warning("STOP from the %s", source)
        self._wake.set()

    def _require_runner(self) -> SessionRunner:
        runner = self._runner
        if runner is None:
            raise SessionError("no session is running")
        return runner

    # ---- runner plumbing -----------------------------------------------------------------
    def _to_wall(self, t: float) -> float:
        """The runner's clock to the store's wall clock, so records and screenings agree."""
        return self.store.now() - (self.clock() - t)

    def _runner_request(self, message: dict[str, Any]) -> dict[str, Any]:
        if message.get("cmd") == "heartbeat" and not self.link.ui_healthy():
            return self.link.request({"cmd": "status"})
        return self.link.request(message)

    def _on_event(self, event: SessionEvent) -> None:
        """Runs under the runner's lock: only emit and flag, never call back into the runner."""
        if event.kind == "rep":
            detail = event.detail
            rep = detail.get("rep")
            phase = detail.get("phase")
            # A rep counts as done at the next up beat (or at the end of the set).
            done = rep - 1 if phase == "up" and isinstance(rep, int) else None
            self.socketio.emit(
                "beat",
                {
                    "rep": rep,
                    "phase": phase,
                    "reps": detail.get("reps"),
                    "reps_done": done,
                    "set_index": detail.get("set_index"),
                    "exercise_index": detail.get("exercise_index"),
                },
            )
        if event.kind != "countdown":
            self._dirty = True
            self._wake.set()

    def _changed(self) -> None:
        self._dirty = True
        self._wake.set()

    def _tick_loop(self) -> None:
        period = 1.0 / TICK_HZ
        last_view = float("-inf")
        while not self._closing.is_set():
            self._wake.wait(period)
            self._wake.clear()
            runner = self._runner
            if runner is not None and not runner.finished:
                try:
                    runner.tick(self.clock())
                except Exception as exc:
                    # The runner already sent deflate; end the session honestly.
                    log.exception("session runner failed")
                    runner.close(exc)
                    self._dirty = True
            now = self.clock()
            if runner is not None and (self._dirty or now - last_view >= VIEW_PERIOD_S):
                self._dirty = False
                last_view = now
                self.socketio.emit("session", self.view())
            elif runner is None and self._dirty:
                self._dirty = False
                self.socketio.emit("session", self.view())


def rating(value: Any) -> int:
    low, high = RATING_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"rating: must be a whole number {low}-{high}")
    return value


__all__ = ["Phase", "PlanError", "SessionBusy", "SessionError", "SessionLink", "rating"]
