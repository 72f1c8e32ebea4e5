"""`bfr export`: sessions as CSV and printable HTML reports, for the clinic's records."""

from __future__ import annotations

import argparse
import getpass
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

from appliance.export import ExportError, export_records, parse_since
from appliance.store import DEFAULT_DATA_DIR, Store, StoreError


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "export",
        help="export sessions as CSV and printable HTML reports",
        description=(
            "Write sessions.csv, sets.csv, events.csv, alarms.csv, lop.csv and traces.csv, one"
            " self-contained HTML report per session (pressure plot, sets, alarms, LOP history)"
            " and an index.html into DIR. The export is recorded in the audit trail."
            " Exit code 2 on bad input: unknown patient, bad date, no database."
        ),
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help=f"the appliance's data directory (default {DEFAULT_DATA_DIR})",
    )
    parser.add_argument("--patient", metavar="CLINIC_ID", help="only this patient")
    parser.add_argument(
        "--since", metavar="DATE", help="only sessions started on or after DATE (YYYY-MM-DD)"
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write")
    parser.add_argument(
        "--by",
        default=None,
        metavar="NAME",
        help="who is exporting, for the audit trail (default: the login name)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        since = parse_since(args.since) if args.since is not None else None
        with Store.open(args.data_dir, create=False) as store:
            result = export_records(
                store, args.out, by=args.by or _login_name(), patient=args.patient, since=since
            )
    except (ExportError, StoreError) as exc:
        print(f"bfr export: {exc}", file=sys.stderr)
        return 2
    except (sqlite3.Error, OSError) as exc:
        print(f"bfr export: failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"exported {result.sessions} session(s) of {result.patients} patient(s):"
        f" {len(result.files)} files in {result.out_dir}"
    )
    return 0


def _login_name() -> str:
    # Under sudo the person is SUDO_USER; getuser() would only say "root".
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
