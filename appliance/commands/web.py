"""`bfr web`: the touchscreen's web server alone (systemd runs it next to `bfr controller`)."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.config import ApplianceConfig, ConfigError, load_config

if TYPE_CHECKING:
    from web.settings import WebSettings


def register(sub: argparse._SubParsersAction) -> None:
    from web.settings import DEFAULT_HOST, DEFAULT_LANGUAGE, DEFAULT_PORT

    p = sub.add_parser(
        "web",
        help="run the touchscreen web server (patient screens and clinician console)",
        description="Serve the patient screens and the clinician console over HTTP and "
        "Socket.IO (docs/ui.md). Talks to a running `bfr controller` over its IPC socket and "
        "keeps its heartbeat while a screen is alive. Bind to 127.0.0.1 unless you mean it.",
    )
    p.add_argument("--config", type=Path, help="appliance TOML config (default: built-in)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"TCP port, 0 = any (default {DEFAULT_PORT})"
    )
    p.add_argument("--data-dir", type=Path, help="clinic records (default from config)")
    p.add_argument("--socket", help="controller IPC socket (default from config)")
    p.add_argument(
        "--language",
        default=DEFAULT_LANGUAGE,
        help=f"screen language, a file in web/i18n (default {DEFAULT_LANGUAGE})",
    )
    p.add_argument(
        "--selftest-max-age-h",
        type=float,
        metavar="H",
        help="refuse sessions when the last self-test is older than H hours (default: the "
        "config's [readiness] selftest_max_age_h, which the controller enforces too; a failed or "
        "missing self-test always refuses)",
    )
    p.add_argument(
        "--set-pin",
        action="store_true",
        help="set the clinician console PIN (4-8 digits, asked twice) and exit",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"bfr web: {exc}", file=sys.stderr)
        return 2
    data_dir = args.data_dir or Path(config.paths.data_dir)
    if args.set_pin:
        return set_pin(data_dir)
    if not 0 <= args.port <= 65535:
        print("bfr web: --port must be 0-65535", file=sys.stderr)
        return 2
    from web.app import create_server
    from web.serve import HttpServer, quiet_request_log

    quiet_request_log()
    try:
        settings = web_settings(args, config, data_dir)
    except ValueError as exc:
        print(f"bfr web: {exc}", file=sys.stderr)
        return 2
    try:
        http = HttpServer(create_server(settings), args.host, args.port)
    except OSError as exc:
        print(f"bfr web: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    http.serve(lambda url: print(f"bfr web: serving {url} (console: {url}console)", flush=True))
    return 0


def web_settings(args: argparse.Namespace, config: ApplianceConfig, data_dir: Path) -> WebSettings:
    """The server's settings; ValueError names what is out of range."""
    from web.settings import WebSettings

    # The stricter of the clinic's policy and this option: the controller enforces the policy,
    # so a looser option would only start sessions whose first inflation it refuses.
    policy = config.readiness.selftest_max_age_s
    max_age = None if args.selftest_max_age_h is None else args.selftest_max_age_h * 3600.0
    if max_age is None or (policy is not None and max_age > policy):
        max_age = policy
    return WebSettings(
        data_dir=data_dir,
        socket_path=args.socket or config.paths.socket,
        language=args.language,
        selftest_max_age_s=max_age,
    )


def set_pin(data_dir: Path) -> int:
    """Ask for the PIN twice on a terminal; read one line from a pipe (for provisioning)."""
    from web.pin import PinError, PinVault

    if sys.stdin.isatty():
        pin = getpass.getpass("new console PIN (4-8 digits): ")
        if getpass.getpass("again: ") != pin:
            print("bfr web: the two PINs differ; nothing changed", file=sys.stderr)
            return 2
    else:
        pin = sys.stdin.readline().strip()
    try:
        PinVault(data_dir).set_pin(pin)
    except PinError as exc:
        print(f"bfr web: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"bfr web: cannot write the PIN under {data_dir}: {exc}", file=sys.stderr)
        return 1
    print(f"bfr web: console PIN set in {data_dir}")
    return 0
