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
    p.add_argument("--socket", help="IPC socket path (default from config)")
    p.add_argument("--sim", action="store_true", help="simulated cuff in real time")
    p.add_argument("--plant", help="plant MODULE:CALLABLE for --sim")
    p.add_argument("--seed", type=int, default=0, help="seed for the simulated plant")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"bfr controller: {exc}", file=sys.stderr)
        return 2
    from appliance.controller.process import run_controller

    try:
        return run_controller(
            config, sim=args.sim, plant=args.plant, seed=args.seed, socket_path=args.socket
        )
    except ValueError as exc:
        print(f"bfr controller: {exc}", file=sys.stderr)
        return 2
