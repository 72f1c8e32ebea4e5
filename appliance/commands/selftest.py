"""`bfr selftest`: the power-on and on-demand self-test of the cuff, pump, valve and sensor."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

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
        "selftest",
        help="self-test: sensor at zero, valve, pump, leak, the stop button and the buzzer",
        description=(
            "Wrap the cuff around the test cylinder (never a patient's limb) and connect it. "
            "The controller checks the sensor with the cuff vented, that the valve empties the "
            "cuff, that the pump builds pressure fast enough and that the cuff holds its "
            "pressure (leak test); then you press the stop button and say whether you heard the "
            "alarm buzzer beep five times. The result is stored in the "
            "data directory and the audit trail and shown on the clinician screen; sessions are "
            "refused after a failed self-test. Limits: docs/technician.md. Exit status: 0 "
            "passed, 1 failed, 2 could not run."
        ),
    )
    p.add_argument(
        "--no-button",
        action="store_true",
        help="skip the stop button (recorded as not tested)",
    )
    p.add_argument(
        "--no-buzzer",
        action="store_true",
        help="skip the alarm buzzer (recorded as not tested)",
    )
    p.add_argument(
        "--leak-test-mmHg",
        type=float,
        metavar="MMHG",
        help="pressure of the leak test (default 150)",
    )
    p.add_argument(
        "--reset", action="store_true", help="reset a latched fault first (once its cause is fixed)"
    )
    p.add_argument("--technician", metavar="NAME", help="who runs it (default: login name)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    add_site_options(p)
    add_sim_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.technician import audit_entry
    from appliance.technician.preflight import require_no_session
    from appliance.technician.selftest_results import record_selftest
    from appliance.technician.selftest_run import run_selftest

    progress = Progress()
    try:
        site = resolve_site(args)
        link = open_link(args, site)
    except TechnicianError as exc:
        return fail("selftest", exc, EXIT_UNUSABLE)
    # A simulated run writes nothing to the device's data directory unless asked to.
    data_dir = site.data_dir if (not args.sim or args.data_dir) else None
    technician = technician_name(args.technician)
    try:
        if data_dir is not None:
            import time

            for stale in require_no_session(data_dir, time.time(), "self-test"):
                progress.warn(f"session {stale.id} was never ended (left over from a crash?)")
        report = run_selftest(
            link,
            progress=progress,
            technician=technician,
            leak_test_mmHg=args.leak_test_mmHg,
            button=not args.no_button,
            buzzer=not args.no_buzzer,
            reset=args.reset,
        )
    except TechnicianError as exc:
        return fail("selftest", exc, EXIT_UNUSABLE)
    finally:
        link.close()
    if data_dir is not None:
        try:
            report["stored"] = str(record_selftest(data_dir, report))
        except TechnicianError as exc:
            fail("selftest", exc)
            report["stored"] = None
        problem = audit_entry.audit(
            data_dir,
            actor=technician,
            action=audit_entry.SELFTEST,
            subject="passed" if report["passed"] else "failed",
            detail=report,
        )
        if problem:
            progress.warn(problem)
    else:
        report["stored"] = None
    _print(report, args.json)
    return EXIT_OK if report["passed"] else EXIT_FAILED


def _print(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report))
        return
    print(f"self-test {'PASSED' if report['passed'] else 'FAILED'} ({report['at']})")
    for c in report["checks"]:
        figure = "" if c["figure"] is None else f"{c['figure']:g} {c['unit']}"
        limit = "" if c["limit"] is None else f"limit {c['limit']:g}"
        print(
            f"  {c['name']:<14} {c['status'].upper():<10} {figure:<16} {limit:<11} {c['message']}"
        )
    if not report["passed"]:
        print(f"next: {report['advice'] or 'fix the failed check and run the self-test again'}")
        print("sessions are refused until a self-test passes")
    if report.get("stored") is None:
        print("(not stored)", file=sys.stderr)
