"""The self-test's `pump_low_duty` figure on healthy pumps and on pumps that need more drive.

Runs the whole self-test (real driver on the emulated ADS1115, gpiozero mock pins, the
controller's SELFTEST procedure) on the simulated cuff wrapped around the test cylinder: the
project's arm and thigh cuffs with the BOM's pump, the 48 `varied_plant` cuffs and pumps the
regulator is benchmarked on (held still: no pulse, no leak), and worn pumps whose dead zone lies
further above the nominal one (`pump_min_duty` raised, `pump_stall_mmHg` lowered). Prints, per
group, the range of the figure (% of the rise the safety supervisor counts on at the test's
duty) and how many passed the limit. A pump that fails here would stop a session with a false
PUMP_NO_RISE while holding (docs/technician.md).

    python bench/pump_low_duty.py [--seeds 6] [--varied 48]
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.technician.selftest import SelftestLimits  # noqa: E402
from bench.pump_start import selftest_check  # noqa: E402
from hardware.sim.cuff import cylinder_plant, cylinder_varied_plant  # noqa: E402

# (min duty, stall mmHg): the BOM's is (0.25, 400); the last one is `--sim-fault worn-pump`.
WORN = ((0.35, 400.0), (0.4, 400.0), (0.45, 400.0), (0.55, 400.0), (0.35, 300.0), (0.35, 215.0))


def one(job: tuple[str, int]) -> tuple[str, float | None, str]:
    group, seed = job
    if group == "varied":
        plant = cylinder_varied_plant(seed)
    elif group in ("arm", "leg"):
        plant = cylinder_plant(seed, limb=group)
    else:
        limb, min_duty, stall = group.split(":")
        plant = cylinder_plant(
            seed, limb=limb, pump_min_duty=float(min_duty), pump_stall_mmHg=float(stall)
        )
    check = selftest_check(plant, seed, "pump_low_duty")
    return group, check["figure"], check["status"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=6, help="seeds per limb and pump")
    parser.add_argument("--varied", type=int, default=48, help="varied plants (seeds 1000-)")
    args = parser.parse_args()
    groups = ["arm", "leg", *(f"{limb}:{d:g}:{s:g}" for d, s in WORN for limb in ("arm", "leg"))]
    jobs = [(g, seed) for g in groups for seed in range(args.seeds)]
    jobs += [("varied", 1000 + i) for i in range(args.varied)]
    with ProcessPoolExecutor() as pool:
        results = list(pool.map(one, jobs))
    limit = SelftestLimits().low_duty_min_pct
    print(f"pump_low_duty on the test cylinder, limit {limit:g} % of the rise counted on")
    print(f"{'pump (limb:min duty:stall mmHg)':>32} {'figure % (min-max)':>20} {'passed':>8}")
    for group in [*groups, "varied"]:
        rows = [r for r in results if r[0] == group]
        figures = [r[1] for r in rows if r[1] is not None]
        passed = sum(r[2] == "passed" for r in rows)
        span = f"{min(figures):.0f}-{max(figures):.0f}" if figures else "none"
        name = {"arm": "arm, BOM pump", "leg": "thigh, BOM pump"}.get(group, group)
        print(f"{name:>32} {span:>20} {passed:>5}/{len(rows)}")


if __name__ == "__main__":
    main()
