"""`bfr protocols`: list the installed treatment protocols, packaged and custom."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from appliance.protocols import (
    Protocol,
    ProtocolError,
    load_custom_protocols,
    packaged_protocols,
)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "protocols",
        help="list the installed treatment protocols",
        description=(
            "List the treatment protocols by name with version, kind and title: the ones shipped"
            " with the software and, with --data-dir, the clinic's custom ones. Exits 1 when a"
            " protocol file is invalid (it is named on stderr and left out of the list)."
        ),
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="also list custom protocols saved under DIR/protocols",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        protocols = packaged_protocols()
    except ProtocolError as exc:
        print(f"bfr protocols: packaged protocol invalid: {exc}", file=sys.stderr)
        return 1
    problems: list[ProtocolError] = []
    if args.data_dir is not None:
        if not args.data_dir.is_dir():
            print(f"bfr protocols: no such data directory: {args.data_dir}", file=sys.stderr)
            return 2
        custom, problems = load_custom_protocols(args.data_dir, packaged=protocols)
        protocols.update(custom)

    ordered = sorted(protocols.values(), key=lambda p: p.name)
    if args.json:
        json.dump([_summary(p) for p in ordered], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(ordered)
    for problem in problems:
        print(f"bfr protocols: skipped {problem}", file=sys.stderr)
    return 1 if problems else 0


def _summary(protocol: Protocol) -> dict[str, Any]:
    return {
        "name": protocol.name,
        "version": protocol.version,
        "title": protocol.title,
        "kind": protocol.kind,
        "origin": protocol.origin,
        "limbs": list(protocol.limbs),
        "pct_lop": {limb: protocol.pct_lop.for_limb(limb) for limb in protocol.limbs},
        "planned_s": protocol.planned_s,
        "protocol": protocol.to_dict(),
    }


def _print_table(protocols: list[Protocol]) -> None:
    rows = [("NAME", "VERSION", "KIND", "ORIGIN", "TITLE")]
    rows += [(p.name, str(p.version), p.kind, p.origin, p.title) for p in protocols]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        print("  ".join([*cells, row[4]]))
