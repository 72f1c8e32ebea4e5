"""`bfr lop-estimate FILE.csv [--json]`: occlusion pressure of a recorded cuff trace."""

from __future__ import annotations

import argparse
import json
import sys

from appliance.exit_codes import EXIT_BAD_INPUT, EXIT_OK
from appliance.exit_codes import EXIT_NO_RESULT as EXIT_NOT_MEASURED
from appliance.lop import LopEstimate, estimate_lop, load_trace_csv


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lop-estimate",
        help="estimate limb occlusion pressure from a recorded cuff trace (CSV)",
        description=(
            "Read a CSV with columns t_s,pressure_mmHg (inflating or deflating cuff) and report "
            "the limb occlusion pressure, or why it could not be measured. Exit status: 0 "
            "measured, 1 not measurable (reason given), 2 unreadable input."
        ),
    )
    parser.add_argument("trace", metavar="FILE.csv", help="recorded trace with t_s,pressure_mmHg")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        t, p = load_trace_csv(args.trace)
    except UnicodeDecodeError:
        print(f"bfr lop-estimate: cannot read {args.trace}: not a text CSV file", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as exc:
        # The message already names the file and the line at fault.
        print(f"bfr lop-estimate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"bfr lop-estimate: cannot read {args.trace}: {_describe(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    estimate = estimate_lop(t, p)
    if args.json:
        print(json.dumps(estimate.to_json_dict()))
    else:
        print(summary(estimate))
    return EXIT_OK if estimate.lop_mmHg is not None else EXIT_NOT_MEASURED


def summary(estimate: LopEstimate) -> str:
    """A few lines a clinician can read at the device."""
    heart = (
        f"{estimate.heart_rate_bpm:.0f} bpm" if estimate.heart_rate_bpm is not None else "unknown"
    )
    if estimate.lop_mmHg is None:
        lines = [f"LOP: not measured - {estimate.reason}"]
    else:
        lines = [
            f"LOP: {estimate.lop_mmHg:.0f} mmHg (confidence {estimate.confidence:.2f})",
        ]
        if estimate.peak_pulsation_mmHg is not None:
            lines.append(f"Largest pulsations at {estimate.peak_pulsation_mmHg:.0f} mmHg")
    lines.append(f"Heart rate: {heart}, {estimate.beats} beats on the {estimate.ramp or 'trace'}")
    return "\n".join(lines)


def _describe(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return str(exc) or type(exc).__name__
