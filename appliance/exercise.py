"""A simulated patient doing a resistance exercise under the cuff while the controller holds it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from appliance.controller.line_probe import ProbeResult
from appliance.controller.supervisor import State
from appliance.holding import HoldMetrics, HoldPoint, hold_metrics
from appliance.simulation import SimulatedAppliance, build_simulated

STANDARD_SETS = (30, 15, 15, 15)


@dataclass(frozen=True)
class ExerciseRun:
    metrics: HoldMetrics | None
    start_t: float
    end_t: float
    final_state: str
    alarms: tuple[str, ...]
    points: tuple[HoldPoint, ...]
    probes: tuple[ProbeResult, ...] = ()  # the sensing line's probes through the exercise
    fault: str | None = None  # the code that ended the exercise in FAULT
    rep_windows: tuple[tuple[float, float], ...] = ()  # each rep's start and the next one's
    fault_t: float | None = None  # the first tick in FAULT, if the exercise ended in one


def run_resistance_exercise(
    sim: SimulatedAppliance,
    target_mmHg: float,
    *,
    sets: Sequence[int] = STANDARD_SETS,
    rest_s: float = 30.0,
    rep_period_s: float | None = None,
    rep_duration_s: float | None = None,
) -> ExerciseRun:
    """Inflate, hold through `sets` reps with rests (cuff stays inflated), then deflate."""
    points: list[HoldPoint] = []
    faulted_at: list[float] = []
    c = sim.controller
    plant = sim.plant
    previous = c.on_tick

    def record(rec) -> None:
        points.append(HoldPoint(rec.t, plant.pressure_mmHg, rec.pump_duty, rec.valve_open))
        if rec.state == State.FAULT and not faulted_at:
            faulted_at.append(rec.t)
        if previous is not None:
            previous(rec)

    c.on_tick = record
    try:
        reply = c.handle({"cmd": "inflate", "target_mmHg": target_mmHg})
        if not reply["ok"]:
            raise ValueError(reply["error"])

        step = sim.run
        reached = sim.run_until(lambda: c.state in (State.HOLDING, State.FAULT), 60.0)
        start_t = sim.clock.now()
        period = rep_period_s or plant.params.rep_period_s
        rep_windows: list[tuple[float, float]] = []
        if reached and c.state == State.HOLDING:
            step(2.0)
            for i, reps in enumerate(sets):
                t0 = sim.clock.now()
                rep_windows += [(t0 + k * period, t0 + (k + 1) * period) for k in range(reps)]
                plant.start_set(reps, period_s=rep_period_s, duration_s=rep_duration_s)
                while plant.reps_pending and c.state == State.HOLDING:
                    step(1.0)
                step(rep_duration_s or plant.params.rep_duration_s)
                if i < len(sets) - 1:
                    step(rest_s)
        end_t = sim.clock.now()
        final = c.state.value
        fault = c.fault.value if c.fault is not None and c.state == State.FAULT else None
        c.handle({"cmd": "deflate"})
        sim.run_until(lambda: c.state in (State.IDLE, State.FAULT), 30.0)
    finally:
        c.on_tick = previous
    metrics = None
    if final == State.HOLDING.value:
        metrics = hold_metrics(points, target_mmHg, start_t, end_t, rep_windows)
    return ExerciseRun(
        metrics=metrics,
        start_t=start_t,
        end_t=end_t,
        final_state=final,
        alarms=tuple(code.value for _, code in c.alarms.raised),
        points=tuple(points),
        probes=tuple(c.line_probe.results) if c.line_probe is not None else (),
        fault=fault,
        rep_windows=tuple(rep_windows),
        fault_t=faulted_at[0] if fault is not None else None,
    )


def exercise_at_true_lop(
    plant: Any,
    seed: int,
    regulator: Any = None,
    fraction: float = 0.8,
    probe_line: bool = True,
    **protocol: Any,
) -> ExerciseRun:
    """A bench patient: configured with the plant's true LOP, so only holding is measured.

    `probe_line=False` turns the sensing line's probe off, to measure what it costs the hold."""
    sim = build_simulated(plant, seed, regulator=regulator)
    if not probe_line:
        sim.controller.probe_the_line(False)
    sim.run(0.3)
    lop = plant.true_lop_mmHg
    reply = sim.controller.handle({"cmd": "configure", "limb": plant.patient.limb, "lop_mmHg": lop})
    if not reply["ok"]:
        raise ValueError(reply["error"])
    return run_resistance_exercise(sim, fraction * lop, **protocol)
