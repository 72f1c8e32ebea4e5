"""Guided sessions: every path of the runner against the real controller in simulated time."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance import patients, screening
from appliance.cli import main
from appliance.controller.core import Controller, ControllerHardware
from appliance.controller.loop import ControlLoop
from appliance.controller.supervisor import State
from appliance.protocols import (
    Protocol,
    packaged_protocols,
    protocol_to_toml,
    validate_protocol_dict,
)
from appliance.sessions import Phase, PlanError, SessionError, SessionEvent, SessionPlan
from appliance.sessions.metronome import Metronome
from appliance.sessions.pressure_trace import TraceSampler
from appliance.sessions.recovery import INTERRUPTED_REASON, end_interrupted_sessions
from appliance.sessions.runner import LINK_LOSS_S, SessionRunner
from appliance.sessions.simulated import SimulatedSession
from appliance.sessions.summary import session_summary
from appliance.simulation import build_simulated, default_procedures
from appliance.store import Store, audit, records, trace
from hardware.sim.cuff import default_plant

WALL0 = 1_790_000_000.0  # every record of these sessions is at WALL0 + simulated seconds
SEED = 2
LOP_PROCEDURE = importlib.util.find_spec("appliance.lop.procedure") is not None

# A short resistance exercise: two sets of five 1 s reps, 30 s rest with the cuff up.
SHORT: dict[str, Any] = {
    "schema": 1,
    "name": "short-test",
    "version": 1,
    "title": "Short test",
    "kind": "resistance",
    "limbs": ["arm", "leg"],
    "pct_lop": {"arm": 50, "leg": 60},
    "exercises": [
        {
            "name": "curl",
            "title": "Curl",
            "cadence_s": 1.0,
            "sets": [{"reps": 5, "rest_after_s": 30}, {"reps": 5}],
        }
    ],
}
# That exercise, a 60 s release, then one more set of another.
TWO: dict[str, Any] = SHORT | {
    "name": "two-test",
    "exercises": [
        SHORT["exercises"][0] | {"reperfusion_after_s": 60},
        SHORT["exercises"][0] | {"name": "press", "title": "Press", "sets": [{"reps": 5}]},
    ],
}


def protocol(data: dict[str, Any]) -> Protocol:
    return validate_protocol_dict(data, origin="custom")


NO = {q.id: False for q in screening.QUESTIONS}


@dataclass
class Bench:
    store: Store
    session: SimulatedSession
    events: list[SessionEvent] = field(default_factory=list)

    @property
    def runner(self) -> SessionRunner:
        return self.session.runner

    @property
    def sim(self) -> Any:
        return self.session.sim

    def names(self, prefix: str = "") -> list[str]:
        return [e.name for e in self.events if e.name.startswith(prefix)]

    def until(self, predicate: Callable[[], bool], max_s: float = 300.0) -> None:
        assert self.session.run_until(predicate, max_s), f"not reached; phase {self.runner.phase}"

    def until_phase(self, phase: Phase, max_s: float = 300.0) -> None:
        self.until(lambda: self.runner.phase == phase, max_s)

    def until_rep(self, rep: int, max_s: float = 300.0) -> None:
        self.until(lambda: (self.runner.view().rep or 0) >= rep, max_s)

    def finish(self, max_s: float = 1200.0) -> dict[str, Any]:
        return self.session.run(max_s)

    def cuff_mmhg_after(self, seconds: float) -> float:
        """Cuff pressure a while later (the runner keeps ticking while it runs)."""
        if self.runner.finished:
            self.sim.run(seconds)
        else:
            self.session.step(seconds)
        return self.sim.plant.pressure_mmHg


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Callable[..., Bench]]:
    stores: list[Store] = []

    def make(
        data: dict[str, Any] | Protocol = SHORT,
        *,
        limb: str = "arm",
        answers: dict[str, bool] | None = None,
        lop: str = "recorded",
        procedures: dict | None = None,
        link: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        patient: dict[str, Any] | None = None,
        clinician: dict[str, Any] | None = None,
        **plan: Any,
    ) -> Bench:
        store = Store.open(tmp_path / f"data{len(stores)}")
        stores.append(store)
        plant = default_plant(SEED, limb=limb, posture="seated")
        sim = build_simulated(plant, SEED, procedures=procedures)
        who = patients.register_patient(store, "P-7", age_band="31-45", by="dr a", at=WALL0)
        screening.record_screening(
            store, who.id, answers or NO, limb=limb, side="left", by="dr a", at=WALL0 - 60
        )
        cuff = "test-cuff"
        if lop == "recorded":
            true_lop = round(plant.true_lop_mmHg)
            records.insert_lop(
                store,
                patient_id=who.id,
                limb=limb,
                side="left",
                posture="seated",
                cuff=cuff,
                first_mmhg=true_lop,
                second_mmhg=true_lop + 2,
                method="doppler",
                measured_by="dr a",
                at=WALL0 - 3600,
            )
        settings = {"lead_in_s": 1.0, "lop_rest_s": 60.0} | plan
        session_plan = SessionPlan(
            patient_id=who.id,
            protocol=data if isinstance(data, Protocol) else protocol(data),
            limb=limb,
            side="left",
            posture="seated",
            cuff=cuff,
            clinician="dr a",
            lop_source="recorded" if lop == "recorded" else "measure",
            **settings,
        )
        session = SimulatedSession(
            store,
            session_plan,
            sim,
            seed=SEED,
            wall0=WALL0,
            link=link,
            patient=patient,
            clinician=clinician,
        )
        made = Bench(store, session)
        session.runner.subscribe(made.events.append)
        return made

    yield make
    for store in stores:
        store.close()


class ScriptedLop:
    """A stand-in LOP procedure that reports a preset reading at once (runner logic only)."""

    ceiling_mmHg = 300.0

    def __init__(self, value: float | None) -> None:
        self.value = value

    def step(self, now: float, f: Any, sample: Any) -> None:
        return None

    def result(self) -> dict[str, Any]:
        reason = None if self.value is not None else "no pulsations found"
        return {"lop_mmHg": self.value, "reason": reason}

    def interrupted(self, why: str) -> dict[str, Any]:
        return {"lop_mmHg": None, "reason": why}


def scripted(*values: float | None) -> dict[str, Any]:
    readings = iter(values)
    return {"lop": lambda args, controller: ScriptedLop(next(readings))}


# ---------------------------------------------------------------- whole sessions


def test_standard_protocol_completes_and_is_stored_as_it_happens(bench) -> None:
    standard = packaged_protocols()["standard-30-15-15-15"]
    b = bench(standard, lead_in_s=3.0)
    store = b.store

    def committed_before_heard(event: SessionEvent) -> None:
        if event.stored:
            rows = store.query("SELECT name FROM events WHERE id = ?", (event.event_id,))
            assert rows and rows[0]["name"] == event.name

    b.runner.subscribe(committed_before_heard)
    b.session.start()
    b.until_rep(3)
    view = b.runner.view()
    assert (view.phase, view.rep, view.reps_target, view.set_index, view.exercise_index) == (
        "set",
        3,
        30,
        0,
        0,
    )
    assert view.target_mmHg is not None and view.pct_lop == 50.0 and view.cuff_inflated
    assert "pause" in view.actions and "abort" in view.actions
    json.dumps(view.to_dict())
    b.until_phase(Phase.REST)
    assert b.runner.view().countdown_s is not None and b.runner.view().awaiting_rating
    summary = b.finish()
    assert summary["outcome"] == "completed", summary["reason"]
    assert b.cuff_mmhg_after(2.0) < 5.0

    session = records.get_session(store, summary["session_id"])
    assert (session.outcome, session.end_reason) == ("completed", "")
    assert session.protocol["name"] == "standard-30-15-15-15"
    assert session.pct_lop == 50.0 and session.target_mmhg is not None
    lop = records.get_lop(store, session.lop_id)
    assert session.target_mmhg == pytest.approx(lop.lop_mmhg * 0.5, abs=0.1)
    assert next(e for e in b.events if e.name == "lop.used").detail["source"] == "recorded"

    sets = records.list_sets(store, session.id)
    assert [(s.reps_target, s.reps_done) for s in sets] == [(30, 30), (15, 15), (15, 15), (15, 15)]
    assert all(s.rpe is not None and s.pain is not None for s in sets)
    assert sets[0].duration_s == pytest.approx(3.0 + 60.0, abs=0.3)  # count-in and 30 x 2 s

    ups = [e.detail["rep"] for e in b.events if e.name == "rep.up" and e.detail["set_index"] == 0]
    assert ups == list(range(1, 31))
    beats = [e for e in b.events if e.kind == "rep" and e.detail["set_index"] == 0]
    assert [e.detail["phase"] for e in beats[:4]] == ["up", "down", "up", "down"]
    assert beats[1].t - beats[0].t == pytest.approx(1.0, abs=1e-6)
    # The cuff stays up through the rests of a resistance exercise: one inflate, one deflate.
    commands = [e.name for e in b.events if e.kind == "controller"]
    assert commands.count("controller.inflate") == 1
    assert commands.count("controller.configure") == 1
    rests = [e for e in b.events if e.name == "phase.rest"]
    assert len(rests) == 3
    assert b.names("prompt.")[:2] == ["prompt.place_cuff", "prompt.inflating"]
    assert "prompt.rate_set" in b.names() and b.names("prompt.")[-1] == "prompt.session_done"

    # Storage round trip: what the database holds equals what the runner reported.
    stored = records.list_events(store, session_id=session.id)
    heard = [e for e in b.events if e.stored and e.event_id in {s.id for s in stored}]
    assert [(e.event_id, e.name, e.detail) for e in heard] == [
        (s.id, s.name, s.detail) for s in stored
    ]
    assert session_summary(store, session.id) == summary
    with Store.open(store.data_dir, create=False) as reopened:
        assert session_summary(reopened, session.id) == summary
        assert reopened.integrity_problems() == []

    # The pressure trace: 10 Hz on one grid, from the start to the end, in wall time.
    got = trace.read_trace(store, session.id)
    assert got.t[0] == pytest.approx(session.started_at, abs=0.15)
    assert got.t[-1] == pytest.approx(session.ended_at, abs=0.2)
    assert np.allclose(np.diff(got.t), 0.1, atol=1e-3)
    holding = got.mmhg[(got.t > sets[1].started_at) & (got.t < sets[1].ended_at)]
    assert abs(np.median(holding) - session.target_mmhg) < 10.0


def test_multi_exercise_deflates_and_reperfuses_between_exercises(bench) -> None:
    b = bench(TWO)
    pressures: list[tuple[float, float]] = []
    b.runner.subscribe(
        lambda e: (
            pressures.append((e.t, b.sim.plant.pressure_mmHg)) if e.kind == "countdown" else None
        )
    )
    summary = b.finish()
    assert summary["outcome"] == "completed"
    assert [e["sets_done"] for e in summary["exercises"]] == [2, 1]
    ends = [e for e in b.events if e.name == "exercise.end"]
    starts = [e for e in b.events if e.name == "exercise.start"]
    empty = next(e for e in b.events if e.name == "cuff.empty")
    assert ends[0].t <= empty.t < starts[1].t
    assert starts[1].t - empty.t >= 60.0  # the protocol's release, counted from an empty cuff
    during = [p for t, p in pressures if empty.t + 1 < t < starts[1].t]
    assert during and max(during) < 5.0
    commands = [e.name for e in b.events if e.kind == "controller"]
    assert commands.count("controller.configure") == 2
    assert commands.count("controller.inflate") == 2


@pytest.mark.slow
def test_packaged_multi_exercise_protocol(bench) -> None:
    b = bench(packaged_protocols()["multi-exercise-leg"], limb="leg")
    summary = b.finish(max_s=3600.0)
    assert summary["sets_planned"] == 12
    # Holding quality is for the regulator's own tests: here an alarm is accepted as long as it
    # ends the session cleanly with an empty cuff.
    assert summary["outcome"] in ("completed", "alarm")
    assert b.cuff_mmhg_after(6.0) < 5.0  # a thigh cuff holds more air than an arm cuff


# Rests with the cuff released, and a timed (passive) bout.
DEFLATED: dict[str, Any] = SHORT | {
    "name": "deflated-test",
    "exercises": [
        SHORT["exercises"][0]
        | {"inflate_during_rest": False, "sets": [{"reps": 3, "rest_after_s": 10}, {"reps": 3}]}
    ],
}
PASSIVE: dict[str, Any] = SHORT | {
    "name": "passive-test",
    "kind": "passive",
    "exercises": [
        {
            "name": "lie",
            "inflate_during_rest": False,
            "max_occlusion_s": 60,
            "sets": [{"duration_s": 10}],
        }
    ],
}


def test_rests_deflate_where_the_protocol_says_and_timed_bouts_count_down(bench) -> None:
    b = bench(DEFLATED)
    b.session.start()
    b.until_phase(Phase.REST, 60.0)
    assert not b.runner.view().cuff_inflated
    b.runner.pause()  # nothing to hold: the cuff is already empty in this rest
    assert b.runner.prompt.key == "paused_deflated"
    left = b.runner.view().countdown_s
    b.session.step(5.0)
    assert b.runner.view().countdown_s == left and b.sim.plant.pressure_mmHg < 5.0
    b.runner.resume()
    assert b.runner.phase == Phase.REST
    summary = b.finish()
    assert summary["outcome"] == "completed" and summary["sets_done"] == 2
    commands = [e.name for e in b.events if e.kind == "controller"]
    assert commands.count("controller.inflate") == 2 and commands.count("controller.configure") == 1

    p = bench(PASSIVE)
    counted: list[int] = []
    p.runner.subscribe(
        lambda e: (
            counted.append(e.detail["seconds"])
            if e.kind == "countdown" and e.detail["phase"] == "set"
            else None
        )
    )
    summary = p.finish()
    assert summary["outcome"] == "completed"
    (bout,) = summary["sets"]
    assert bout["reps_target"] is None and bout["duration_s"] == pytest.approx(10.0, abs=0.2)
    assert "prompt.timed_bout" in p.names() and not p.names("rep.")
    assert counted == list(range(10, 0, -1)) + [0]


# ---------------------------------------------------------------- screening


def test_blocked_screening_waits_and_never_inflates(bench) -> None:
    b = bench(answers=NO | {"dvt_history": True})
    b.session.start()
    assert b.runner.phase == Phase.SCREENING
    assert b.runner.prompt.key == "screening_blocked"
    assert b.runner.prompt.params["can_override"] is True
    assert "DVT" in b.runner.prompt.params["problem"]
    b.session.step(20.0)
    assert b.runner.phase == Phase.SCREENING and b.runner.session_id is None
    assert b.sim.controller.status()["state"] == "IDLE"
    assert not any(e.kind == "controller" for e in b.events)
    with pytest.raises(SessionError):
        b.runner.confirm_cuff()
    with pytest.raises(SessionError, match="reason"):
        b.runner.override_screening("dr b", "ok")
    b.runner.abort("dr b", "patient sent to the GP first")
    assert b.runner.outcome == "aborted" and records.list_sessions(b.store) == []
    entry = audit.audit_trail(b.store, action=audit.SESSION_ABORT)[-1]
    assert entry.actor == "dr b" and entry.reason == "patient sent to the GP first"
    blocked = records.list_events(b.store, kind="screening")
    assert [e.name for e in blocked] == ["screening.blocked"] and blocked[0].session_id is None


def test_clinician_override_is_logged_and_opens_the_session(bench) -> None:
    b = bench(answers=NO | {"acute_illness": True})
    b.session.start()
    reason = "fever resolved this morning, cleared by the ward physician"
    b.runner.override_screening("dr b", reason)
    assert b.runner.phase == Phase.CUFF_PLACEMENT
    entry = audit.audit_trail(b.store, action=audit.SCREENING_OVERRIDE)[-1]
    assert (entry.actor, entry.reason) == ("dr b", reason)
    start = next(e for e in b.events if e.name == "session.start")
    assert start.detail["override_by"] == "dr b" and start.detail["override_reason"] == reason
    assert b.runner.prompt.key == "place_cuff"
    assert b.runner.prompt.params["picture"] == "cuff_placement.arm.left"
    b.until_rep(1)
    b.runner.abort("dr b", "shown enough")


def test_caution_needs_a_clinician_confirmation(bench) -> None:
    b = bench(answers=NO | {"age_over_60": True})
    b.session.start()
    assert b.runner.phase == Phase.SCREENING and b.runner.prompt.params["can_confirm"]
    b.runner.confirm_caution("dr b", "fit and active")
    assert b.runner.phase == Phase.CUFF_PLACEMENT
    assert audit.audit_trail(b.store, action=audit.SCREENING_CONFIRM_CAUTION)[-1].actor == "dr b"
    b.runner.abort("dr b", "demo only")


# ---------------------------------------------------------------- the clinician and patient


def test_abort_mid_set_deflates_and_is_audited(bench) -> None:
    b = bench()
    b.session.start()
    b.until_rep(3)
    assert b.sim.plant.pressure_mmHg > 40.0
    b.runner.abort("dr b", "patient felt faint")
    assert b.runner.outcome == "aborted" and b.runner.phase == Phase.FINISHED
    assert b.cuff_mmhg_after(3.0) < 5.0
    session = records.get_session(b.store, b.runner.session_id)
    assert (session.outcome, session.end_reason) == ("aborted", "patient felt faint")
    entry = audit.audit_trail(b.store, action=audit.SESSION_ABORT)[-1]
    assert entry.subject == f"session:{session.id}" and entry.actor == "dr b"
    (partial,) = records.list_sets(b.store, session.id)
    assert partial.reps_done == 2 and partial.reps_target == 5
    assert b.runner.summary["exercises"][0]["ended_by"] == "aborted"


def test_pause_holds_for_the_rest_time_then_deflates_and_resume_reinflates(bench) -> None:
    b = bench()
    b.session.start()
    b.until_rep(2)
    # A short pause keeps the cuff up and picks up at the unfinished rep.
    b.runner.pause()
    done = b.runner.view().reps_done
    b.session.step(10.0)
    assert b.runner.phase == Phase.PAUSED and b.sim.plant.pressure_mmHg > 40.0
    b.runner.resume()
    assert b.runner.phase == Phase.SET
    b.until_rep(done + 2)
    # A long one empties the cuff after the set's 30 s rest time.
    b.runner.pause()
    assert b.runner.prompt.key == "paused" and b.runner.prompt.params["hold_s"] == 30.0
    b.session.step(29.0)
    assert b.sim.plant.pressure_mmHg > 40.0
    b.session.step(2.0)
    assert "limit.pause_hold" in b.names()
    assert b.cuff_mmhg_after(3.0) < 5.0
    b.session.step(0.1)
    b.runner.resume()
    assert b.runner.phase == Phase.INFLATING
    summary = b.finish()
    assert summary["outcome"] == "completed"
    first = summary["sets"][0]
    assert first["reps_done"] == first["reps_target"] == 5
    ups = [e.detail["rep"] for e in b.events if e.name == "rep.up" and e.detail["set_index"] == 0]
    assert ups[-1] == 5 and sorted(set(ups)) == [1, 2, 3, 4, 5]
    assert [n for n in b.names("input.") if n in ("input.pause", "input.resume")] == [
        "input.pause",
        "input.resume",
    ] * 2
    with pytest.raises(SessionError):
        b.runner.resume()


def test_pain_above_7_ends_the_exercise_not_the_session(bench) -> None:
    b = bench(TWO, patient={"pain": lambda ex, s: 8 if (ex, s) == (0, 0) else 2})
    summary = b.finish()
    assert summary["outcome"] == "stopped" and "curl: pain" in summary["reason"]
    assert [(e["sets_done"], e["ended_by"]) for e in summary["exercises"]] == [
        (1, "pain"),
        (1, "done"),
    ]
    assert "limit.pain" in b.names()
    assert summary["sets"][0]["pain"] == 8


def test_runner_ends_the_exercise_before_the_occlusion_limit(bench) -> None:
    # The patient takes 50 s to rate the first set, so the rest runs long with the cuff up.
    b = bench(max_occlusion_s=60.0, patient={"rate_after_s": 50.0})
    summary = b.finish()
    assert summary["outcome"] == "stopped"
    assert summary["exercises"][0]["ended_by"] == "occlusion_limit"
    limit = next(e for e in b.events if e.name == "limit.occlusion")
    assert 55.0 <= limit.detail["occlusion_s"] < 56.0
    # The runner acted first: the controller's own limit (same 60 s) never faulted.
    assert summary["alarms"] == []
    assert b.cuff_mmhg_after(2.0) < 5.0


def test_controller_occlusion_fault_ends_the_session_with_an_alarm(bench) -> None:
    """The controller's limit backs the runner's: here it is tighter than the runner thinks."""
    box: dict[str, Any] = {}

    def tighter(message: dict[str, Any]) -> dict[str, Any]:
        if message.get("cmd") == "configure":
            message = message | {"occlusion_limit_s": 60.0}
        return box["handle"](message)

    b = bench(link=tighter, patient={"rate_after_s": 55.0})
    box["handle"] = b.sim.controller.handle
    summary = b.finish()
    assert summary["outcome"] == "alarm" and summary["reason"].startswith("OCCLUSION_TIME")
    assert [a["code"] for a in summary["alarms"]] == ["OCCLUSION_TIME"]
    assert records.list_alarms(b.store)[0].code == "occlusion_time"
    assert b.cuff_mmhg_after(2.0) < 5.0


@pytest.mark.parametrize(
    ("fault", "codes"),
    [
        ("stop_button", {"STOP_BUTTON"}),
        ("adc_stuck", {"SENSOR_STUCK"}),
        ("adc_absent", {"SENSOR_READ"}),
    ],
)
def test_controller_fault_mid_set_ends_with_alarm_and_an_empty_cuff(bench, fault, codes) -> None:
    long_set = SHORT | {"exercises": [SHORT["exercises"][0] | {"sets": [{"reps": 30}]}]}
    b = bench(long_set)
    b.session.start()
    b.until_rep(2)
    if fault == "stop_button":
        b.sim.rig.press_stop()
    elif fault == "adc_stuck":
        b.sim.rig.adc.stuck = True
    else:
        b.sim.rig.adc.absent = True
    b.until(lambda: b.runner.finished, 30.0)
    summary = b.runner.summary
    assert summary["outcome"] == "alarm"
    code = summary["reason"].split(":")[0]
    assert code in codes and code in [a["code"] for a in summary["alarms"]]
    assert records.get_session(b.store, summary["session_id"]).outcome == "alarm"
    (partial,) = records.list_sets(b.store, summary["session_id"])
    assert 1 <= partial.reps_done < 30
    assert summary["exercises"][0]["ended_by"] == "alarm"
    b.runner.close()
    assert b.cuff_mmhg_after(3.0) < 5.0


def test_dead_pump_while_inflating_ends_with_alarm(bench) -> None:
    b = bench()
    b.session.start()
    b.until_phase(Phase.INFLATING, 30.0)
    b.sim.rig.pump_dead = True
    b.until(lambda: b.runner.finished, 120.0)
    summary = b.runner.summary
    assert summary["outcome"] == "alarm" and summary["reason"].startswith("PUMP_NO_RISE")
    assert summary["sets"] == [] and b.cuff_mmhg_after(2.0) < 5.0


def flaky_link(bench: Callable[..., Bench], *args: Any) -> tuple[Bench, dict[str, Any]]:
    """A started bench whose link to the controller fails while `box["down"]`, and follows the
    controller across restarts as the device's clinic socket does."""
    box: dict[str, Any] = {"down": False}

    def link(message: dict[str, Any]) -> dict[str, Any]:
        if box["down"]:
            raise ConnectionError("socket closed")
        return box["b"].sim.controller.handle(message, therapy=True)

    box["b"] = bench(*args, link=link)
    box["b"].session.start()
    return box["b"], box


