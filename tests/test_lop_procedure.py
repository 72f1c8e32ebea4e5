"""LOP measurement inside the controller, on the simulated cuff: accuracy, safety, failures, CLI."""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from appliance.cli import main
from appliance.lop import live_estimate
from appliance.lop.live_estimate import LiveEstimate, judge, worker
from appliance.lop.procedure import DEFAULT_SETTINGS, LopProcedure
from appliance.lop.ramp_control import RampTracker
from appliance.lop.report import Reading, combine
from appliance.simulation import SimulatedAppliance, build_simulated
from hardware.clock import SimClock
from hardware.sim.cuff import CuffPlant, default_plant
from tests.test_lop_estimator import synthetic_trace

CEILING_MMHG = DEFAULT_SETTINGS.max_search_mmHg + DEFAULT_SETTINGS.ceiling_margin_mmHg


@dataclass
class Run:
    sim: SimulatedAppliance
    plant: CuffPlant
    result: dict[str, Any] | None
    highest_mmHg: float  # true cuff pressure, pulsations and knocks included


def measure(plant: CuffPlant, seed: int, *, dead_pump: bool = False, **command: Any) -> Run:
    highest = [0.0]

    def watch(_: Any) -> None:
        highest[0] = max(highest[0], plant.pressure_mmHg)

    sim = build_simulated(plant, seed, on_tick=watch)
    c = sim.controller
    sim.run(0.3)
    limb = plant.patient.limb
    c.handle({"cmd": "configure", "limb": limb})
    sim.rig.pump_dead = dead_pump
    reply = c.handle(
        {"cmd": "measure_lop", "limb": limb, "posture": plant.patient.posture, **command}
    )
    assert reply["ok"], reply
    sim.run_until(lambda: c.state.value in ("IDLE", "FAULT"), 300)
    sim.run(0.5)  # and a moment after, to see that it stays put
    return Run(sim, plant, c.last_lop, highest[0])


def assert_deflated(run: Run) -> None:
    c = run.sim.controller
    assert c.output.pump_duty == 0.0 and c.output.valve_open
    assert run.sim.rig.pump_duty == 0.0 and run.sim.rig.valve_open
    assert run.plant.pressure_mmHg < 5.0


@pytest.fixture(scope="module")
def arm() -> Run:
    return measure(default_plant(3, limb="arm", posture="seated", artefact_rate_per_min=3.0), 3)


@pytest.fixture(scope="module")
def leg() -> Run:
    return measure(default_plant(11, limb="leg", posture="standing"), 11)


@pytest.mark.parametrize("pump_mL_s", [150.0, 300.0])
def test_a_strong_pump_still_ramps_smoothly(pump_mL_s: float) -> None:
    """A 9-18 L/min pump fills an arm cuff to the ramp's start in a tick or two: its strength
    must come from the slope at full duty, or the ramp controller runs at 40 times the gain and
    turns the inflation into a staircase that hides the pulsations."""
    plant = default_plant(3, limb="arm", posture="seated", pump_free_flow_mL_s=pump_mL_s)
    run = measure(plant, 3)
    assert run.result is not None and run.result["reason"] is None, run.result
    assert run.result["lop_mmHg"] == pytest.approx(plant.true_lop_mmHg, abs=6.0)


@pytest.mark.parametrize(
    ("seed", "posture", "knocks_per_min", "pump_mL_s"),
    [
        (11029, "seated", 2.4, 150.0),
        (11029, "seated", 2.4, 200.0),
        (11010, "seated", 4.0, 200.0),
        (12005, "standing", 2.2, 200.0),
    ],
)
def test_the_pumps_strength_is_read_off_the_fills_raw_rise(
    seed: int, posture: str, knocks_per_min: float, pump_mL_s: float
) -> None:
    """On these arms the fill's last stretch lasts a few hundredths of a second. Read from the
    lagging filtered slope, the pump looked 3-4 times weaker than it is, the ramp's loop ran as
    much too hot, and the heartbeat it printed on the inflation read as pulsation past LOP:
    142, 182 and 132 mmHg against true 119, 161 and 123 (and no reading at 150 mL/s)."""
    plant = default_plant(
        seed,
        limb="arm",
        posture=posture,
        artefact_rate_per_min=knocks_per_min,
        pump_free_flow_mL_s=pump_mL_s,
    )
    run = measure(plant, seed)
    assert run.result is not None and run.result["reason"] is None, run.result
    assert run.result["lop_mmHg"] == pytest.approx(plant.true_lop_mmHg, abs=6.0)


