"""Build a signed release bundle: `python -m appliance.technician.release` (used by `make release`).

Builds the wheel with `pip wheel --no-deps`, adds dependency wheels from `--wheelhouse` when
given (for releases that change dependencies: the device installs offline), writes the manifest
and signs it with the fleet key.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from appliance.store.migrations import MIGRATIONS
from appliance.technician.bundle import build_bundle, load_key, new_key
from appliance.technician.errors import TechnicianError


def build_wheel(project: Path, out: Path, isolation: bool = True) -> Path:
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out)]
    if not isolation:
        argv.append("--no-build-isolation")
    done = subprocess.run([*argv, str(project)], capture_output=True, text=True)
    if done.returncode != 0:
        raise TechnicianError(f"pip wheel failed:\n{done.stderr.strip()[-2000:]}")
    wheels = sorted(out.glob("bfr_appliance-*.whl"))
    if len(wheels) != 1:
        raise TechnicianError(f"expected one bfr_appliance wheel in {out}, found {wheels}")
    return wheels[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m appliance.technician.release",
        description="Build dist/bfr-appliance-<version>.bfr: wheel, manifest, HMAC signature.",
    )
    parser.add_argument("--key", type=Path, help="fleet update key (hex, 32+ bytes)")
    parser.add_argument("--new-key", type=Path, metavar="FILE", help="create a key and exit")
    parser.add_argument("--out", type=Path, default=Path("dist"), help="output directory")
    parser.add_argument("--project", type=Path, default=Path("."), help="project to build")
    parser.add_argument("--wheel", type=Path, help="use this wheel instead of building one")
    parser.add_argument(
        "--wheelhouse", type=Path, metavar="DIR", help="dependency wheels for the device to add"
    )
    parser.add_argument(
        "--no-build-isolation", action="store_true", help="build with the installed setuptools"
    )
    args = parser.parse_args(argv)
    try:
        if args.new_key:
            print(f"new update key {new_key(args.new_key)} in {args.new_key}")
            return 0
        if args.key is None:
            raise TechnicianError("no --key given", "pass the fleet key: --key FILE")
        key = load_key(args.key)
        # The appliance itself goes in once, as the bundle's wheel, not among its dependencies.
        wheelhouse = (
            [
                w
                for w in sorted(args.wheelhouse.glob("*.whl"))
                if not w.name.startswith("bfr_appliance-")
            ]
            if args.wheelhouse
            else None
        )
        if args.wheelhouse and not wheelhouse:
            raise TechnicianError(f"no wheels in {args.wheelhouse}")
        with tempfile.TemporaryDirectory() as tmp:
            wheel = args.wheel or build_wheel(args.project, Path(tmp), not args.no_build_isolation)
            path = build_bundle(args.out, wheel, key, wheelhouse, schema_version=len(MIGRATIONS))
    except (TechnicianError, OSError) as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 1
    print(f"built {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