def test_lost_controller_link_pauses_at_once_then_ends_the_session(bench) -> None:
    b, box = flaky_link(bench)
    b.until_rep(2)
    box["down"] = True
    b.session.step(0.2)
    # Nobody knows what the cuff holds: the set stops counting at once.
    assert b.runner.phase == Phase.PAUSED and b.runner.prompt.key == "controller_link"
    rep = b.runner.view().rep
    with pytest.raises(SessionError, match="not answering"):
        b.runner.resume()
    b.session.step(LINK_LOSS_S - 1.0)
    assert not b.runner.finished and b.runner.view().rep == rep
    b.until(lambda: b.runner.finished, 2.0)
    assert b.runner.outcome == "alarm"
    assert b.runner.summary["reason"].startswith("CONTROLLER_UNREACHABLE")
    # No heartbeat reached the controller either: it emptied the cuff on its own in 3 s.
    assert b.sim.controller.status()["fault"] == "HEARTBEAT_LOST"
    assert b.sim.plant.pressure_mmHg < 5.0


def test_a_controller_that_restarts_slowly_pauses_the_set_until_the_clinician_resumes(
    bench,
) -> None:
    """On a Pi a restart (RestartSec, the ExecStopPost deflate, start-up) takes seconds: the
    session waits for it paused, then treats the empty cuff as lost and goes on when resumed."""
    b, box = flaky_link(bench)
    b.until_rep(2)
    box["down"] = True
    # The controller dies: the dead-man cuts the valve's power and the cuff empties; the new
    # process reads it a few seconds later, and its socket comes up after that.
    b.sim.controller.handle({"cmd": "deflate"})
    b.session.step(3.0)
    restart_controller(b.sim)
    b.session.step(5.0)
    assert b.runner.phase == Phase.PAUSED and b.runner.prompt.key == "controller_link"
    assert b.sim.plant.pressure_mmHg < 5.0
    box["down"] = False
    b.session.step(0.5)
    assert b.runner.phase == Phase.PAUSED and b.runner.prompt.key == "cuff_lost"
    b.runner.resume()
    summary = b.finish()
    assert summary["outcome"] == "completed" and summary["sets_done"] == 2
    back = next(e for e in b.events if e.name == "controller.link_back")
    assert 8.0 <= back.detail["down_s"] < 9.0
    lost = next(e for e in b.events if e.name == "cuff.lost")
    assert lost.t >= back.t
    sent = [e.name for e in b.events if e.t >= lost.t and e.kind == "controller"]
    assert [n for n in sent if "link" not in n][:2] == [
        "controller.configure",
        "controller.inflate",
    ]


