"""The self-test's `pump_start` figure against the pump motor's real time constant.

Runs the whole self-test (real driver on the emulated ADS1115, gpiozero mock pins, the
controller's SELFTEST procedure) on the simulated cuff wrapped around the test cylinder, for arm
and thigh cuffs of several seeds and for motors of several time constants (`pump_spinup_s`: time
to two thirds of full speed; the BOM's is 50 ms). Prints, per motor, the range of the figure
(ms of flow lost at a start) and how many runs passed the limit, so the limit can be read
against what the regulator tolerates (docs/regulation.md: 100 ms costs a thigh a point within
+-5 %, 120 ms five, 150 ms twenty).

    python bench/pump_start.py [--seeds 8] [--motors-ms 20,50,100,105,120,150]
"""

from __future__ import annotations

import argparse
import io
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.simulation import build_simulated  # noqa: E402
from appliance.technician.link import SimLink  # noqa: E402
from appliance.technician.progress import Progress  # noqa: E402
from appliance.technician.selftest import SelftestLimits, selftest_procedure_factory  # noqa: E402
from appliance.technician.selftest_run import run_selftest  # noqa: E402
from hardware.sim.cuff import CuffPlant, cylinder_plant  # noqa: E402


def selftest_check(plant: CuffPlant, seed: int, name: str) -> dict[str, Any]:
    """Run the whole self-test on `plant` (a cuff on the test cylinder); one check's result."""
    link = SimLink(
        build_simulated(plant, seed, procedures={"selftest": selftest_procedure_factory})
    )
    link.wait(1.0)
    try:
        report = run_selftest(
            link, progress=Progress(io.StringIO()), technician="bench", button=False
        )
    finally:
        link.close()
    return next(c for c in report["checks"] if c["name"] == name)


def one(job: tuple[str, int, float]) -> tuple[str, int, float, float | None, str]:
    limb, seed, motor_s = job
    plant = cylinder_plant(seed, limb=limb, pump_spinup_s=motor_s)
    check = selftest_check(plant, seed, "pump_start")
    return limb, seed, motor_s, check["figure"], check["status"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8, help="seeds per limb")
    parser.add_argument("--motors-ms", default="20,50,100,105,120,150")
    args = parser.parse_args()
    motors = [float(m) / 1000.0 for m in args.motors_ms.split(",")]
    jobs = [(limb, s, m) for m in motors for limb in ("arm", "leg") for s in range(args.seeds)]
    with ProcessPoolExecutor() as pool:
        results = list(pool.map(one, jobs))
    limit = SelftestLimits().pump_start_max_delay_ms
    print(f"pump_start on the test cylinder, {args.seeds} seeds per limb, limit {limit:g} ms")
    print(f"{'motor':>8} {'limb':>5} {'figure ms (min-max)':>20} {'passed':>8}")
    for motor_s in motors:
        for limb in ("arm", "leg"):
            rows = [r for r in results if r[0] == limb and r[2] == motor_s]
            figures = [r[3] for r in rows if r[3] is not None]
            passed = sum(r[4] == "passed" for r in rows)
            span = f"{min(figures):.0f}-{max(figures):.0f}" if figures else "none"
            print(f"{motor_s * 1000:>6.0f}ms {limb:>5} {span:>20} {passed:>5}/{len(rows)}")


if __name__ == "__main__":
    main()
