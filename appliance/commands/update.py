"""`bfr update BUNDLE`: install a release beside the running one, switch, check, or roll back."""

from __future__ import annotations

import argparse
from pathlib import Path

from appliance.technician.bundle import DEFAULT_KEY_PATH
from appliance.technician.options import add_site_options
from appliance.technician.update_host import add_update_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "update",
        help="install a new release (signed bundle) with automatic rollback",
        description=(
            "Run with sudo on the appliance, never during a session. Checks the bundle's "
            "signature, installs the release into /opt/bfr/releases/<version>, migrates a copy "
            "of the clinic database with it, then stops the services, backs the database up, "
            "migrates it, switches /opt/bfr/current atomically and starts the services. If the "
            "controller is not READY or the web UI's health URL does not answer, everything is "
            "switched back and the database restored. Progress is also written to "
            "/data/bfr/updates/update.log, and the update carries on if the SSH connection "
            "drops. Exit status: 0 installed, 1 failed and the previous release runs, 2 refused "
            "(nothing changed), 3 the rollback failed too (do not treat patients)."
        ),
    )
    p.add_argument("bundle", type=Path, help="bfr-appliance-<version>.bfr (or a wheel)")
    p.add_argument(
        "--key",
        type=Path,
        default=DEFAULT_KEY_PATH,
        help=f"fleet update key (default {DEFAULT_KEY_PATH})",
    )
    p.add_argument(
        "--allow-unsigned",
        action="store_true",
        help="accept a bare wheel without a signature (recorded in the audit trail)",
    )
    p.add_argument("--extras", default="device", help="extras to install (default: device)")
    p.add_argument("--json", action="store_true", help="print the update record as JSON")
    add_update_options(p)
    add_site_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.technician.update import update
    from appliance.technician.update_host import run_on_device

    return run_on_device(
        "update",
        args,
        lambda host: update(
            host,
            args.bundle,
            key_path=args.key,
            allow_unsigned=args.allow_unsigned,
            allow_controller_down=args.allow_controller_down,
            extras=args.extras,
        ),
    )