def test_a_link_that_drops_while_the_controller_holds_stays_paused_until_resumed(bench) -> None:
    b, box = flaky_link(bench)
    b.until_rep(2)
    box["down"] = True
    b.session.step(1.5)  # under the controller's 3 s heartbeat timeout: it still holds
    box["down"] = False
    b.session.step(0.5)
    assert b.runner.phase == Phase.PAUSED and b.runner.prompt.key == "paused"
    assert b.sim.controller.state == State.HOLDING
    b.runner.resume()
    summary = b.finish()
    assert summary["outcome"] == "completed" and summary["sets_done"] == 2
    inflations = [e for e in b.events if e.name == "controller.inflate"]
    assert len(inflations) == 1  # held through its rest, and never emptied and refilled


def restart_controller(sim: Any) -> None:
    """A new controller process on the same hardware: unconfigured, as systemd would start it."""
    controller = Controller(
        ControllerHardware.of(sim.devices),
        sim.clock,
        transducer=sim.rig.config.transducer,
        procedures=default_procedures(),
    )
    sim.controller = controller
    sim.loop = ControlLoop(
        controller, sim.clock, sim.rig.config.data_rate, deadman=sim.devices.deadman
    )


def started_restartable(bench: Callable[..., Bench], *args: Any) -> Bench:
    """A started bench whose runner follows the controller across restarts, as the device's
    clinic socket does."""
    return flaky_link(bench, *args)[0]


