"""`bfr sim ...`: the appliance in simulated time; each `commands/sim_*.py` adds one sub-command."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from typing import Any

from appliance import commands

PREFIX = "sim_"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "sim",
        help="run parts of the appliance against the simulated cuff, in simulated time",
        description=(
            "The real controller and session code against simulated hardware (emulated ADC,"
            " mock pins, a cuff-and-limb plant), as fast as the CPU allows."
        ),
    )
    sim_sub = parser.add_subparsers(dest="sim_command", metavar="SIM_COMMAND")
    # One module per sub-command, found like the top-level commands: a new one is one new file.
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith(PREFIX):
            module = importlib.import_module(f"{commands.__name__}.{info.name}")
            module.register(sim_sub)
    parser.set_defaults(func=_needs_sub_command(parser))


def _needs_sub_command(parser: argparse.ArgumentParser) -> Any:
    def run(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return run
