"""`bfr sim session`: a whole guided session in simulated time, stored as on the device."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from appliance.exit_codes import EXIT_BAD_INPUT
from appliance.exit_codes import EXIT_NO_RESULT as EXIT_NOT_COMPLETED
from appliance.exit_codes import EXIT_OK as EXIT_COMPLETED
from appliance.store.records import POSTURES, SIDES


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "session",
        help="run a whole guided session with a simulated patient; store it like the device",
        description=(
            "Screen a simulated patient, place the cuff, measure LOP twice through the"
            " controller (or use a recent one on record with --reuse-lop), then run every set of"
            " the protocol: the patient does the reps to the metronome through the simulated"
            " limb and rates each set. Everything goes into the clinic database in DIR, with wall"
            " times from now on. When the controller cannot measure LOP, the simulated clinician"
            " enters a handheld Doppler reading. Exit status: 0 completed, 1 stopped, aborted or"
            " ended by an alarm, 2 bad input."
        ),
    )
    parser.add_argument("--protocol", required=True, metavar="NAME", help="protocol to run")
    parser.add_argument(
        "--limb", choices=("arm", "leg"), help="limb (default: the protocol's first)"
    )
    parser.add_argument("--side", choices=SIDES, default="left")
    parser.add_argument("--posture", choices=POSTURES, default="seated")
    parser.add_argument("--pct-lop", type=float, metavar="PCT", help="cuff pressure in %% LOP")
    parser.add_argument("--plant", help="plant MODULE:CALLABLE (default: the project's cuff)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the simulated patient")
    parser.add_argument(
        "--data-dir", type=Path, required=True, metavar="DIR", help="clinic database directory"
    )
    parser.add_argument(
        "--patient", metavar="CLINIC_ID", help="simulated patient's clinic ID (default SIM-SEED)"
    )
    parser.add_argument(
        "--reuse-lop", action="store_true", help="use a LOP on record from the last 7 days"
    )
    parser.add_argument(
        "--events",
        action="store_true",
        help="print each event as a JSON line once it is stored (with its event_id)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=120.0,
        metavar="MIN",
        help="simulated time after which the session is closed (default 120)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.protocols import installed_protocols
    from appliance.sessions.plan import PlanError, SessionPlan
    from appliance.sessions.recovery import end_interrupted_sessions
    from appliance.sessions.simulated import SimulatedSession, enroll_simulated_patient
    from appliance.simulation import build_simulated
    from appliance.store import Store, StoreError

    def bad(message: str) -> int:
        print(f"bfr sim session: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT

    protocols = installed_protocols(args.data_dir if args.data_dir.is_dir() else None)
    protocol = protocols.get(args.protocol)
    if protocol is None:
        return bad(f"no protocol {args.protocol!r} (installed: {', '.join(sorted(protocols))})")
    if not 0 < args.max_minutes <= 24 * 60:
        return bad("--max-minutes must be in (0, 1440]")
    try:
        plant, limb = _plant(args, protocol.limbs)
    except ValueError as exc:
        return bad(str(exc))
    width = getattr(getattr(plant, "patient", None), "cuff_width_cm", None)
    cuff = f"{limb}-{width:g}cm" if width is not None else "standard"
    clinic_id = args.patient or f"SIM-{args.seed}"

    try:
        store = Store.open(args.data_dir)
    except StoreError as exc:
        return bad(str(exc))
    with store:
        wall0 = time.time()
        try:
            patient_id = enroll_simulated_patient(
                store, clinic_id, limb=limb, side=args.side, at=wall0
            )
        except ValueError as exc:
            return bad(str(exc))
        # A simulated patient's session left running belongs to a killed run of this command.
        end_interrupted_sessions(store, patient_id=patient_id)
        plan = SessionPlan(
            patient_id=patient_id,
            protocol=protocol,
            limb=limb,
            side=args.side,
            posture=args.posture,
            cuff=cuff,
            clinician="sim clinician",
            pct_lop=args.pct_lop,
            lop_source="recorded" if args.reuse_lop else "measure",
        )
        try:
            sim = build_simulated(plant, args.seed)
            session = SimulatedSession(store, plan, sim, seed=args.seed, wall0=wall0)
        except (PlanError, ValueError) as exc:
            return bad(str(exc))
        if args.events:
            session.runner.subscribe(_print_stored)
        started = time.monotonic()
        summary = session.run(max_s=args.max_minutes * 60.0)
        wall_s = time.monotonic() - started
        report = summary | {"simulated_s": round(session.now, 1), "wall_s": round(wall_s, 2)}
        if args.json:
            print(json.dumps(report, sort_keys=True))
        else:
            print(_text(report))
    return EXIT_COMPLETED if summary["outcome"] == "completed" else EXIT_NOT_COMPLETED


def _plant(args: argparse.Namespace, limbs: tuple[str, ...]) -> tuple[Any, str]:
    """The plant and the limb it is on: a given plant keeps its own patient's limb."""
    if args.limb is not None and args.limb not in limbs:
        raise ValueError(f"--limb: the protocol is for the {' or '.join(limbs)}")
    if args.plant:
        from hardware.sim.plant import build_plant

        plant = build_plant(args.plant, args.seed)
        own = getattr(getattr(plant, "patient", None), "limb", None)
        if own is not None and args.limb is not None and own != args.limb:
            raise ValueError(f"--limb {args.limb}: the plant's cuff is on the {own}")
        limb = args.limb or own or limbs[0]
        if limb not in limbs:
            raise ValueError(f"the plant's cuff is on the {limb}; the protocol is for {limbs}")
        return plant, limb
    from hardware.sim.cuff import default_plant

    limb = args.limb or limbs[0]
    return default_plant(args.seed, limb=limb, posture=args.posture), limb