def lose_the_cuff(b: Bench) -> None:
    """Another client (a technician's `bfr deflate`) empties the cuff behind the runner's back."""
    assert b.sim.controller.handle({"cmd": "deflate"})["ok"]
    b.session.step(0.2)
    assert b.runner.phase == Phase.PAUSED and b.runner.prompt.key == "cuff_lost"


def cuff_lost_rows(b: Bench, *, active_only: bool = False) -> list[Any]:
    found = records.list_alarms(b.store, session_id=b.runner.session_id, active_only=active_only)
    return [a for a in found if a.code == "cuff_lost"]


def test_a_cuff_emptied_behind_the_sets_back_pauses_it_until_the_clinician_resumes(bench) -> None:
    b = started_restartable(bench)
    b.until_rep(2)
    lose_the_cuff(b)
    assert b.runner.prompt.params["reason"] in ("controller DEFLATING", "controller IDLE")
    assert not b.runner.view().cuff_inflated
    done = b.runner.view().reps_done
    b.session.step(10.0)
    assert b.runner.view().reps_done == done and b.runner.phase == Phase.PAUSED
    assert b.sim.plant.pressure_mmHg < 5.0
    assert len(cuff_lost_rows(b, active_only=True)) == 1
    b.runner.resume()
    assert b.runner.phase == Phase.INFLATING
    assert cuff_lost_rows(b) and not cuff_lost_rows(b, active_only=True)
    summary = b.finish()
    assert summary["outcome"] == "completed"
    assert summary["sets"][0]["reps_done"] == 5
    assert "cuff.lost" in b.names()


