"""A sensing line kinked while the cuff is empty, and the same fills on a healthy line.

The supervisor's GripWatch learns how long this cuff takes to grip from empty at full duty and
faults PUMP_NO_RISE on a fill that takes 1.5 times its slowest one plus 0.5 s (docs/safety.md,
sensor failure). Two runs per patient, on the project's plant (arms and thighs) and on
`varied_plant`:

- healthy: an LOP measurement (two readings, each filling the cuff from empty), then three
  inflations to 80 % of the measured LOP, each from empty; prints any fault, and the range of
  the time each inflation took to first read 20 mmHg (a knock on the slack cuff can show it
  early: GripWatch waits for the reading to stay there);
- kinked: one inflation and deflation on a healthy line, then the line blocked (the reading
  stays where it was, `LaggingLine` with an endless lag) and a second inflation; prints the time
  to the fault, its code, and the highest true cuff pressure. `--first` kinks before the first
  fill instead, which only the 4 s no-rise check can judge (what every fill was before).

    python bench/kinked_empty.py [--patients 6] [--varied 12] [--first]
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.controller.supervisor import State  # noqa: E402
from appliance.simulation import SimulatedAppliance, build_simulated  # noqa: E402
from hardware.sim.cuff import CuffPlant, default_plant, varied_plant  # noqa: E402
from hardware.sim.line import LaggingLine  # noqa: E402

OPEN_S = 1e-9  # a lag this short is no lag: the healthy line
BLOCKED_S = 1e12  # and this long, a line that passes nothing


def _plant(group: str, seed: int) -> CuffPlant:
    return varied_plant(seed) if group == "varied" else default_plant(seed, limb=group)


def _appliance(group: str, seed: int) -> tuple[SimulatedAppliance, LaggingLine]:
    line = LaggingLine(_plant(group, seed), OPEN_S)
    sim = build_simulated(line, seed)
    sim.run(0.3)
    reply = sim.controller.handle({"cmd": "configure", "limb": line.patient.limb})
    assert reply["ok"], reply
    return sim, line


def _inflate(sim: SimulatedAppliance, target: float) -> float | None:
    """Inflate from empty and hold; seconds until the reading showed 20 mmHg (None: a fault)."""
    c = sim.controller
    start = sim.clock.now()
    assert c.handle({"cmd": "inflate", "target_mmHg": target})["ok"]
    while (c.pressure or 0.0) < 20.0 and c.state == State.INFLATING:
        sim.run(0.002)
    gripped = sim.clock.now() - start
    sim.run_until(lambda: c.state in (State.HOLDING, State.FAULT), 60.0)
    return None if c.state == State.FAULT else gripped


def _empty(sim: SimulatedAppliance) -> None:
    c = sim.controller
    sim.run(2.0)
    assert c.handle({"cmd": "deflate"})["ok"]
    sim.run_until(lambda: c.state == State.IDLE, 30.0)
    sim.run(5.0)


def healthy(job: tuple[str, int]) -> dict[str, Any]:
    group, seed = job
    sim, line = _appliance(group, seed)
    c = sim.controller
    command = {"cmd": "measure_lop", "limb": line.patient.limb, "posture": line.patient.posture}
    assert c.handle(command | {"repeats": 2})["ok"]
    sim.run_until(lambda: c.state in (State.IDLE, State.FAULT), 400.0)
    fault = c.fault.value if c.fault else None
    grips: list[float] = []
    lop = (c.last_lop or {}).get("lop_mmHg") or line.true_lop_mmHg
    if fault is None:
        sim.run(3.0)
        assert c.handle({"cmd": "configure", "limb": line.patient.limb, "lop_mmHg": lop})["ok"]
        for _ in range(3):
            gripped = _inflate(sim, 0.8 * lop)
            if gripped is None:
                fault = c.fault.value if c.fault else "?"
                break
            grips.append(gripped)
            _empty(sim)
    return {"group": group, "seed": seed, "grips": grips, "fault": fault}


def kinked(job: tuple[str, int, bool]) -> dict[str, Any]:
    group, seed, first = job
    sim, line = _appliance(group, seed)
    c = sim.controller
    target = 0.8 * line.true_lop_mmHg
    command = {"cmd": "configure", "limb": line.patient.limb, "lop_mmHg": line.true_lop_mmHg}
    assert c.handle(command)["ok"]
    if not first:
        _inflate(sim, target)
        _empty(sim)
    line.lag_s = BLOCKED_S
    start, highest = sim.clock.now(), 0.0
    assert c.handle({"cmd": "inflate", "target_mmHg": target})["ok"]
    while c.state != State.FAULT and sim.clock.now() - start < 20.0:
        sim.run(0.002)
        highest = max(highest, line.pressure_mmHg)
    return {
        "group": group,
        "seed": seed,
        "after_s": sim.clock.now() - start,
        "fault": c.fault.value if c.fault else None,
        "highest": highest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=6, help="project arms and thighs each")
    parser.add_argument("--varied", type=int, default=12, help="varied plants (seeds 1000-)")
    parser.add_argument("--first", action="store_true", help="kink before the first fill")
    args = parser.parse_args()
    jobs = [(g, s) for g in ("arm", "leg") for s in range(args.patients)]
    jobs += [("varied", 1000 + i) for i in range(args.varied)]
    with ProcessPoolExecutor() as pool:
        well = list(pool.map(healthy, jobs))
        blocked = list(pool.map(kinked, [(g, s, args.first) for g, s in jobs]))
    print("healthy line: LOP measurement, then three inflations from empty")
    print(f"{'group':>7} {'n':>3} {'to 20 mmHg s':>14} {'faults':>7}")
    for group in ("arm", "leg", "varied"):
        rows = [r for r in well if r["group"] == group]
        grips = [g for r in rows for g in r["grips"]]
        faults = [f"{r['seed']}:{r['fault']}" for r in rows if r["fault"]]
        span = f"{min(grips):.2f}-{max(grips):.2f}" if grips else "none"
        print(f"{group:>7} {len(rows):>3} {span:>14} {' '.join(faults) or 0!s:>7}")
    where = "before the first fill" if args.first else "after one healthy fill"
    print(f"line kinked while the cuff is empty, {where}")
    print(f"{'group':>7} {'n':>3} {'fault after s':>14} {'highest mmHg':>13} {'codes':>20}")
    for group in ("arm", "leg", "varied"):
        rows = [r for r in blocked if r["group"] == group]
        after = [r["after_s"] for r in rows]
        highest = [r["highest"] for r in rows]
        codes = sorted({str(r["fault"]) for r in rows})
        print(
            f"{group:>7} {len(rows):>3} {min(after):>6.2f}-{max(after):<7.2f}"
            f" {min(highest):>5.0f}-{max(highest):<7.0f} {','.join(codes):>20}"
        )


if __name__ == "__main__":
    main()