def _print_stored(event: Any) -> None:
    if event.stored:
        print(json.dumps({"event": event.to_dict()}, sort_keys=True), flush=True)


def _text(report: dict[str, Any]) -> str:
    if report.get("session_id") is None:
        return f"no session: {report['outcome']} ({report.get('reason', '')})"
    lines = [
        f"session {report['session_id']} {report['outcome']}"
        + (f" ({report['reason']})" if report.get("reason") else "")
        + f": {report['protocol']} v{report['protocol_version']}, {report['limb']}"
        f" {report['side']}, {report['posture']}, cuff {report['cuff']}"
    ]
    lop = report.get("lop")
    if lop:
        second = f" / {lop['second_mmHg']:.0f}" if lop["second_mmHg"] is not None else ""
        flag = ", spread flagged" if lop["spread_flag"] else ""
        lines.append(
            f"LOP {lop['lop_mmHg']:.0f} mmHg ({lop['first_mmHg']:.0f}{second}, {lop['method']}"
            f"{flag}); cuff at {report['pct_lop']:g} % LOP = {report['target_mmHg']:.1f} mmHg"
        )
    else:
        lines.append("LOP: none")
    for exercise in report["exercises"]:
        lines.append(
            f"{exercise['name']}: {exercise['sets_done']}/{exercise['sets_planned']} sets"
            f" ({exercise['ended_by'] or 'not started'})"
        )
        for s in report["sets"]:
            if s["exercise_index"] != exercise["index"]:
                continue
            done = (
                f"{s['reps_done']}/{s['reps_target']} reps"
                if s["reps_target"] is not None
                else f"{s['duration_s']:.0f} s"
            )
            lines.append(f"  set {s['set_index'] + 1}: {done}, RPE {s['rpe']}, pain {s['pain']}")
    codes = [a["code"] for a in report["alarms"]]
    lines.append("alarms: " + (", ".join(codes) if codes else "none"))
    minutes, seconds = divmod(int(report["simulated_s"]), 60)
    lines.append(f"{minutes} min {seconds} s simulated in {report['wall_s']:.1f} s")
    return "\n".join(lines)
