"""`bfr update BUNDLE`: install a release beside the running one, switch, check, or roll back."""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path

from appliance.technician.bundle import DEFAULT_KEY_PATH
from appliance.technician.errors import TechnicianError
from appliance.technician.options import EXIT_FAILED, EXIT_UNUSABLE, add_site_options, fail
from appliance.technician.update_host import add_update_options

EXIT_BROKEN = 3  # the rollback failed too


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
    from appliance.technician.options import resolve_site
    from appliance.technician.update import RollbackFailed, UpdateFailed, update
    from appliance.technician.update_host import device_host

    # A dropped SSH connection must not kill the update half-way through the switch.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        site = resolve_site(args)
        (site.data_dir / "updates").mkdir(parents=True, exist_ok=True)
        log = (site.data_dir / "updates" / "update.log").open("a")
    except (TechnicianError, OSError) as exc:
        error = exc if isinstance(exc, TechnicianError) else TechnicianError(str(exc), "sudo?")
        return fail("update", error, EXIT_UNUSABLE)
    with log:
        try:
            host = device_host(args, site, log)
            record = update(
                host,
                args.bundle,
                key_path=args.key,
                allow_unsigned=args.allow_unsigned,
                allow_controller_down=args.allow_controller_down,
                extras=args.extras,
            )
        except RollbackFailed as exc:
            return fail("update", exc, EXIT_BROKEN)
        except UpdateFailed as exc:
            return fail("update", exc, EXIT_FAILED)
        except TechnicianError as exc:
            return fail("update", exc, EXIT_UNUSABLE)
    if args.json:
        print(json.dumps(record))
    return 0
