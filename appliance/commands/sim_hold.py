"""`bfr sim hold`: inflate the simulated cuff to a target and hold it, writing a per-tick CSV trace."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from appliance.controller.core import TickRecord
from appliance.controller.supervisor import State
from hardware.ports import SensorError

if TYPE_CHECKING:
    from appliance.simulation import SimulatedAppliance

TRACE_COLUMNS = (
    "t_s",
    "plant_mmHg",
    "measured_mmHg",
    "target_mmHg",
    "pump_duty",
    "valve_open",
    "state",
    "alarm",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hold",
        help="inflate to a target and hold it in simulated time; write a CSV trace",
        description="Runs the real controller against the simulated hardware (adafruit driver "
        "on the emulated ADS1115, gpiozero mock pins, the plant) in simulated time. One CSV row "
        "per control tick with columns: " + ", ".join(TRACE_COLUMNS) + ".",
    )
    p.add_argument("--target", type=float, required=True, metavar="MMHG", help="set point")
    p.add_argument("--duration", type=float, required=True, metavar="S", help="seconds to run")
    p.add_argument("--plant", help="plant MODULE:CALLABLE (default: the project's cuff)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trace", type=Path, required=True, metavar="FILE.csv")
    p.add_argument("--reps", action="store_true", help="the patient does reps while holding")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.simulation import build_simulated

    if not 0 < args.duration <= 3600:
        print("bfr sim hold: --duration must be in (0, 3600] s", file=sys.stderr)
        return 2
    try:
        out = args.trace.open("w", newline="")
    except OSError as exc:
        print(f"bfr sim hold: cannot write {args.trace}: {exc}", file=sys.stderr)
        return 2
    with out:
        writer = csv.writer(out)
        writer.writerow(TRACE_COLUMNS)
        holder: dict = {}

        def plant_mmHg() -> str:
            try:
                return f"{float(holder['plant'].pressure_mmHg):.2f}"
            except Exception:  # a failed plant: the rig has already said why
                return ""

        def write(rec: TickRecord) -> None:
            writer.writerow(
                (
                    f"{rec.t:.4f}",
                    plant_mmHg(),
                    "" if rec.measured_mmHg is None else f"{rec.measured_mmHg:.2f}",
                    "" if rec.target_mmHg is None else f"{rec.target_mmHg:g}",
                    f"{rec.pump_duty:.3f}",
                    int(rec.valve_open),
                    rec.state.value,
                    rec.alarm,
                )
            )

        try:
            sim = build_simulated(args.plant, args.seed, on_tick=write)
        except (ValueError, SensorError) as exc:
            return _refuse(str(exc), out, args.trace)
        holder["plant"] = sim.plant
        c = sim.controller
        sim.run(0.2)
        limb = getattr(getattr(sim.plant, "patient", None), "limb", "leg")
        c.handle({"cmd": "configure", "limb": limb})
        reply = c.handle({"cmd": "inflate", "target_mmHg": args.target})
        if not reply["ok"]:
            return _refuse(reply["error"], out, args.trace)
        try:
            _hold(sim, args)
        except OSError as exc:
            print(f"bfr sim hold: cannot write {args.trace}: {exc}", file=sys.stderr)
            return 2
        except (ValueError, ArithmeticError, SensorError) as exc:
            # The plant's own code raised outside the rig (starting a set of reps): say so, with
            # no traceback. Inside the rig a failing plant reads as a sensor on a rail instead.
            print(f"bfr sim hold: the simulation stopped: {exc}", file=sys.stderr)
            return 1
    if sim.rig.plant_error is not None:
        # The trace shows what the controller made of it (a sensor fault, pump off, valve open).
        print(f"bfr sim hold: the plant failed: {sim.rig.plant_error}", file=sys.stderr)
        return 1
    status = c.status()
    print(
        f"final state {status['state']}"
        + (f", fault {status['fault']}" if status["fault"] else "")
        + f"; trace {args.trace}"
    )
    return 0


def _refuse(error: str, out: TextIO, trace: Path) -> int:
    """The hold never began: say why, and leave no half a trace of it."""
    print(f"bfr sim hold: {error}", file=sys.stderr)
    out.close()
    trace.unlink(missing_ok=True)
    return 2


def _hold(sim: SimulatedAppliance, args: argparse.Namespace) -> None:
    """Hold the target for the duration (with sets of reps if asked); show a fault's deflation."""
    c = sim.controller
    end = sim.clock.now() + args.duration
    next_set = None
    while sim.clock.now() < end and c.state != State.FAULT:
        due = next_set is None or sim.clock.now() >= next_set
        if args.reps and due and c.state == State.HOLDING and hasattr(sim.plant, "start_set"):
            sim.plant.start_set(15)
            next_set = sim.clock.now() + 15 * 2.5 + 30
        sim.run(min(0.5, end - sim.clock.now()))
    if c.state == State.FAULT:
        sim.run(1.0)  # the trace shows the deflation that follows a fault
