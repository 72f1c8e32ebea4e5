"""Command-line options shared by the technician commands: where the device keeps things."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from appliance.config import DEFAULT_CONFIG_PATH, ConfigError, load_config
from appliance.exit_codes import EXIT_BAD_INPUT, EXIT_NO_RESULT
from appliance.exit_codes import EXIT_OK as EXIT_OK  # the technician commands import all three here
from appliance.technician.errors import TechnicianError
from appliance.technician.link import SIM_FAULTS, ControllerLink, DeviceLink, simulated_link

EXIT_FAILED = EXIT_NO_RESULT  # the check ran and found a problem
EXIT_UNUSABLE = EXIT_BAD_INPUT  # bad input, or the check could not run


@dataclass(frozen=True)
class Site:
    """This device's paths, from `/etc/bfr/bfr.toml` unless overridden on the command line."""

    socket: str
    data_dir: Path
    selftest_max_age_s: float | None = None  # the clinic's policy ([readiness])


def add_site_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"appliance config (default {DEFAULT_CONFIG_PATH} when present)",
    )
    parser.add_argument("--data-dir", type=Path, metavar="DIR", help="data directory override")
    parser.add_argument(
        "--socket", metavar="PATH", help="the controller's technician socket (default from config)"
    )


def add_sim_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sim", action="store_true", help="use a simulated cuff in simulated time, not the device"
    )
    parser.add_argument(
        "--plant",
        metavar="MODULE:CALLABLE",
        help="simulated plant for --sim (default: the cuff on a test cylinder)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated plant")
    parser.add_argument(
        "--sim-fault", choices=SIM_FAULTS, help="inject a fault into the simulated cuff"
    )


def resolve_site(args: argparse.Namespace) -> Site:
    path = args.config
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = DEFAULT_CONFIG_PATH
    try:
        config = load_config(path)
    except ConfigError as exc:
        raise TechnicianError(f"config: {exc}", "fix the file or pass --config") from exc
    return Site(
        # The technicians' socket: calibration and the self-test inflate a cuff on a test
        # cylinder, which the clinic's socket refuses until their records exist.
        socket=args.socket or config.paths.technician_socket,
        data_dir=args.data_dir or Path(config.paths.data_dir),
        selftest_max_age_s=config.readiness.selftest_max_age_s,
    )


def open_link(args: argparse.Namespace, site: Site) -> ControllerLink:
    if getattr(args, "sim", False):
        return simulated_link(args.plant, args.seed, args.sim_fault)
    if getattr(args, "plant", None) or getattr(args, "sim_fault", None):
        raise TechnicianError("--plant and --sim-fault only apply with --sim", "add --sim")
    return DeviceLink(site.socket)


def technician_name(explicit: str | None = None) -> str:
    """Who is at the keyboard: under sudo that is SUDO_USER, not root."""
    if explicit and explicit.strip():
        return explicit.strip()
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def fail(command: str, exc: TechnicianError, code: int = EXIT_UNUSABLE) -> int:
    """Print an error with its next step; return the exit code."""
    print(f"bfr {command}: {exc.message}", file=sys.stderr)
    if exc.advice:
        print(f"  next: {exc.advice}", file=sys.stderr)
    return code