def test_pulsations_growing_back_a_quarter_of_the_way_mean_the_fade_was_a_dip() -> None:
    """Knocks on the cuff around the small early pulsations of a fast heart (142 bpm, diastolic
    118 mmHg) made a false peak at 85 mmHg and a "fade" under it. The pulsations then grew back
    to 0.70 mmHg over the next 25 mmHg, under the old limit of a third of the way to the false
    peak (0.77), and the inflation stopped there: LOP 92 mmHg against a true 183."""
    plant = default_plant(
        12012,
        limb="arm",
        posture="standing",
        artefact_rate_per_min=5.0,
        pump_free_flow_mL_s=200.0,
    )
    run = measure(plant, 12012)
    assert run.result is not None and run.result["reason"] is None, run.result
    assert run.result["lop_mmHg"] == pytest.approx(plant.true_lop_mmHg, abs=6.0)


@pytest.mark.parametrize("which", ["arm", "leg"])
def test_accurate_fast_and_deflated(which: str, request: pytest.FixtureRequest) -> None:
    run: Run = request.getfixturevalue(which)
    assert run.result is not None and run.result["reason"] is None
    assert run.result["lop_mmHg"] == pytest.approx(run.plant.true_lop_mmHg, abs=6.0)
    assert run.result["duration_s"] <= 60.0
    # Stopped soon after occlusion was confirmed, not at the top of the search.
    assert run.result["max_pressure_mmHg"] <= run.plant.true_lop_mmHg + 35.0
    assert run.highest_mmHg <= CEILING_MMHG
    assert run.sim.controller.state.value == "IDLE"
    assert_deflated(run)
    reading = run.result["readings"][0]
    assert reading["heart_rate_bpm"] == pytest.approx(run.plant.patient.heart_rate_bpm, rel=0.1)
    assert run.result["limb"] == run.plant.patient.limb
    assert run.result["posture"] == run.plant.patient.posture


def test_lop_above_the_ceiling_gives_a_reason_and_never_exceeds_it() -> None:
    run = measure(default_plant(5, limb="leg", lop_mmHg=320.0), 5)
    assert run.result is not None and run.result["lop_mmHg"] is None
    assert "without confirming occlusion" in run.result["reason"]
    assert run.highest_mmHg <= CEILING_MMHG <= 300.0
    c = run.sim.controller
    assert c.state.value == "IDLE" and c.fault is None
    assert "LOP_FAILED" in {a["code"] for a in c.status()["alarms"]}
    assert_deflated(run)


def test_dead_pump_is_a_controller_fault_and_deflates() -> None:
    run = measure(default_plant(2, limb="arm"), 2, dead_pump=True)
    c = run.sim.controller
    assert c.state.value == "FAULT" and c.fault is not None
    assert c.status()["fault"] == "PUMP_NO_RISE"
    assert_deflated(run)


def test_a_fault_mid_measurement_publishes_it_as_failed_not_the_last_value() -> None:
    """The console waits for a new `last_lop`: a fault used to leave the previous
    measurement's value there and the console waiting on "measuring" for good."""
    plant = default_plant(3, limb="arm", posture="seated")
    sim = build_simulated(plant, 3)
    c = sim.controller
    sim.run(0.3)
    c.handle({"cmd": "configure", "limb": "arm"})
    command = {"cmd": "measure_lop", "limb": "arm", "posture": "seated", "repeats": 2}
    assert c.handle(command | {"repeats": 1})["ok"]
    sim.run_until(lambda: c.state.value == "IDLE", 300)
    earlier = c.status()["last_lop"]
    assert earlier["lop_mmHg"] is not None
    assert c.handle(command | {"rest_s": 10.0})["ok"]
    # Stop once the first reading is in and the second is on its way up.
    sim.run_until(lambda: len(c.procedure.readings) == 1 and plant.pressure_mmHg > 80.0, 300)
    sim.rig.press_stop()
    sim.run(1.0)
    assert c.state.value == "FAULT"
    published = c.status()["last_lop"]
    assert published["lop_mmHg"] is None
    assert "STOP" in published["reason"] and "deflated" in published["reason"]
    assert published["readings"][0]["lop_mmHg"] == pytest.approx(earlier["lop_mmHg"], abs=6.0)
    assert c.output.pump_duty == 0.0 and c.output.valve_open


