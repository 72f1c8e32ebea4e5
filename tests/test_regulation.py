"""Regulation properties on the project's plant and on plants it was not tuned on."""

from __future__ import annotations

import math
import os
import statistics
from concurrent.futures import ProcessPoolExecutor

import pytest

from appliance.controller.filters import PressureFilter
from appliance.controller.regulator import PredictiveBandRegulator
from appliance.controller.supervisor import State
from appliance.exercise import exercise_at_true_lop, run_resistance_exercise
from appliance.holding import actuations
from appliance.simulation import build_simulated
from hardware.sim.cuff import default_plant, varied_plant


def prepared(plant, seed: int, regulator: PredictiveBandRegulator | None = None):
    sim = build_simulated(plant, seed, regulator=regulator)
    sim.run(0.3)
    lop = plant.true_lop_mmHg
    assert sim.controller.handle({"cmd": "configure", "limb": plant.patient.limb, "lop_mmHg": lop})[
        "ok"
    ]
    return sim, 0.8 * lop


@pytest.mark.parametrize(
    "plant", [default_plant(5, limb="arm"), default_plant(6, limb="leg"), varied_plant(1001)]
)
def test_inflation_does_not_overshoot_the_alarm_window(plant) -> None:
    sim, target = prepared(plant, 1)
    peak = 0.0

    def track(rec) -> None:
        nonlocal peak
        peak = max(peak, sim.plant.pressure_mmHg)

    sim.controller.on_tick = track
    sim.controller.handle({"cmd": "inflate", "target_mmHg": target})
    assert sim.run_until(lambda: sim.controller.state == State.HOLDING, 60.0)
    sim.run(3.0)
    assert peak < target + 15.0
    assert abs(sim.plant.pressure_mmHg - target) < 0.05 * target


def test_a_low_head_pump_reaches_a_set_point_near_its_stall_pressure() -> None:
    """Near its stall a weak pump moves no air at the taper's duty: the taper must not stall.

    Stall 330 mmHg and a 0.35 dead zone are inside the varied plants' ranges; before, the
    inflation stopped 3 mmHg short of 240 and the supervisor faulted PUMP_NO_RISE.
    """
    plant = default_plant(3, limb="leg", pump_stall_mmHg=330.0, pump_min_duty=0.35)
    sim = build_simulated(plant, 3)
    sim.run(0.3)
    c = sim.controller
    assert c.handle({"cmd": "configure", "limb": "leg", "lop_mmHg": 300.0})["ok"]
    peak = 0.0

    def track(rec) -> None:
        nonlocal peak
        peak = max(peak, plant.pressure_mmHg)

    c.on_tick = track
    assert c.handle({"cmd": "inflate", "target_mmHg": 240.0})["ok"]
    assert sim.run_until(lambda: c.state in (State.HOLDING, State.FAULT), 30.0)
    assert c.state == State.HOLDING, [code.value for _, code in c.alarms.raised]
    sim.run(10.0)
    assert c.state == State.HOLDING
    assert abs(plant.pressure_mmHg - 240.0) < 0.05 * 240.0
    assert peak < 240.0 + 15.0


@pytest.mark.parametrize(
    ("overrides", "seed"),
    [
        ({"lop_mmHg": 300.0, "leak_orifice_mm": 0.08}, 3),
        ({"pump_stall_mmHg": 330.0, "pump_min_duty": 0.35, "leak_orifice_mm": 0.05}, 4),
    ],
    ids=["bom-pump", "low-head-pump"],
)
def test_a_hold_pump_near_its_stall_pressure_keeps_topping_up_a_small_leak(overrides, seed) -> None:
    """Holding at 240 mmHg, the hold pump's duty fell toward pump_min_duty as the gap closed,
    which near its stall moves no air: with a small leak the cuff sat under the stop level,
    the pump ran on without a rise and the supervisor faulted PUMP_NO_RISE 32 s (BOM pump) and
    51 s (low-head pump) into a still hold. A stalled hold pump now climbs in duty."""
    plant = default_plant(seed, limb="leg", artefact_rate_per_min=0.0, **overrides)
    sim = build_simulated(plant, seed)
    sim.run(0.3)
    c = sim.controller
    assert c.handle({"cmd": "configure", "limb": "leg", "lop_mmHg": 300.0})["ok"]
    assert c.handle({"cmd": "inflate", "target_mmHg": 240.0})["ok"]
    assert sim.run_until(lambda: c.state == State.HOLDING, 30.0)
    low = math.inf

    def track(rec) -> None:
        nonlocal low
        low = min(low, plant.pressure_mmHg)

    c.on_tick = track
    sim.run_until(lambda: c.state != State.HOLDING, 60.0)
    codes = {code.value for _, code in c.alarms.raised}
    assert c.state == State.HOLDING, codes
    assert "PUMP_NO_RISE" not in codes
    assert low > 0.95 * 240.0


