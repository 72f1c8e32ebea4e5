"""Regulation benchmark: 30-15-15-15 at 80 % LOP on many simulated patients, ours vs on/off.

Prints, per controller: share of exercise time within +-5 % and +-10 % of target (true cuff
pressure, pulsations included, from first reaching the target), peaks and valleys as % of target
(worst over the run, and the mean of each rep's extremes as Swain 2025 reports them), valve
openings and pump starts per minute, and actuations relative to an on/off controller at +-3 mmHg
on the same patients; then time in band and actuations over the reps alone, as the rests
(cuff still inflated, limb still) are the easy part. Then the same on `varied_plant` patients
(cuff, pump, valve, leak, contraction size and cadence it was not tuned on), and the
stop-to-valve-open latency. Ours runs with the sensing line's probe, as the appliance does
(`--no-probe` shows what its openings cost); the on/off baselines run without it.

    python bench/regulation.py [--patients N] [--varied N] [--jobs 2] [--limb leg] [--pump-mL-s F]
                               [--no-probe]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.controller.regulator import OnOffRegulator, PredictiveBandRegulator  # noqa: E402
from appliance.exercise import exercise_at_true_lop  # noqa: E402
from appliance.simulation import build_simulated  # noqa: E402
from hardware.sim.cuff import default_plant, varied_plant  # noqa: E402

CONTROLLERS = ("predictive-band", "on-off +-3", "on-off +-5")


@dataclass(frozen=True)
class Outcome:
    controller: str
    seed: int
    limb: str
    ok: bool
    state: str
    within5: float = 0.0
    within10: float = 0.0
    peak: float = 0.0
    valley: float = 0.0
    rep_peak: float = 0.0
    rep_valley: float = 0.0
    valve_per_min: float = 0.0
    pump_per_min: float = 0.0
    sets_within5: float = 0.0
    sets_within10: float = 0.0
    sets_act_per_min: float = 0.0


def regulator_for(name: str):
    if name == "predictive-band":
        return PredictiveBandRegulator()
    return OnOffRegulator(float(name.split("+-")[1]))


def run_one(job: tuple[str, str, int, dict, bool]) -> Outcome:
    kind, controller, seed, overrides, probe = job
    plant = varied_plant(seed) if kind == "varied" else default_plant(seed, **overrides)
    # The on/off baselines are plain controllers: no line probe, whose openings would count.
    probe = probe and controller == "predictive-band"
    run = exercise_at_true_lop(
        plant, seed, regulator_for(controller), probe_line=probe, rest_s=30.0
    )
    m = run.metrics
    if m is None:
        return Outcome(controller, seed, plant.patient.limb, False, run.final_state)
    return Outcome(
        controller,
        seed,
        plant.patient.limb,
        True,
        run.final_state,
        m.within_5_pct,
        m.within_10_pct,
        m.peak_pct,
        m.valley_pct,
        m.rep_peak_pct,
        m.rep_valley_pct,
        m.valve_openings_per_min,
        m.pump_starts_per_min,
        m.sets_within_5_pct,
        m.sets_within_10_pct,
        m.sets_actuations_per_min,
    )


def stop_latency_ms(seeds: range) -> list[float]:
    """Simulated time from the stop button's edge to the valve pin reading open."""
    out = []
    for seed in seeds:
        plant = default_plant(seed)
        sim = build_simulated(plant, seed)
        sim.run(0.3)
        c = sim.controller
        c.handle({"cmd": "configure", "limb": plant.patient.limb})
        c.handle({"cmd": "inflate", "target_mmHg": 0.6 * plant.true_lop_mmHg})
        sim.run_until(lambda c=c: c.state.value == "HOLDING", 60)
        sim.run(0.0123 * (seed % 7 + 1))  # press at different phases of the loop
        t0 = sim.clock.now()
        sim.rig.press_stop()
        while not sim.rig.valve_open or sim.rig.pump_duty > 0:
            sim.loop.run(duration_s=0.0005)
        out.append(1000 * (sim.clock.now() - t0))
    return out


def quality(ok: list[Outcome]) -> str:
    """Time in band, worst and per-rep peaks and valleys of completed runs."""
    return (
        f"{statistics.mean(o.within5 for o in ok):6.2f} (min {min(o.within5 for o in ok):5.1f})"
        f"{statistics.mean(o.within10 for o in ok):7.2f} (min {min(o.within10 for o in ok):5.1f})"
        f" {max(o.peak for o in ok):7.1f}/{statistics.mean(o.rep_peak for o in ok):5.1f}"
        f"   {min(o.valley for o in ok):8.1f}/{statistics.mean(o.rep_valley for o in ok):5.1f}"
    )


