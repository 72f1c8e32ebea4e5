"""What a lagging sensing line does to a patient: the hazard docs/safety.md leaves open, measured.

A partly pinched line between cuff and transducer makes the reading follow the cuff through a
first-order lag (`hardware/sim/line.py`). For each lag, each project patient is inflated to 80 %
of the true LOP and does one set of 15 reps (`--sets 30,15,15,15` for the whole protocol, 30 s
rests with the cuff inflated); the figures are on the cuff's true pressure:

- inflation peak: the highest pressure before holding began (the climb runs on by its rate times
  the lag before the reading shows the set point), as % of the set point;
- set peak / valley: the extremes through the sets (rests included), as % of the set point;
- within +-10 %: the share of the hold, from first reaching the set point, inside +-10 %;
- the faults that ended runs (the cuff emptied), and every alarm raised, by patients;
- caught: when the faulted runs faulted, first and last, in seconds from first holding.

The hold's line probe (on, as in the appliance; `--no-probe` turns it off) faults SENSOR_LAG on
a lag it sees, and the supervisor alarms PRESSURE_UNSTEADY on a hold the lag sets swinging and
faults it if that lasts; the set's valley then counts the emptied cuff.

    python bench/lagging_line.py [--patients N] [--lags 0,0.1,0.3,1] [--limb arm|leg]
                                 [--sets 15] [--no-probe]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.exercise import exercise_at_true_lop  # noqa: E402
from hardware.sim.cuff import default_plant  # noqa: E402
from hardware.sim.line import LaggingLine  # noqa: E402

REST_S = 30.0  # between sets, cuff inflated (the bench's protocol)


@dataclass(frozen=True)
class Outcome:
    lag_s: float
    seed: int
    limb: str
    inflation_peak_pct: float
    set_peak_pct: float
    set_valley_pct: float
    within_10_pct: float
    alarms: tuple[str, ...]
    final_state: str
    fault: str | None  # the code that emptied the cuff
    caught_s: float | None  # from first holding to the fault that emptied the cuff


def run_one(job: tuple[float, int, dict, bool, tuple[int, ...]]) -> Outcome:
    lag_s, seed, overrides, probe, sets = job
    inner = default_plant(seed, **overrides)
    plant = LaggingLine(inner, lag_s) if lag_s > 0 else inner
    run = exercise_at_true_lop(plant, seed, sets=sets, rest_s=REST_S, probe_line=probe)
    target = 0.8 * inner.true_lop_mmHg
    climb = [p.plant_mmHg for p in run.points if p.t < run.start_t]
    held = [p.plant_mmHg for p in run.points if run.start_t <= p.t <= run.end_t]
    m = run.metrics
    return Outcome(
        lag_s,
        seed,
        inner.patient.limb,
        100.0 * max(climb, default=0.0) / target,
        100.0 * max(held, default=0.0) / target,
        100.0 * min(held, default=0.0) / target,
        m.within_10_pct if m is not None else float("nan"),
        run.alarms,
        run.final_state,
        run.fault,
        run.fault_t - run.start_t if run.fault_t is not None else None,
    )


def summarise(lag_s: float, outcomes: list[Outcome]) -> None:
    faults = Counter(o.fault for o in outcomes if o.fault is not None)
    alarms = Counter(code for o in outcomes for code in set(o.alarms))
    held = [o.within_10_pct for o in outcomes if o.final_state == "HOLDING"]
    caught = [o.caught_s for o in outcomes if o.caught_s is not None]
    when = f"{min(caught):.0f}-{max(caught):.0f}" if caught else "-"
    print(
        f"{lag_s:5.2f} {len(outcomes):3d} "
        f"{max(o.inflation_peak_pct for o in outcomes):9.0f} "
        f"{min(o.inflation_peak_pct for o in outcomes):5.0f} "
        f"{max(o.set_peak_pct for o in outcomes):9.0f} "
        f"{min(o.set_valley_pct for o in outcomes):7.0f} "
        f"{(sum(held) / len(held) if held else float('nan')):9.1f} "
        f"{(min(held) if held else float('nan')):5.1f} "
        f"{when:>9}  {dict(faults) or '-'}  {dict(alarms) or '-'}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=6)
    ap.add_argument("--lags", default="0,0.1,0.3,1", help="seconds, comma-separated; 0 = healthy")
    ap.add_argument("--limb", choices=("arm", "leg"), help="project patients all of this limb")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-probe", action="store_true", help="turn the hold's line probe off")
    ap.add_argument("--sets", default="15", help="reps per set, comma-separated (30 s rests)")
    args = ap.parse_args()
    try:
        lags = [float(x) for x in args.lags.split(",")]
        sets = tuple(int(x) for x in args.sets.split(","))
    except ValueError:
        ap.error("--lags: seconds; --sets: whole reps; both comma-separated")
    if any(lag < 0 for lag in lags):
        ap.error("--lags: seconds, 0 or more")
    if any(reps < 1 for reps in sets):
        ap.error("--sets: one rep or more in each set")
    overrides = {"limb": args.limb} if args.limb else {}
    jobs = [
        (lag, seed, overrides, not args.no_probe, sets)
        for lag in lags
        for seed in range(args.patients)
    ]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_one, jobs))
    which = f"{args.limb} only" if args.limb else "arm and leg"
    protocol = (
        f"{'-'.join(map(str, sets))} ({REST_S:.0f} s rests)"
        if len(sets) > 1
        else f"one set of {sets[0]}"
    )
    print(f"{protocol} at 80 % LOP behind a lagging sensing line, {which}; true cuff pressure")
    print(
        "lag s   n  infl.peak% (min) set peak% valley%  in+-10% (min)  caught s  "
        "faults / alarms raised"
    )
    for lag in lags:
        summarise(lag, [o for o in results if o.lag_s == lag])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