def exercise(plant, seed: int, sets: tuple[int, ...] = (15,), rest_s: float = 30.0):
    """Hold 80 % LOP through `sets`; the run must end still holding, without a fault."""
    sim, target = prepared(plant, seed)
    run = run_resistance_exercise(sim, target, sets=sets, rest_s=rest_s)
    assert run.final_state == "HOLDING", run.alarms
    assert "PRESSURE_UNSTEADY" not in run.alarms  # a healthy line's hold does not swing
    assert run.metrics is not None
    assert sim.controller.state == State.IDLE  # deflated at the end
    return run, run.metrics


@pytest.mark.parametrize(
    ("plant", "seed"), [(default_plant(8, limb="arm"), 8), (varied_plant(1002), 2)]
)
def test_holds_through_a_set_of_contractions(plant, seed) -> None:
    _, m = exercise(plant, seed)
    assert m.within_10_pct > 99.0
    assert m.within_5_pct > 95.0
    assert m.rep_peak_pct < 108.0 and m.rep_valley_pct > 92.0


def test_the_next_patients_cuff_is_not_dented_with_the_last_cuffs_dump_rate() -> None:
    """The regulator lives as long as the controller, and the next session may use another
    cuff. A thigh cuff dumps about 1/s and a small arm cuff 6/s: carrying the thigh's rate over
    sized the arm's first vent six times too long and dented it to 73 % of target. Each
    inflation now sizes its pulses from the valve-to-pump ratio and the pump's rise it has
    just measured."""
    regulator = PredictiveBandRegulator()
    for plant, seed in ((default_plant(7, limb="leg"), 7), (default_plant(8, limb="arm"), 8)):
        sim, target = prepared(plant, seed, regulator)
        run = run_resistance_exercise(sim, target, sets=(15,), rest_s=5.0)
        assert run.metrics is not None and run.final_state == "HOLDING"
    assert run.metrics.valley_pct > 90.0
    assert run.metrics.within_5_pct > 98.0


def test_a_session_holds_exactly_as_it_would_have_after_a_restart() -> None:
    """The bench measures each patient on a fresh regulator. Carrying the valve-to-pump ratio
    the last patient's session ended with into the next did worse over the cohorts (thighs
    98.79 against 98.96 % within +-5 %, the mixed cohort's lowest sample 92.6 against 93.6 %),
    so nothing of one session is carried into the next: the clinic's second patient of the day
    gets what the bench measured."""
    regulator = PredictiveBandRegulator()
    exercise_at_true_lop(default_plant(6), 6, regulator, sets=(15,))
    carried = exercise_at_true_lop(default_plant(7), 7, regulator, sets=(15,))
    fresh = exercise_at_true_lop(default_plant(7), 7, PredictiveBandRegulator(), sets=(15,))
    assert carried.metrics is not None and carried.metrics.within_5_pct > 98.0
    assert carried.points == fresh.points


def test_a_small_cuff_behind_a_wide_valve_is_vented_in_small_enough_pulses() -> None:
    """0.2 mL/mmHg of arm cuff behind a 3 mm dump valve loses 10 % of its pressure in a 6 ms
    pulse, so a rep clipped with 6 ms pulses sank to 88 % (90 % within +-5 %). The shortest
    pulse is two loop polls (4 ms)."""
    _, m = exercise(varied_plant(1009), 9)
    assert m.within_5_pct > 93.0
    assert m.valley_pct > 90.0