def summarise(title: str, outcomes: list[Outcome]) -> None:
    print(f"\n{title}")
    header = (
        f"{'controller':16} {'n':>3} {'fail':>4} {'in+-5%':>16} {'in+-10%':>14} "
        f"{'peak% worst/rep':>16} {'valley% worst/rep':>18} {'valve/min':>9} {'pump/min':>8} "
        f"{'act/min':>7} {'vs +-3':>6}"
    )
    print(header)
    by = {name: [o for o in outcomes if o.controller == name] for name in CONTROLLERS}
    base = by["on-off +-3"]
    base_act = (
        statistics.mean(o.valve_per_min + o.pump_per_min for o in base if o.ok) if base else 0
    )
    for name, rows in by.items():
        ok = [o for o in rows if o.ok]
        if not rows:
            continue
        if not ok:
            print(f"{name:16} {len(rows):>3} {len(rows):>4}  (no completed runs)")
            continue
        act = statistics.mean(o.valve_per_min + o.pump_per_min for o in ok)
        print(
            f"{name:16} {len(rows):>3} {len(rows) - len(ok):>4} {quality(ok)}"
            f"   {statistics.mean(o.valve_per_min for o in ok):8.1f}"
            f" {statistics.mean(o.pump_per_min for o in ok):8.1f} {act:7.1f}"
            f" {act / base_act if base_act else float('nan'):6.2f}"
        )
    ours = [o for o in by["predictive-band"] if o.ok]
    for limb in ("arm", "leg"):
        ok = [o for o in ours if o.limb == limb]
        if ok and len(ok) < len(ours):
            print(f"{'  of which ' + limb:16} {len(ok):>3} {'':>4} {quality(ok)}")
    sets_base = [o.sets_act_per_min for o in base if o.ok]
    print(f"{'reps alone':16} {'':>8} {'in+-5%':>16} {'in+-10%':>14} {'act/min':>9} {'vs +-3':>6}")
    for name, rows in by.items():
        ok = [o for o in rows if o.ok]
        if ok:
            act = statistics.mean(o.sets_act_per_min for o in ok)
            ratio = act / statistics.mean(sets_base) if sets_base else float("nan")
            print(
                f"{name:16} {'':>8} {statistics.mean(o.sets_within5 for o in ok):6.2f}"
                f" (min {min(o.sets_within5 for o in ok):5.1f})"
                f"{statistics.mean(o.sets_within10 for o in ok):7.2f}"
                f" (min {min(o.sets_within10 for o in ok):5.1f})"
                f" {act:8.1f} {ratio:6.2f}"
            )
    failures = [o for o in outcomes if not o.ok]
    for o in failures:
        print(f"  not completed: {o.controller} seed {o.seed} ({o.limb}) ended {o.state}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=12)
    ap.add_argument("--varied", type=int, default=12)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--controllers", default=",".join(CONTROLLERS))
    ap.add_argument("--limb", choices=("arm", "leg"), help="project patients all of this limb")
    ap.add_argument(
        "--pump-mL-s", type=float, help="project plant pump free flow (default 150 = 9 L/min)"
    )
    ap.add_argument(
        "--pump-spinup-ms",
        type=float,
        help="project plant pump motor time constant (default 50; the self-test fails over ~110)",
    )
    ap.add_argument(
        "--no-probe",
        action="store_true",
        help="turn the sensing line's probe off, to see what its openings cost the hold",
    )
    args = ap.parse_args()
    names = args.controllers.split(",")
    probe = not args.no_probe
    overrides: dict = {}
    if args.limb:
        overrides["limb"] = args.limb
    if args.pump_mL_s:
        overrides["pump_free_flow_mL_s"] = args.pump_mL_s
    if args.pump_spinup_ms:
        overrides["pump_spinup_s"] = args.pump_spinup_ms / 1000.0
    jobs = [("default", c, s, overrides, probe) for s in range(args.patients) for c in names]
    jobs += [("varied", c, 1000 + s, {}, probe) for s in range(args.varied) for c in names]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_one, jobs))
    n = args.patients * len(names)
    print("30-15-15-15 at 80 % LOP, 30 s rests, cuff inflated through rests; true cuff pressure")
    print(f"line probe {'on' if probe else 'off'} for ours, off for the on/off baselines")
    which = f"{args.limb} only" if args.limb else "arm and leg"
    pump = f", pump {args.pump_mL_s:g} mL/s" if args.pump_mL_s else ""
    pump += f", motor {args.pump_spinup_ms:g} ms" if args.pump_spinup_ms else ""
    summarise(f"project plant, {args.patients} patients ({which}{pump})", results[:n])
    if args.varied:
        summarise(f"varied plants (not tuned on), {args.varied} patients", results[n:])
    latency = stop_latency_ms(range(10))
    print(
        f"\nstop button -> valve open: max {max(latency):.1f} ms, "
        f"mean {statistics.mean(latency):.1f} ms over {len(latency)} presses (target < 20 ms)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