def test_each_cuff_loss_is_its_own_alarm_and_ends_with_its_exercise(bench) -> None:
    b = started_restartable(bench, TWO)
    b.until_rep(2)
    lose_the_cuff(b)
    b.runner.end_exercise()  # what the prompt offers besides resume
    assert cuff_lost_rows(b) and not cuff_lost_rows(b, active_only=True)
    b.until(lambda: b.runner.phase == Phase.SET and b.runner.view().exercise_index == 1, 400)
    b.until_rep(2)
    lose_the_cuff(b)
    assert len(cuff_lost_rows(b)) == 2 and len(cuff_lost_rows(b, active_only=True)) == 1
    b.runner.abort("dr a", "patient unwell")
    assert not cuff_lost_rows(b, active_only=True)


def test_a_cuff_emptied_while_inflating_pauses_and_resume_inflates_again(bench) -> None:
    b = started_restartable(bench)
    b.until_phase(Phase.INFLATING, 30.0)
    b.session.step(0.5)
    lose_the_cuff(b)
    b.session.step(5.0)
    assert b.runner.phase == Phase.PAUSED and b.sim.plant.pressure_mmHg < 5.0
    b.runner.resume()
    summary = b.finish()
    assert summary["outcome"] == "completed" and summary["sets_done"] == 2


