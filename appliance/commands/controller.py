"""`bfr controller`: the controller daemon (systemd Type=notify), real hardware or `--sim`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from appliance.config import ConfigError, load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "controller",
        help="run the pressure controller daemon (owns pump, valve and sensor)",
        description="Run the controller: the only process that drives the pump and valve. "
        "Serves the IPC socket (docs/ipc.md) and notifies systemd's watchdog while healthy.",
    )
    p.add_argument("--config", type=Path, help="appliance TOML config (default: built-in)")
    p.add_argument("--socket", help="the clinic's IPC socket (default from config)")
    p.add_argument(
        "--technician-socket",
        help="the technicians' IPC socket (default from config; beside --socket when given)",
    )
    p.add_argument(
        "--data-dir", type=Path, help="calibration and self-test records (default from config)"
    )
    p.add_argument("--sim", action="store_true", help="simulated cuff in real time")
    p.add_argument("--plant", help="plant MODULE:CALLABLE for --sim")
    p.add_argument("--seed", type=int, default=0, help="seed for the simulated plant")
    p.add_argument(
        "--check-readiness",
        action="store_true",
        help="with --sim: refuse to inflate on the clinic's socket without calibration and "
        "self-test records, as the device always does",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"bfr controller: {exc}", file=sys.stderr)
        return 2
    if args.check_readiness and not args.sim:
        print(
            "bfr controller: --check-readiness is for --sim; the device always checks",
            file=sys.stderr,
        )
        return 2
    from appliance.controller.ipc import SocketInUse
    from appliance.controller.process import run_controller

    try:
        return run_controller(
            config,
            sim=args.sim,
            plant=args.plant,
            seed=args.seed,
            socket_path=args.socket,
            technician_socket_path=args.technician_socket,
            data_dir=args.data_dir,
            check_readiness=args.check_readiness,
        )
    except (ValueError, SocketInUse) as exc:
        print(f"bfr controller: {exc}", file=sys.stderr)
        return 2