def test_an_estimator_that_fails_ends_the_measurement_not_the_controller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its worker process killed, say: the reading fails with a reason and the cuff empties."""

    def broken(*args: Any) -> None:
        raise BrokenProcessPool("the estimating process died")

    monkeypatch.setattr(live_estimate, "judge", broken)
    run = measure(default_plant(2, limb="arm"), 2)
    assert run.result is not None and run.result["lop_mmHg"] is None
    assert run.result["reason"].startswith("the estimator failed (BrokenProcessPool")
    assert run.sim.controller.state.value == "IDLE" and run.sim.controller.fault is None
    assert_deflated(run)


def test_only_simulated_time_that_waits_for_the_estimate_runs_it_inline() -> None:
    """`bfr run --sim` follows the wall clock: it estimates in a worker process, as the device."""
    real_time = LopProcedure({"limb": "arm"}, clock=SimClock(realtime=True))
    assert not real_time.live.inline
    real_time.interrupted("stopped by the STOP_UI fault; the cuff was deflated")
    simulated = LopProcedure({"limb": "arm"}, clock=SimClock())
    assert simulated.live.inline and simulated.live.ready


def test_an_interrupted_measurement_shuts_its_estimating_process() -> None:
    """On the device the estimator runs in a worker process; a fault must not leave it behind."""
    procedure = LopProcedure({"limb": "arm"}, clock=object())  # a real clock: threaded
    deadline = time.monotonic() + 30.0
    while not procedure.live.ready and time.monotonic() < deadline:
        time.sleep(0.05)
    pool = procedure.live._pool
    assert pool is not None
    result = procedure.interrupted("stopped by the STOP_BUTTON fault; the cuff was deflated")
    assert not procedure.live.ready
    with pytest.raises(RuntimeError, match="shutdown"):
        pool.submit(int)
    assert result["lop_mmHg"] is None and result["readings"] == []
    assert result["reason"].startswith("stopped by the STOP_BUTTON fault")


def test_two_readings_with_a_rest_and_their_spread() -> None:
    run = measure(default_plant(4, limb="arm", posture="supine"), 4, repeats=2, rest_s=10)
    assert run.result is not None
    readings = run.result["readings"]
    assert len(readings) == 2 and all(r["lop_mmHg"] is not None for r in readings)
    values = [r["lop_mmHg"] for r in readings]
    # Readings and their combination are each rounded to 0.1 mmHg.
    assert run.result["lop_mmHg"] == pytest.approx(np.mean(values), abs=0.11)
    assert run.result["spread_mmHg"] == pytest.approx(abs(values[0] - values[1]), abs=0.11)
    assert run.result["spread_flag"] is (run.result["spread_mmHg"] > 15.0)
    assert run.result["duration_s"] >= 10.0 + sum(r["duration_s"] for r in readings)
    assert_deflated(run)


def _reading(lop: float | None, reason: str | None = None) -> Reading:
    return Reading(lop, reason, 0.9 if lop else 0.0, 70.0, 30.0, lop + 15 if lop else 290.0)


def test_spread_over_15_mmHg_is_flagged_and_a_failed_repeat_gives_no_value() -> None:
    context = {"limb": "arm"}
    flagged = combine([_reading(150.0), _reading(168.0)], context, 100.0)
    assert flagged["spread_flag"] and flagged["spread_mmHg"] == 18.0
    assert flagged["lop_mmHg"] == 159.0
    calm = combine([_reading(150.0), _reading(160.0)], context, 100.0)
    assert not calm["spread_flag"]
    failed = combine([_reading(150.0), _reading(None, "motion")], context, 100.0)
    assert failed["lop_mmHg"] is None and failed["reason"] == "motion"


def test_ramp_tracker_follows_its_rate_and_slews_rate_changes() -> None:
    """A toy pump (rate = gain * (duty - dead zone)) unlike the nominal one, under pulsations."""
    tracker = RampTracker(0.0, 50.0, 4.0, gain=60.0)
    p, dt = 50.0, 0.004
    history = []
    for i in range(int(16 / dt)):
        now = (i + 1) * dt
        pulse = 1.5 * np.sin(2 * np.pi * 1.2 * now)
        duty = tracker.duty(now, p + pulse)
        p += 75.0 * (duty - 0.3) * dt
        history.append(p)
        if i == int(8 / dt):
            tracker.set_rate(8.0)
            assert tracker.rate == pytest.approx(4.0, abs=0.1)
    rise = np.diff(np.asarray(history)[:: int(1 / dt)])  # mmHg per second
    assert rise[3:8] == pytest.approx(4.0, abs=1.0)
    assert rise[12:] == pytest.approx(8.0, abs=1.0)
    assert tracker.rate == pytest.approx(8.0)


def test_the_estimator_works_in_a_process_of_its_own() -> None:
    """Not a thread of the controller's: numpy would hold the interpreter's lock over the loop."""
    with worker() as pool:
        assert pool.submit(os.getpid).result(timeout=30) != os.getpid()


def test_live_estimate_in_a_worker_process_matches_inline() -> None:
    t, p = synthetic_trace(lop=150.0, start=40.0, stop=200.0)
    live = LiveEstimate(every_s=1.0, inline=False, arterial_fraction=0.2)
    for ti, pi in zip(t, p, strict=True):
        live.add(float(ti), float(pi))
    verdict = live.poll(0.0)
    deadline = time.monotonic() + 20.0
    while verdict is None and time.monotonic() < deadline:
        time.sleep(0.05)
        verdict = live.poll(0.5)  # not due again: only collects
    live.close()
    inline = judge(t, p, 0.2)
    assert verdict is not None and verdict.stop and inline.stop
    assert verdict.estimate.lop_mmHg == inline.estimate.lop_mmHg


def test_the_worker_process_starts_without_holding_up_the_loop() -> None:
    """Starting it waits for the fork server (numpy's import, the first time): 0.3-0.5 s on a
    desktop during which the loop that measures froze with the pump running. The loop's calls
    must return while the start is still under way, and estimates follow once it is up."""
    release = threading.Event()
    started: list[object] = []

    def slow_worker():
        release.wait(30)
        pool = worker()
        started.append(pool)
        return pool

    t, p = synthetic_trace(lop=150.0, start=40.0, stop=200.0)
    live = LiveEstimate(every_s=1.0, inline=False, arterial_fraction=0.2, start_worker=slow_worker)
    for ti, pi in zip(t, p, strict=True):
        live.add(float(ti), float(pi))
    assert live.poll(0.0) is None and not live.ready  # returned while the start is held
    release.set()
    verdict = None
    deadline = time.monotonic() + 30.0
    now = 0.0
    while verdict is None and time.monotonic() < deadline:
        time.sleep(0.05)
        now += 0.05
        verdict = live.poll(now)
    live.close()
    assert started and verdict is not None and verdict.stop


def test_a_measurement_closed_before_its_worker_is_up_leaves_no_worker_behind() -> None:
    release = threading.Event()
    pools: list[object] = []

    def slow_worker():
        release.wait(30)
        pools.append(worker())
        return pools[-1]

    live = LiveEstimate(every_s=1.0, inline=False, arterial_fraction=0.2, start_worker=slow_worker)
    live.close()
    release.set()
    deadline = time.monotonic() + 30.0
    shut = False
    while not shut and time.monotonic() < deadline:
        time.sleep(0.05)
        if pools:
            try:
                pools[0].submit(int)
            except RuntimeError:  # "cannot schedule new futures after shutdown"
                shut = True
    assert shut  # the start shut its worker down instead of handing it to a closed measurement
    assert not live.ready


def _poll_until_it_raises(live: LiveEstimate) -> Exception | None:
    live.add(0.0, 40.0)
    live.add(0.004, 40.1)
    deadline = time.monotonic() + 30.0
    now = 0.0
    while time.monotonic() < deadline:
        now += 0.05
        try:
            live.poll(now)
        except Exception as error:
            return error
        time.sleep(0.05)
    return None


def test_a_worker_that_cannot_start_fails_the_measurement_instead_of_ramping_blind() -> None:
    """With no estimate the ramp would climb to its highest search pressure (290 mmHg) and
    blame the patient's LOP; the next poll raises instead, which fails the reading and vents."""

    def no_worker():
        raise OSError("no fork server")

    live = LiveEstimate(every_s=0.5, inline=False, arterial_fraction=0.2, start_worker=no_worker)
    error = _poll_until_it_raises(live)
    live.close()
    assert isinstance(error, RuntimeError) and "did not start" in str(error)


def test_a_worker_that_never_answers_is_given_up_on(monkeypatch) -> None:
    monkeypatch.setattr(live_estimate, "START_TIMEOUT_S", 0.2)
    stuck = threading.Event()

    class Stuck:
        def submit(self, fn, *args):
            future = Future()  # never completed: a fork server that was stopped
            return future

        def shutdown(self, wait=True, cancel_futures=False):
            stuck.set()

    live = LiveEstimate(every_s=0.5, inline=False, arterial_fraction=0.2, start_worker=Stuck)
    error = _poll_until_it_raises(live)
    live.close()
    assert isinstance(error, RuntimeError) and stuck.is_set()


def test_cli_json_with_a_foreign_plant_records_posture_and_limb(capsys) -> None:
    code = main(
        ["sim", "lop", "--plant", "tests.test_lop_procedure:fixed_arm", "--seed", "1"]
        + ["--posture", "standing", "--limb", "arm", "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    for key in ("lop_mmHg", "duration_s", "max_pressure_mmHg", "true_lop_mmHg", "reason"):
        assert key in out
    assert out["posture"] == "standing" and out["limb"] == "arm"
    assert out["lop_mmHg"] == pytest.approx(out["true_lop_mmHg"], abs=6.0)


def fixed_arm(seed: int) -> CuffPlant:
    """A foreign plant factory for the CLI: the patient ignores --posture (seated here)."""
    return default_plant(seed, limb="arm", posture="seated", heart_rate_bpm=90.0)


@pytest.mark.parametrize("spec", ["no.such.module:plant", "hardware.sim.cuff:nothing", "x"])
def test_cli_bad_plant_exits_2(spec: str, capsys) -> None:
    assert main(["sim", "lop", "--plant", spec, "--json"]) == 2
    assert "cannot build plant" in capsys.readouterr().err