def test_a_controller_restart_with_the_cuff_still_tight_ends_the_session_not_a_cuff_loss(
    bench,
) -> None:
    b = started_restartable(bench)
    b.until_rep(2)
    restart_controller(b.sim)  # the cuff still at pressure
    # The runner's heartbeat reaches it before its first reading: no pressure known yet.
    b.runner.tick(b.session.now)
    summary = b.finish()
    assert summary["outcome"] == "alarm" and summary["reason"].startswith("PRESSURISED_AT_START")
    assert "cuff.lost" not in b.names() and not cuff_lost_rows(b)


def test_a_controller_restart_mid_set_pauses_and_resume_configures_it_again(bench) -> None:
    b = started_restartable(bench)
    b.until_rep(2)
    # The controller dies; the normally-open valve empties the cuff before the new one reads it.
    b.sim.controller.handle({"cmd": "deflate"})
    b.sim.run(1.5)
    restart_controller(b.sim)
    b.session.step(0.5)
    assert b.runner.phase == Phase.PAUSED and b.runner.prompt.key == "cuff_lost"
    assert b.sim.controller.status()["lop_mmHg"] is None
    b.runner.resume()
    summary = b.finish()
    assert summary["outcome"] == "completed" and summary["sets_done"] == 2
    lost = next(e for e in b.events if e.name == "cuff.lost")
    after = [e.name for e in b.events if e.t >= lost.t and e.kind == "controller"]
    assert after[:2] == ["controller.configure", "controller.inflate"]


