"""The real device behind an update: systemd, the controller socket, the web health URL."""

from __future__ import annotations

import argparse
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from appliance.technician.errors import TechnicianError
from appliance.technician.link import DeviceLink
from appliance.technician.options import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNUSABLE,
    Site,
    fail,
    resolve_site,
    technician_name,
)
from appliance.technician.progress import Progress
from appliance.technician.release_tree import DEFAULT_ROOT, ReleaseTree
from appliance.technician.services import DEFAULT_HEALTH_URL, HealthCheck, Systemctl
from appliance.technician.update import RollbackFailed, UpdateFailed, UpdateHost

EXIT_BROKEN = 3  # the rollback failed too


def add_update_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        type=Path,
        default=DEFAULT_ROOT,
        help=f"where releases live (default {DEFAULT_ROOT})",
    )
    parser.add_argument(
        "--health-url",
        default=DEFAULT_HEALTH_URL,
        help=f"the web UI's health URL (default {DEFAULT_HEALTH_URL})",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=90.0,
        metavar="S",
        help="how long the services may take to come up (default 90 s)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=5.0,
        metavar="S",
        help="how long they must then stay up without a restart (default 5 s)",
    )
    parser.add_argument(
        "--allow-controller-down",
        action="store_true",
        help="go ahead when the controller does not answer (no patient connected!)",
    )
    parser.add_argument("--technician", metavar="NAME", help="who does it (default: login name)")


def controller_status(socket: str) -> dict[str, Any] | None:
    link = DeviceLink(socket)
    try:
        return link.status()
    except TechnicianError:
        return None
    finally:
        link.close()


def device_host(args: argparse.Namespace, site: Site, log: TextIO | None) -> UpdateHost:
    systemctl = Systemctl()
    if not systemctl.available():
        raise TechnicianError("systemctl not found", "updates run on the appliance itself")
    return UpdateHost(
        tree=ReleaseTree(args.root),
        data_dir=site.data_dir,
        systemctl=systemctl,
        health=HealthCheck(
            systemctl,
            health_url=args.health_url,
            controller_answers=lambda: controller_status(site.socket) is not None,
            ready_timeout_s=args.ready_timeout,
            settle_s=args.settle,
        ),
        controller_status=lambda: controller_status(site.socket),
        progress=Progress(log=log),
        actor=technician_name(args.technician),
    )


def run_on_device(
    command: str, args: argparse.Namespace, job: Callable[[UpdateHost], dict[str, Any]]
) -> int:
    """Run `bfr update`/`bfr rollback`'s `job` on this device, logging to the updates' log.

    Returns the command's exit status; with --json the job's record is printed.
    """
    # A dropped SSH connection must not kill the update half-way through the switch.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        site = resolve_site(args)
        (site.data_dir / "updates").mkdir(parents=True, exist_ok=True)
        log = (site.data_dir / "updates" / "update.log").open("a")
    except (TechnicianError, OSError) as exc:
        error = exc if isinstance(exc, TechnicianError) else TechnicianError(str(exc), "sudo?")
        return fail(command, error, EXIT_UNUSABLE)
    with log:
        try:
            record = job(device_host(args, site, log))
        except RollbackFailed as exc:
            return fail(command, exc, EXIT_BROKEN)
        except UpdateFailed as exc:
            return fail(command, exc, EXIT_FAILED)
        except TechnicianError as exc:
            return fail(command, exc, EXIT_UNUSABLE)
    if args.json:
        print(json.dumps(record))
    return EXIT_OK
