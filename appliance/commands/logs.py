"""`bfr logs`: the appliance's journal and the clinic database's events on one time line."""

from __future__ import annotations

import argparse
import json
import sys
import time

from appliance.technician.errors import TechnicianError
from appliance.technician.options import EXIT_OK, EXIT_UNUSABLE, add_site_options, fail


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "logs",
        help="journal of the appliance's services and session events, merged",
        description=(
            "Merge journald entries of the appliance's units (journalctl -o json; run as a "
            "member of systemd-journal or with sudo) with the clinic database's session events "
            "(level info), alarms (warning) and audit entries (notice), oldest first. With "
            "--unit only that unit's journal is shown; with --session only that session's "
            "records and the journal during it."
        ),
    )
    p.add_argument(
        "--since", metavar="WHEN", help="2h (ago), 30m, 3d, today, yesterday or '2025-03-01 14:00'"
    )
    p.add_argument(
        "--unit",
        action="append",
        metavar="UNIT",
        help="only this systemd unit's journal, e.g. bfr-controller (repeatable)",
    )
    p.add_argument("--session", type=int, metavar="ID", help="only this session")
    p.add_argument(
        "--level",
        default="info",
        help="this level and more severe: err, warning, notice, info (default), debug",
    )
    p.add_argument(
        "--lines", type=int, default=200, metavar="N", help="the last N entries (0: all)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    add_site_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.technician.logs import (
        APPLIANCE_UNITS,
        journal_entries,
        level_priority,
        parse_since,
        session_window,
        store_entries,
    )
    from appliance.technician.options import resolve_site

    now = time.time()
    try:
        site = resolve_site(args)
        max_priority = level_priority(args.level)
        since = parse_since(args.since, now) if args.since else None
        until = None
        if args.session is not None:
            start, until = session_window(site.data_dir, args.session, now)
            since = max(since or start, start)
        units = tuple(u if "." in u else f"{u}.service" for u in args.unit or APPLIANCE_UNITS)
        entries, note = journal_entries(units, since=since, until=until, level=args.level)
        if note:
            print(f"bfr logs: {note}", file=sys.stderr)
        if args.unit is None:
            entries += store_entries(
                site.data_dir, since=since, session_id=args.session, max_priority=max_priority
            )
    except TechnicianError as exc:
        return fail("logs", exc, EXIT_UNUSABLE)
    entries.sort(key=lambda e: e.at)
    if args.lines > 0:
        entries = entries[-args.lines :]
    for entry in entries:
        print(json.dumps(entry.to_dict()) if args.json else entry.render())
    return EXIT_OK