def test_thighs_hold_through_leg_press_with_the_bom_pump() -> None:
    """A leg press swings a thigh cuff by 14-21 % of target. With the BOM's 9 L/min pump the
    limit is timing: the air vented at the top of a rep must go back in from the moment the
    muscle relaxes. Waiting 0.15 s after a vent pulse before trusting a falling pressure
    (instead of reading the raw pressure once the valve has shut), with pulses aimed just
    under the vent level, gave 92 % within +-5 % and 119 actuations a minute. Waiting 80 ms
    between pulses let the fastest rises reach 108 % (seeds 3 and 7), and a first pulse of a
    rep allowed 8 % under the set point dumped seed 11 to 91.7 %. One set of one thigh swings
    by a point or two with any tuning change, so twelve thighs are judged together, each
    with a floor. The line probe's dip early in the hold is such a change: over 36 thighs the
    mean within +-5 % went from 98.42 to 98.36 %, but seed 7 from 94.0 to 92.7 % and its
    lowest sample from 92.5 to 91.7 %, far from any probe: the floors were lowered by that."""
    with ProcessPoolExecutor(min(12, os.cpu_count() or 1)) as pool:
        runs = list(pool.map(_leg_press, range(12)))  # independent patients: one per core
    within_5 = [m.within_5_pct for _, m in runs]
    assert statistics.mean(within_5) > 97.8 and min(within_5) > 92.0
    assert statistics.mean(m.actuations_per_min for _, m in runs) < 100.0
    for alarms, m in runs:
        assert m.rep_valley_pct > 93.0 and m.rep_peak_pct < 107.0
        assert m.valley_pct > 91.0 and m.peak_pct < 107.0
        # Refilling after reps is neither a leak nor a slow pump.
        assert "LEAK" not in alarms and "REFILL_SLOW" not in alarms


def _leg_press(seed: int):
    """One thigh of the project's plant through a set of 15: its alarms and metrics."""
    run, m = exercise(default_plant(seed, limb="leg"), seed)
    return run.alarms, m


def test_a_reps_first_vent_never_dumps_the_cuff_far_under_the_set_point() -> None:
    """The first pulse of a rep is sized from the rep before. On this thigh one rep starts
    slower than the last and, uncapped, a 0.25 s pulse took the cuff to 79 % of target."""
    _, m = exercise(default_plant(7), 7)
    assert m.valley_pct > 88.0
    assert m.within_5_pct > 94.0


# Seed 9 (35 s) runs with `make test-slow`.
@pytest.mark.parametrize("seed", [7, pytest.param(9, marks=pytest.mark.slow)])
def test_a_weak_pump_on_a_thigh_balances_peaks_and_valleys_and_raises_no_leak(seed: int) -> None:
    """A 3.3 L/min pump cannot refill a thigh as fast as the muscle relaxes (docs/regulation.md),
    so it cannot hold +-5 %. Clipping every rep at +5 % all the same vents air the pump cannot
    put back in time, and the valleys sink (88.7 % per rep, 92.4 % of the time within +-10 % on
    seed 7): the regulator must raise its clip until peaks and valleys balance, and stay within
    +-10 %. The pump is also still putting back the last reps' air seconds after a set ends:
    that is not a leak, and a LEAK alarm there would teach staff to ignore it (only a vent-free
    stretch that starts 5 s after the last vent is judged)."""
    plant = default_plant(seed, limb="leg", leak_orifice_mm=0.0, pump_free_flow_mL_s=55.0)
    run, m = exercise(plant, seed, sets=(15, 15), rest_s=20.0)
    assert m.within_10_pct > 96.5
    assert m.rep_valley_pct > 91.0 and m.rep_peak_pct < 110.0
    assert m.valley_pct > 85.0 and m.peak_pct < 112.0
    assert "REFILL_SLOW" in run.alarms  # the clinician is told why +-5 % is out of reach
    assert "LEAK" not in run.alarms


