"""`bfr calibrate`: zero and span of the pressure transducer against a reference gauge."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from appliance.technician.calibration import (
    ACCURACY_MMHG,
    VALID_DAYS,
    CalibrationPoint,
    read_record,
)
from appliance.technician.calibration_run import (
    GaugeReader,
    apply,
    calibrate,
    check,
    scripted_gauge,
    simulated_gauge,
    typed_gauge,
)
from appliance.technician.errors import TechnicianError
from appliance.technician.options import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNUSABLE,
    add_sim_options,
    add_site_options,
    fail,
    open_link,
    resolve_site,
    technician_name,
)
from appliance.technician.progress import Progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="calibrate the pressure sensor against a reference gauge (zero and span)",
        description=(
            "Connect a reference gauge to the cuff line with a T-piece and wrap the cuff around "
            "the test cylinder. For each point the controller inflates and holds the cuff (with "
            "its own limits); you read the gauge and type the value. A least-squares line "
            "through the points gives zero and span; it is stored in the data directory with "
            "the date, gauge ID and technician, recorded in the audit trail and applied to the "
            f"running controller. A calibration is valid for {VALID_DAYS} days; sessions are "
            "refused without one. --check measures the drift instead (limit "
            f"+-{ACCURACY_MMHG:g} mmHg). Exit status: 0 done/within limits, 1 rejected or out "
            "of limits or expired, 2 could not run."
        ),
    )
    p.add_argument(
        "--points",
        default="0,100,200",
        metavar="MMHG,...",
        help="pressures to hold, 0 = vented (default 0,100,200)",
    )
    p.add_argument(
        "--gauge-readings",
        metavar="MMHG,...",
        help="the gauge's readings at those points, in order (no prompts)",
    )
    p.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="NOMINAL=REFERENCE",
        help="a point measured before (uncalibrated reading = gauge), repeatable; no cuff used",
    )
    p.add_argument(
        "--gauge-id",
        "--reference-gauge-id",
        dest="gauge_id",
        metavar="ID",
        help="serial or asset number of the reference gauge (asked for when missing)",
    )
    p.add_argument("--technician", metavar="NAME", help="who calibrates (default: login name)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="measure drift, change nothing")
    mode.add_argument(
        "--apply", action="store_true", help="hand the stored calibration to the controller again"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    add_site_options(p)
    add_sim_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    progress = Progress()
    try:
        targets = _numbers(args.points, "--points")
        readings = _numbers(args.gauge_readings, "--gauge-readings") if args.gauge_readings else []
        given = [_pair(text) for text in args.point]
        if given and (args.check or readings):
            raise TechnicianError(
                "--point gives finished points: it goes with neither --check nor --gauge-readings",
                "drop --point, or the other option",
            )
        if readings and len(readings) != len(targets):
            raise TechnicianError(
                f"{len(readings)} gauge readings for {len(targets)} points",
                "give one reading per point, in the same order",
            )
        site = resolve_site(args)
    except TechnicianError as exc:
        return fail("calibrate", exc, EXIT_UNUSABLE)
    # A simulated run writes nothing to the device's data directory unless asked to.
    data_dir: Path | None = site.data_dir if (not args.sim or args.data_dir) else None
    try:
        link = open_link(args, site)
    except TechnicianError as exc:
        return fail("calibrate", exc, EXIT_UNUSABLE)
    try:
        if args.apply:
            return _reapply(link, data_dir, progress)
        gauge: GaugeReader | None = scripted_gauge(readings) if readings else None
        if gauge is None and not given:
            if link.simulated:
                gauge = simulated_gauge(progress)
            elif sys.stdin.isatty():
                gauge = typed_gauge(link)
            else:
                raise TechnicianError(
                    "no terminal to type gauge readings into", "pass --gauge-readings"
                )
        gauge_id = args.gauge_id or ("simulated" if link.simulated else _ask_gauge_id())
        technician = technician_name(args.technician)
        if args.check:
            assert gauge is not None  # --check excludes --point
            report = check(
                link,
                targets=targets,
                gauge=gauge,
                technician=technician,
                gauge_id=gauge_id,
                data_dir=data_dir,
                progress=progress,
            )
            _print_check(report, args.json)
            return EXIT_OK if report["passed"] else EXIT_FAILED
        report = calibrate(
            link,
            targets=targets,
            gauge=gauge,
            given=given,
            gauge_id=gauge_id,
            technician=technician,
            data_dir=data_dir,
            progress=progress,
        )
        _print_calibration(report, args.json)
        return EXIT_OK
    except TechnicianError as exc:
        return fail("calibrate", exc, EXIT_FAILED)
    finally:
        link.close()


def _reapply(link: Any, data_dir: Path | None, progress: Progress) -> int:
    if data_dir is None:
        raise TechnicianError("--apply needs the data directory", "pass --data-dir")
    record = read_record(data_dir)
    if record is None:
        raise TechnicianError(f"no calibration stored in {data_dir}", "run `bfr calibrate`")
    apply(link, record, progress)
    return EXIT_OK


def _ask_gauge_id() -> str:
    if not sys.stdin.isatty():
        raise TechnicianError("the reference gauge ID is missing", "pass --gauge-id ID")
    text = input("Reference gauge ID (serial or asset number): ").strip()
    if not text:
        raise TechnicianError("the reference gauge ID is missing", "pass --gauge-id ID")
    return text


def _numbers(text: str, option: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise TechnicianError(
            f"{option}: {text!r} is not a list of numbers", f"e.g. {option} 0,100,200"
        ) from None
    if not values:
        raise TechnicianError(f"{option}: no values", f"e.g. {option} 0,100,200")
    return values


def _pair(text: str) -> CalibrationPoint:
    nominal, sep, reference = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return CalibrationPoint(float(nominal), float(reference))
    except ValueError:
        raise TechnicianError(
            f"--point {text!r} is not NOMINAL=REFERENCE", "e.g. --point 99.2=100.5"
        ) from None


def _print_calibration(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report))
        return
    cal = report["calibration"]
    print(
        f"calibration: zero {cal['zero_mmHg']:+.2f} mmHg, span {cal['span']:.4f} "
        f"(gauge {cal['gauge_id']}, technician {cal['technician']})"
    )
    print(f"  {'uncalibrated':>13}  {'gauge':>7}  {'residual':>8}")
    for point, residual in zip(cal["points"], cal["residuals_mmHg"], strict=True):
        print(
            f"  {point['nominal_mmHg']:>13.1f}  {point['reference_mmHg']:>7.1f}  {residual:>+8.2f}"
        )
    print(f"valid until {cal['expires_at']}")
    print(f"stored: {report['stored'] or 'no'}; applied to the controller: {report['applied']}")


def _print_check(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report))
        return
    print(f"calibration record: {report['record']['message']}")
    print(f"  {'target':>6}  {'device':>7}  {'gauge':>7}  {'drift':>6}")
    for row in report["points"]:
        mark = "ok" if row["passed"] else f"OUT OF +-{row['limit_mmHg']:g}"
        print(
            f"  {row['target_mmHg']:>6g}  {row['device_mmHg']:>7.1f}  {row['gauge_mmHg']:>7.1f}"
            f"  {row['drift_mmHg']:>+6.1f}  {mark}"
        )
    if report["passed"]:
        print("calibration check passed")
    else:
        print("calibration check FAILED: calibrate again (`bfr calibrate`)")
