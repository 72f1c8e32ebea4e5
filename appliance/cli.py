"""The `bfr` command line: one sub-command per module in `appliance.commands`.

Modules named `sim_*` are sub-commands of `bfr sim` and are registered by `commands/sim.py`.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from appliance import __version__, commands


def build_parser() -> argparse.ArgumentParser:
    """Collect every command module so a new command is one new file."""
    parser = argparse.ArgumentParser(
        prog="bfr",
        description="Blood flow restriction appliance: controller, LOP, sessions, technician tools.",
    )
    parser.add_argument("--version", action="version", version=f"bfr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("sim_"):
            continue  # sub-commands of `bfr sim`, registered by commands/sim.py
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
