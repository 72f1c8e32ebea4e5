"""`bfr sim lop`: measure limb occlusion pressure on the simulated cuff, in simulated time."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from appliance.exit_codes import EXIT_BAD_INPUT, EXIT_OK
from appliance.exit_codes import EXIT_NO_RESULT as EXIT_NOT_MEASURED
from hardware.sim.patient import LIMBS, POSTURES
from hardware.sim.plant import DEFAULT_PLANT


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lop",
        help="measure LOP on the simulated cuff in simulated time",
        description=(
            "Runs the controller's LOP measurement (empty, fill, inflate while watching the "
            "pulsations, stop at confirmed occlusion, deflate) against the simulated hardware. "
            "--posture and --limb choose the patient of the project's own plant; with another "
            "--plant (built as CALLABLE(seed=N)) they are only recorded with the measurement. "
            "Exit status: 0 measured, 1 not measured (reason given), 2 bad input."
        ),
    )
    p.add_argument("--plant", help=f"plant MODULE:CALLABLE (default: {DEFAULT_PLANT})")
    p.add_argument("--seed", type=int, default=0, help="patient and noise seed (default 0)")
    p.add_argument("--posture", choices=POSTURES)
    p.add_argument("--limb", choices=LIMBS)
    p.add_argument("--repeats", type=int, choices=(1, 2), default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.lop.simulated import measure_on

    try:
        plant, own = _build_plant(args)
    except Exception as exc:  # whatever a foreign factory raises is bad input, not a crash
        print(f"bfr sim lop: cannot build plant {args.plant!r}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    patient = getattr(plant, "patient", None) if own else None
    limb = args.limb or getattr(getattr(plant, "patient", None), "limb", None) or "arm"
    posture = args.posture or getattr(getattr(plant, "patient", None), "posture", None)
    measurement = measure_on(
        plant, args.seed, limb=limb, posture=posture or "seated", repeats=args.repeats
    )
    result = measurement.result
    reason = result.get("reason")
    if not result:
        reason = f"controller fault {measurement.fault}" if measurement.fault else "no result"
    report: dict[str, Any] = {
        "lop_mmHg": result.get("lop_mmHg"),
        "duration_s": result.get("duration_s"),
        "max_pressure_mmHg": result.get("max_pressure_mmHg"),
        "true_lop_mmHg": None
        if measurement.true_lop_mmHg is None
        else round(measurement.true_lop_mmHg, 1),
        "reason": reason,
        "heart_rate_bpm": result.get("heart_rate_bpm"),
        "confidence": result.get("confidence"),
        "readings": result.get("readings", []),
        "spread_flag": result.get("spread_flag", False),
        "limb": limb,
        "posture": posture,
        "seed": args.seed,
        "plant": args.plant or DEFAULT_PLANT,
        "patient_heart_rate_bpm": None
        if patient is None
        else getattr(patient, "heart_rate_bpm", None),
        "final_state": measurement.final_state,
        "fault": measurement.fault,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(_summary(report))
    return EXIT_OK if report["lop_mmHg"] is not None else EXIT_NOT_MEASURED


def _build_plant(args: argparse.Namespace) -> tuple[Any, bool]:
    """The plant, and whether it is the project's own (so --posture/--limb shape the patient)."""
    from hardware.sim.cuff import default_plant
    from hardware.sim.plant import build_plant

    own = args.plant in (None, DEFAULT_PLANT)
    if not own:
        return build_plant(args.plant, args.seed), False
    overrides = {k: v for k, v in (("posture", args.posture), ("limb", args.limb)) if v}
    return default_plant(args.seed, **overrides), True


def _summary(report: dict[str, Any]) -> str:
    where = f"{report['limb']}, {report['posture']}, seed {report['seed']}"
    truth = report["true_lop_mmHg"]
    truth_text = "" if truth is None else f" (plant's true LOP {truth:.1f} mmHg)"
    if report["lop_mmHg"] is None:
        return f"LOP not measured ({where}): {report['reason']}{truth_text}"
    return (
        f"LOP {report['lop_mmHg']:.1f} mmHg{truth_text}; {where}; "
        f"{report['duration_s']:.1f} s, up to {report['max_pressure_mmHg']:.0f} mmHg"
    )
