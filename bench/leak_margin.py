"""How near healthy cuffs come to the LEAK alarm: the pump's share the leak check sees.

Each patient is inflated to 80 % of the true LOP and does 30-15-15-15 with 30 s rests, cuff and
line intact (the project's plants carry their small standard leak). The recorded hold is played
through the leak check's two windows (the supervisor's own LeakWatch): the pump's share of the last
7 s and of the last 14 s, counted only where the check counts it, 12 s or more after the valve
last opened. LEAK needs both at 15 %. Prints, per population, the most of the 7 s share and the
most of the lesser of the two, with the patient each came from, and every LEAK raised.

    python bench/leak_margin.py [--project 0-11] [--limb arm|leg] [--varied 1000-1047] [--jobs 2]
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.controller.limits import SafetyLimits  # noqa: E402
from appliance.controller.watches import LeakWatch  # noqa: E402
from appliance.exercise import ExerciseRun, exercise_at_true_lop  # noqa: E402
from bench.feasibility import seeds  # noqa: E402
from hardware.sim.cuff import default_plant, varied_plant  # noqa: E402


def leak_shares(run: ExerciseRun) -> tuple[float, float]:
    """The most pump share over 7 s, and the most of the lesser of the 7 s and 14 s shares,
    where the leak check counts them."""
    watch = LeakWatch(SafetyLimits().leak_alarm_s)
    most_short = most_both = 0.0
    for p in run.points:
        if not run.start_t <= p.t <= run.end_t:
            continue
        watch.add(p.t, p.pump_duty > 0, p.valve_open)
        counted = watch.counted(p.t)
        if watch.full() and counted is not None:
            most_short = max(most_short, watch.share())
            most_both = max(most_both, counted)
    return most_short, most_both


def run_one(job: tuple[str, int, dict]) -> tuple[str, int, float, float, bool]:
    kind, seed, overrides = job
    plant = varied_plant(seed) if kind == "varied" else default_plant(seed, **overrides)
    run = exercise_at_true_lop(plant, seed, rest_s=30.0)
    return (kind, seed, *leak_shares(run), "LEAK" in run.alarms)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", default="0-11", help="project seeds, e.g. 0-11; '' for none")
    ap.add_argument("--limb", choices=("arm", "leg"), help="project patients all of this limb")
    ap.add_argument("--varied", default="", help="varied seeds, e.g. 1000-1047")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    overrides = {"limb": args.limb} if args.limb else {}
    jobs = [("project", s, overrides) for s in seeds(args.project)]
    jobs += [("varied", s, {}) for s in seeds(args.varied)]
    if not jobs:
        ap.error("no patients: give --project or --varied seeds")
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_one, jobs))
    limb = f", {args.limb}s" if args.limb else ""
    print(f"30-15-15-15 at 80 % LOP, intact cuffs{limb}; LEAK needs 15 % over 7 s and over 14 s")
    print("patients   n  most over 7 s (who)  most of both (who)  LEAK raised on")
    for kind in ("project", "varied"):
        rows = [r for r in results if r[0] == kind]
        if not rows:
            continue
        short = max(rows, key=lambda r: r[2])
        both = max(rows, key=lambda r: r[3])
        raised = [str(r[1]) for r in rows if r[4]]
        print(
            f"{kind:8} {len(rows):3d}  {100 * short[2]:8.1f} % ({short[1]:4d})"
            f"  {100 * both[3]:7.1f} % ({both[1]:4d})  {', '.join(raised) or '-'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
