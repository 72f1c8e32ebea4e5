"""`bfr rollback`: go back to the previous release by hand (and its database, if it must)."""

from __future__ import annotations

import argparse
import json
import signal

from appliance.technician.errors import TechnicianError
from appliance.technician.options import EXIT_FAILED, EXIT_UNUSABLE, add_site_options, fail
from appliance.technician.update_host import add_update_options

EXIT_BROKEN = 3


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rollback",
        help="switch back to the previous release",
        description=(
            "Run with sudo, never during a session. Switches /opt/bfr/current back to the "
            "previous release (a second rollback goes forward again) with the same checks as "
            "an update. If the update had migrated the database to a schema the previous "
            "release cannot read, the database backup taken at the update is restored; that "
            "needs --restore-database, and the records made since are set aside in a file, "
            "not deleted. Exit status: 0 done, 1 failed and the release before runs again, 2 "
            "refused, 3 failed and could not go back (do not treat patients)."
        ),
    )
    p.add_argument(
        "--restore-database",
        action="store_true",
        help="restore the database backup of the update if the previous release needs it",
    )
    p.add_argument("--json", action="store_true", help="print the rollback record as JSON")
    add_update_options(p)
    add_site_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.technician.options import resolve_site
    from appliance.technician.update import RollbackFailed, UpdateFailed, rollback
    from appliance.technician.update_host import device_host

    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        site = resolve_site(args)
        (site.data_dir / "updates").mkdir(parents=True, exist_ok=True)
        log = (site.data_dir / "updates" / "update.log").open("a")
    except (TechnicianError, OSError) as exc:
        error = exc if isinstance(exc, TechnicianError) else TechnicianError(str(exc), "sudo?")
        return fail("rollback", error, EXIT_UNUSABLE)
    with log:
        try:
            record = rollback(
                device_host(args, site, log),
                restore_database=args.restore_database,
                allow_controller_down=args.allow_controller_down,
            )
        except RollbackFailed as exc:
            return fail("rollback", exc, EXIT_BROKEN)
        except UpdateFailed as exc:
            return fail("rollback", exc, EXIT_FAILED)
        except TechnicianError as exc:
            return fail("rollback", exc, EXIT_UNUSABLE)
    if args.json:
        print(json.dumps(record))
    return 0
