"""Command line of the build logic, called by the image shell scripts."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from imagebuild import config as build_config
from imagebuild import layout, manifest, render

HERE = Path(__file__).resolve().parent.parent


def _load(path: str) -> build_config.BuildConfig:
    file = Path(path)
    return build_config.load(file.read_text(), os.environ, base_dir=file.parent)


def cmd_config(args: argparse.Namespace) -> int:
    cfg = _load(args.env_file)
    if not cfg.ssh_keys:
        print("warning: no SSH_AUTHORIZED_KEYS_FILE, the technician cannot log in", file=sys.stderr)
    sys.stdout.write(cfg.shell_exports())
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    cfg = _load(args.env_file)
    render.write(Path(args.root), render.files(cfg, HERE / "templates", args.version))
    return 0


def cmd_layout(args: argparse.Namespace) -> int:
    plan = layout.plan(args.boot_mib, args.root_mib, args.data_mib, seed=args.seed)
    text = layout.sfdisk_script(plan) if args.format == "sfdisk" else layout.shell_vars(plan)
    sys.stdout.write(text)
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    meta = dict(item.split("=", 1) for item in args.meta)
    text = manifest.render(meta, Path(args.dpkg).read_text(), Path(args.pip).read_text())
    Path(args.out).write_text(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagebuild", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("config", help="validate build.env and print shell exports")
    p.add_argument("env_file")
    p.set_defaults(func=cmd_config)
    p = sub.add_parser("render", help="write the files that depend on build inputs into a root")
    p.add_argument("env_file")
    p.add_argument("root")
    p.add_argument("--version", required=True)
    p.set_defaults(func=cmd_render)
    p = sub.add_parser("layout", help="partition layout as an sfdisk script or shell variables")
    p.add_argument("--boot-mib", type=int, required=True)
    p.add_argument("--root-mib", type=int, required=True)
    p.add_argument("--data-mib", type=int, required=True)
    p.add_argument("--seed", default="bfr")
    p.add_argument("--format", choices=("sfdisk", "shell"), default="sfdisk")
    p.set_defaults(func=cmd_layout)
    p = sub.add_parser("manifest", help="write the package manifest")
    p.add_argument("--dpkg", required=True)
    p.add_argument("--pip", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=cmd_manifest)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (build_config.ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
