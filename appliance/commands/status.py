"""`bfr status`: the appliance on one screen, for a technician over SSH."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from appliance.technician.errors import TechnicianError
from appliance.technician.options import EXIT_OK, EXIT_UNUSABLE, add_site_options, fail
from appliance.technician.release_tree import DEFAULT_ROOT


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status",
        help="software, uptime, services, controller, alarms, calibration, self-test, disk",
        description=(
            "One screen: the running software and release directory, uptime, the appliance's "
            "services, the controller's state (over its socket; 'not running' when it does not "
            "answer), the latest alarms, calibration age, the last self-test, disk use of the "
            "data partition and the last update. Reads only; safe during a session."
        ),
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help=f"releases root (default {DEFAULT_ROOT})"
    )
    add_site_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.technician.options import resolve_site
    from appliance.technician.release_tree import ReleaseTree
    from appliance.technician.services import Systemctl
    from appliance.technician.status import gather_status, render
    from appliance.technician.update_host import controller_status

    try:
        site = resolve_site(args)
    except TechnicianError as exc:
        return fail("status", exc, EXIT_UNUSABLE)

    def controller() -> dict[str, Any] | None:
        if os.path.exists(site.socket) and not os.access(site.socket, os.R_OK | os.W_OK):
            raise TechnicianError(f"no permission on {site.socket}", "run `sudo bfr status`")
        return controller_status(site.socket)

    status = gather_status(
        tree=ReleaseTree(args.root),
        data_dir=site.data_dir,
        controller=controller,
        systemctl=Systemctl(),
        now=time.time(),
        selftest_max_age_s=site.selftest_max_age_s,
    )
    print(json.dumps(status) if args.json else render(status))
    return EXIT_OK
