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
        try:
            module = importlib.import_module(f"{commands.__name__}.{info.name}")
        except Exception as exc:  # one broken command must not take `bfr controller` down with it
            _register_broken(sub, info.name, exc)
            continue
        module.register(sub)
    return parser


def _register_broken(sub: argparse._SubParsersAction, name: str, exc: Exception) -> None:
    """Keep the command listed, and say why it cannot run, instead of failing every command."""
    reason = f"{type(exc).__name__}: {exc}"
    p = sub.add_parser(name.replace("_", "-"), help=f"(unavailable: {reason})")

    def fail(_args: argparse.Namespace) -> int:
        print(
            f"bfr {p.prog.split()[-1]}: unavailable in this installation: {reason}", file=sys.stderr
        )
        return 2

    p.set_defaults(func=fail)


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
