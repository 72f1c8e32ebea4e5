"""Where the regulator's actuations go: per rep, by phase, against the on/off baseline.

30-15-15-15 at 80 % LOP on the bench's project patients (as `bench/regulation.py`). Each valve
opening and pump start is put in the rep whose window it falls in: the rep's rise (first half
of the contraction), its relaxation (second half), or the gap before the next rep; the rest
between sets; or the sensing line's probe (an opening that a probe's result follows within its
watch). Printed per rep, so the count can be held against what a rep needs at the least: the
air vented at its top (one opening) must come back as it relaxes (one pump start).

    python bench/actuations.py [--patients 12] [--limb arm|leg] [--jobs 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.exercise import ExerciseRun, exercise_at_true_lop  # noqa: E402
from appliance.holding import actuations  # noqa: E402
from bench.regulation import regulator_for  # noqa: E402
from hardware.sim.cuff import default_plant  # noqa: E402

CONTROLLERS = ("predictive-band", "on-off +-3")
PLACES = ("rise", "relax", "gap", "rest", "probe")
COLUMNS = [f"{place} {k}" for place in PLACES for k in "vp" if (place, k) != ("probe", "p")]
PROBE_WATCH_S = 0.45  # a probe's result comes at most this long after its opening


def where(run: ExerciseRun, rep_duration_s: float) -> Counter[str]:
    """Count valve openings ("v") and pump starts ("p") by where they fall."""
    points = [p for p in run.points if run.start_t <= p.t <= run.end_t]
    probe_ends = [r.t for r in run.probes]
    out: Counter[str] = Counter()
    for i, actuator in actuations(points):
        t, kind = points[i].t, actuator[0]  # "v" or "p"
        if kind == "v" and any(0 <= end - t <= PROBE_WATCH_S for end in probe_ends):
            out["probe " + kind] += 1
            continue
        rep = next((t0 for t0, t1 in run.rep_windows if t0 <= t < t1), None)
        if rep is None:
            place = "rest"
        elif t < rep + rep_duration_s / 2:
            place = "rise"
        elif t < rep + rep_duration_s:
            place = "relax"
        else:
            place = "gap"
        out[f"{place} {kind}"] += 1
    return out


def run_one(job: tuple[str, int, dict]) -> tuple[str, int, float, Counter[str]]:
    controller, seed, overrides = job
    plant = default_plant(seed, **overrides)
    run = exercise_at_true_lop(
        plant, seed, regulator_for(controller), probe_line=controller == "predictive-band"
    )
    if run.metrics is None:
        raise SystemExit(f"{controller} seed {seed} ended {run.final_state}")
    return (
        controller,
        len(run.rep_windows),
        (run.end_t - run.start_t) / 60,
        where(run, plant.params.rep_duration_s),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=12)
    ap.add_argument("--limb", choices=("arm", "leg"))
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    overrides = {"limb": args.limb} if args.limb else {}
    jobs = [(c, s, overrides) for c in CONTROLLERS for s in range(args.patients)]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_one, jobs))
    print(f"project plant, {args.patients} patients ({args.limb or 'arm and leg'}), per rep")
    print(
        f"{'controller':16} "
        + " ".join(f"{column:>8}" for column in COLUMNS)
        + f" {'all':>6} {'act/min':>8}"
    )
    per_min = {
        c: statistics.mean(sum(r[3].values()) / r[2] for r in results if r[0] == c)
        for c in CONTROLLERS
    }
    base = per_min["on-off +-3"]
    for controller in CONTROLLERS:
        rows = [r for r in results if r[0] == controller]
        reps = sum(r[1] for r in rows)
        total: Counter[str] = sum((r[3] for r in rows), Counter())
        cells = " ".join(f"{total[column] / reps:8.2f}" for column in COLUMNS)
        print(
            f"{controller:16} {cells} {sum(total.values()) / reps:6.2f} {per_min[controller]:8.1f}"
            f"  ({per_min[controller] / base:.2f} x on/off)"
        )
    minutes = statistics.mean(r[2] for r in results)
    reps_per_min = statistics.mean(r[1] for r in results) / minutes
    print(
        f"one opening and one pump start per rep: {2 * reps_per_min:.1f} a minute"
        f" ({2 * reps_per_min / base:.2f} x the on/off's)"
    )


if __name__ == "__main__":
    main()