def test_a_controller_restart_while_the_cuff_rests_empty_is_configured_before_inflating(
    bench,
) -> None:
    b = started_restartable(bench, DEFLATED)
    b.until_phase(Phase.REST, 60.0)
    b.until(lambda: b.sim.plant.pressure_mmHg < 2.0, 5.0)
    restart_controller(b.sim)
    summary = b.finish()
    assert summary["outcome"] == "completed" and summary["sets_done"] == 2
    assert "cuff.lost" not in b.names()
    commands = [e.name for e in b.events if e.kind == "controller"]
    assert commands.count("controller.configure") == 2


def test_a_crash_inside_the_runner_still_deflates(bench, monkeypatch) -> None:
    b = bench()
    b.session.start()
    b.until_rep(2)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(records, "record_set", broken)
    with pytest.raises(OSError, match="disk full"), b.runner:
        b.until(lambda: False, 30.0)
    monkeypatch.undo()
    assert b.cuff_mmhg_after(3.0) < 5.0
    session = records.get_session(b.store, b.runner.session_id)
    assert session.outcome == "aborted" and "disk full" in session.end_reason


def test_patient_ends_a_set_and_clinician_ends_the_exercise(bench) -> None:
    b = bench()
    b.session.start()
    b.until_rep(3)
    b.runner.end_set()
    assert b.runner.phase == Phase.REST and b.runner.view().awaiting_rating
    assert b.runner.prompt.key == "rate_set"
    b.until(lambda: not b.runner.view().awaiting_rating, 10.0)
    assert b.runner.prompt.key == "rest"
    b.runner.end_exercise()
    summary = b.finish()
    assert summary["outcome"] == "stopped" and summary["reason"] == "curl: clinician"
    assert [(s["reps_done"], s["reps_target"]) for s in summary["sets"]] == [(2, 5)]
    assert b.cuff_mmhg_after(1.0) < 5.0


# ---------------------------------------------------------------- LOP


def test_spread_over_15_is_flagged_for_the_clinician(bench) -> None:
    b = bench(lop="measure", procedures=scripted(150.0, 170.0), lop_rest_s=1.0)
    b.session.start()
    b.until(lambda: b.runner.phase == Phase.LOP_REVIEW, 30.0)
    assert b.runner.prompt.key == "lop_spread"
    assert b.runner.prompt.params["spread_mmhg"] == 20.0
    lop = records.latest_lop(b.store, b.runner.plan.patient_id, limb="arm", side="left")
    assert lop.spread_flag and (lop.first_mmhg, lop.second_mmhg) == (150.0, 170.0)
    b.until(lambda: "lop.used" in b.names(), 10.0)  # the simulated clinician accepts
    assert records.get_session(b.store, b.runner.session_id).target_mmhg == 80.0
    rest = [e for e in b.events if e.name == "phase.lop_rest"]
    assert len(rest) == 1
    b.runner.abort("dr a", "LOP only")


def test_failed_readings_fall_back_to_a_doppler_lop(bench) -> None:
    b = bench(lop="measure", procedures=scripted(None, 160.0, None, None), lop_rest_s=1.0)
    b.session.start()
    b.until(lambda: "lop.used" in b.names(), 60.0)
    assert b.names("lop.")[:4] == ["lop.failed", "lop.reading", "lop.failed", "lop.failed"]
    assert "prompt.lop_needed" in b.names()
    used = next(e for e in b.events if e.name == "lop.used")
    assert used.detail["method"] == "doppler" and used.detail["source"] == "entered"
    # Each failed reading is its own alarm: a new attempt clears the previous verdict.
    assert [a["code"] for a in session_summary(b.store, b.runner.session_id)["alarms"]] == [
        "LOP_FAILED"
    ] * 3
    b.runner.abort("dr a", "LOP only")


def test_without_a_lop_procedure_the_runner_asks_for_one(bench) -> None:
    b = bench(lop="measure", procedures={}, clinician={"doppler_lop": None})
    b.session.start()
    b.session.step(1.0)  # the controller empties the cuff and goes IDLE after start-up
    b.runner.confirm_cuff()
    assert b.runner.phase == Phase.LOP_REVIEW and b.runner.prompt.key == "lop_needed"
    assert "lop.unavailable" in b.names()
    with pytest.raises(SessionError, match="no recent LOP"):
        b.runner.use_recorded_lop()
    with pytest.raises(SessionError, match="first_mmhg"):
        b.runner.enter_lop(20.0)
    b.runner.enter_lop(180.0, 186.0, by="dr b")
    assert b.runner.phase == Phase.INFLATING
    assert records.get_session(b.store, b.runner.session_id).target_mmhg == 91.5
    b.runner.abort("dr a", "LOP only")


def test_a_recent_lop_on_record_is_reused_an_old_one_is_not(bench) -> None:
    b = bench()
    b.session.start()
    b.until(lambda: b.runner.phase == Phase.INFLATING, 10.0)
    assert not any(e.name == "controller.measure_lop" for e in b.events)
    assert next(e for e in b.events if e.name == "lop.used").detail["source"] == "recorded"
    b.runner.abort("dr a", "enough")

    old = bench(procedures=scripted(170.0, 172.0), lop_rest_s=1.0, recorded_lop_max_age_s=600.0)
    old.session.start()
    old.until(lambda: "lop.used" in old.names(), 30.0)
    assert "lop.no_recent_record" in old.names()
    assert next(e for e in old.events if e.name == "lop.used").detail["source"] == "measured"
    old.runner.abort("dr a", "enough")


