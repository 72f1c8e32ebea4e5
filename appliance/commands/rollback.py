"""`bfr rollback`: go back to the previous release by hand (and its database, if it must)."""

from __future__ import annotations

import argparse

from appliance.technician.options import add_site_options
from appliance.technician.update_host import add_update_options


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
    from appliance.technician.update import rollback
    from appliance.technician.update_host import run_on_device

    return run_on_device(
        "rollback",
        args,
        lambda host: rollback(
            host,
            restore_database=args.restore_database,
            allow_controller_down=args.allow_controller_down,
        ),
    )