def test_a_reps_vent_is_not_followed_by_a_pump_start_while_the_rep_still_rises() -> None:
    """A rep's vent pulse dips the cuff, and the filtered slope carries that dip for its
    window (100 ms): on this arm the pump started on it 0.1 s after the pulse in 37 of 75
    reps, while the rep went on rising, and the air it put in was vented again a moment
    later. Until 0.15 s after a rep's vent the pump now starts only on a raw reading that has
    kept falling since the valve shut (the muscle relaxing)."""
    plant = default_plant(6, limb="arm")
    sim, target = prepared(plant, 6)
    run = run_resistance_exercise(sim, target, sets=(15,))
    assert run.metrics is not None
    rise_s = plant.params.rep_duration_s / 2
    events = list(actuations(run.points))
    starts = [run.points[i].t for i, kind in events if kind == "pump"]
    in_rise = [t for t in starts if any(t0 <= t < t0 + rise_s for t0, _ in run.rep_windows)]
    vents = sum(kind == "valve" for _, kind in events)
    assert len(run.rep_windows) == 15 and vents >= 15  # every rep was vented
    assert len(in_rise) <= 1, in_rise
    assert run.metrics.within_5_pct > 99.0


def test_fewer_actuations_than_on_off() -> None:
    """On an arm cuff, against an on/off that holds +-3 mmHg: about 0.6 x on the bench's
    cohort, not the 0.3 x the target asks (docs/regulation.md)."""
    with ProcessPoolExecutor(2) as pool:  # the same patient under each: one per core
        ours, on_off = pool.map(_arm_set_actuations, ("ours", "on-off"))
    assert ours < 0.8 * on_off


def _arm_set_actuations(name: str) -> float:
    """Actuations a minute through one set of 15 on seated arm 9, under `name`."""
    from appliance.controller.regulator import OnOffRegulator

    regulator = OnOffRegulator(3.0) if name == "on-off" else None
    plant = default_plant(9, limb="arm")
    sim = build_simulated(plant, 9, regulator=regulator)
    sim.run(0.3)
    sim.controller.handle({"cmd": "configure", "limb": "arm", "lop_mmHg": plant.true_lop_mmHg})
    run = run_resistance_exercise(sim, 0.8 * plant.true_lop_mmHg, sets=(15,))
    assert run.metrics is not None
    return run.metrics.actuations_per_min


def test_a_bench_patient_the_controller_refuses_is_an_error_not_a_run() -> None:
    """The benches configure each patient with the plant's true LOP. A LOP the controller
    refuses must stop the bench with the controller's reason; unchecked, the bench went on
    with an unconfigured session and failed later on the target instead."""
    with pytest.raises(ValueError, match="lop_mmHg"):
        exercise_at_true_lop(default_plant(0, lop_mmHg=350.0), 0, sets=(1,))


@pytest.mark.parametrize(("rise_mmHg_per_s", "rise_s"), [(2.0, 4.0), (60.0, 0.5)])
def test_the_regulator_says_when_it_last_vented_a_rep(
    rise_mmHg_per_s: float, rise_s: float
) -> None:
    """The line probe waits after a rep's vent, for the rep's still top hides a relaxation to
    come. A rep (a fast rise through the clip) is dated by its vent; a slow creep over the
    band is vented as well, but is no rep."""
    regulator, f, target = PredictiveBandRegulator(), PressureFilter(), 120.0
    p, dt, openings, was_open = target, 0.004, [], False
    for i in range(int(4.0 / dt)):
        t = dt * i
        f.update(t, p)
        vent = regulator.hold(t, f, target).valve_open
        if vent and not was_open:
            openings.append(t)
        was_open = vent
        p += (rise_mmHg_per_s if t < rise_s else 0.0) * dt
        p -= 5.0 * p * dt * vent  # a valve dumping 5 times the pressure a second
    assert openings  # both were vented
    if rise_mmHg_per_s > 0.08 * target:  # faster than the regulator's rep slope
        assert regulator.last_rep_vent_t in openings  # one of the rep's pulses
    else:
        assert regulator.last_rep_vent_t == -math.inf