# ---------------------------------------------------------------- plan, pieces, recovery, CLI


def test_plan_applies_the_protocol_limits() -> None:
    standard = packaged_protocols()["standard-30-15-15-15"]
    base = {
        "patient_id": 1,
        "protocol": standard,
        "limb": "leg",
        "side": "left",
        "posture": "seated",
        "cuff": "thigh",
        "clinician": "dr a",
    }
    assert SessionPlan(**base).checked().pct_lop == 80.0
    with pytest.raises(PlanError, match="above 80"):
        SessionPlan(**base, pct_lop=90.0).checked()
    assert SessionPlan(**base, pct_lop=90.0, above_80_reason="x" * 25).checked().pct_lop == 90.0
    with pytest.raises(PlanError, match="limb"):
        SessionPlan(
            **base
            | {
                "limb": "leg",
                "protocol": protocol(SHORT | {"limbs": ["arm"], "pct_lop": {"arm": 50}}),
            }
        ).checked()
    with pytest.raises(PlanError, match="cadence_s"):
        SessionPlan(**base, cadence_s=4.0, max_occlusion_s=300.0).checked()
    with pytest.raises(PlanError, match="max_occlusion_s"):
        SessionPlan(**base, max_occlusion_s=100.0).checked()
    with pytest.raises(PlanError, match="cuff"):
        SessionPlan(**base | {"cuff": "x" * 41}).checked()


def test_metronome_counts_finished_reps_and_restarts_an_interrupted_one() -> None:
    m = Metronome(reps=3, cadence_s=2.0, start=0.0, lead_in_s=1.0)
    assert m.due(0.5) == [] and m.lead_in_left(0.5) == 0.5
    assert [(b.rep, b.phase, b.t) for b in m.due(2.0)] == [(1, "up", 1.0), (1, "down", 2.0)]
    assert m.done == 0 and m.current(2.5) == (1, "down")
    m.due(3.5)
    assert m.done == 1
    m.pause()
    assert m.due(10.0) == [] and m.current(10.0) is None
    m.resume(10.0, lead_in_s=1.0)
    assert [(b.rep, b.phase) for b in m.due(20.0)] == [
        (2, "up"),
        (2, "down"),
        (3, "up"),
        (3, "down"),
    ]
    assert m.beat_time(2, "up") == 11.0 and m.finished


def test_trace_sampler_keeps_a_fixed_grid_and_leaves_gaps(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        who = patients.register_patient(store, "P-1", age_band="31-45", by="dr a")
        scr = screening.record_screening(store, who.id, NO, limb="arm", side="left", by="dr a")
        session = records.start_session(
            store,
            patient_id=who.id,
            screening_id=scr.id,
            protocol={"name": "x", "version": 1},
            limb="arm",
            side="left",
            posture="seated",
            cuff="c",
            clinician="dr a",
        )
        sampler = TraceSampler(trace.TraceRecorder(store, session.id), lambda t: 1000.0 + t, 10.0)
        for t in (0.0, 0.13, 0.31, 0.4):  # jittered ticks
            sampler.add(t, 50.0 + t)
        sampler.add(5.0, 80.0)  # after a stall: a gap, then a new grid
        sampler.flush()
        got = trace.read_trace(store, session.id)
        assert got.t.tolist() == pytest.approx([1000.0, 1000.1, 1000.2, 1000.3, 1000.4, 1005.0])
        assert got.mmhg.tolist() == pytest.approx([50.0, 50.1, 50.3, 50.3, 50.4, 80.0])


def test_interrupted_sessions_are_ended_at_their_last_record(bench) -> None:
    b = bench()
    b.session.start()
    b.until_rep(2)
    sid = b.runner.session_id
    last = records.list_events(b.store, session_id=sid)[-1].at
    assert end_interrupted_sessions(b.store) == [sid]
    session = records.get_session(b.store, sid)
    assert (session.outcome, session.end_reason) == ("aborted", INTERRUPTED_REASON)
    assert last <= session.ended_at < last + 1.0
    b.runner.close()


def test_sim_session_command_measures_lop_and_stores_the_session(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    (data / "protocols").mkdir(parents=True)
    (data / "protocols" / "short-test.toml").write_text(protocol_to_toml(protocol(SHORT)))
    argv = ["sim", "session", "--protocol", "short-test", "--data-dir", str(data), "--seed", "4"]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["outcome"] == "completed" and report["sets_done"] == 2
    assert report["alarms"] == [] and report["limb"] == "arm"
    # A fresh LOP: two readings through the controller, or a Doppler one where it has none.
    lop = report["lop"]
    if LOP_PROCEDURE:
        assert lop["method"] == "oscillometric" and lop["second_mmHg"] is not None
    else:
        assert lop["method"] == "doppler"
    with Store.open(data, create=False) as store:
        session = records.get_session(store, report["session_id"])
        assert session.outcome == "completed" and session.lop_id == lop["lop_id"]
        if LOP_PROCEDURE:
            readings = records.list_events(store, session_id=session.id, kind="lop")
            times = [e.at for e in readings if e.name == "lop.reading"]
            assert len(times) == 2 and times[1] - times[0] >= 60.0
    assert main([*argv[:3], "nope", *argv[4:]]) == 2
    assert "no protocol 'nope'" in capsys.readouterr().err
