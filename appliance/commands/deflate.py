"""`bfr deflate`: empty the cuff now, through the controller or, with --force, at the pins."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from appliance.config import ConfigError, load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "deflate",
        help="empty the cuff (asks the controller; --force drives the pins if it is gone)",
        description="Ask the running controller to deflate. With --force, when the controller "
        "does not answer (stopped, crashed), switch the pump off and de-energise the normally-"
        "open dump valve directly at the GPIO pins. systemd runs this after the controller stops.",
    )
    p.add_argument("--config", type=Path, help="appliance TOML config")
    p.add_argument("--socket", help="controller socket (default from config)")
    p.add_argument("--force", action="store_true", help="drive the pins if the controller is gone")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"bfr deflate: {exc}", file=sys.stderr)
        return 2
    from appliance.controller.ipc import ControllerClient

    reply = ControllerClient(args.socket or config.paths.socket, timeout_s=2.0).request(
        {"cmd": "stop"}
    )
    if reply.get("ok"):
        print("controller stopped and is emptying the cuff")
        return 0
    if not args.force:
        print(f"bfr deflate: {reply.get('error')}; use --force at the pins", file=sys.stderr)
        return 1
    from hardware.actuators import DumpValve, PumpDriver

    hw = config.hardware
    try:
        pump = PumpDriver(hw.pump_pin, hw.pump_pwm_hz)
        valve = DumpValve(hw.valve_pin)
    except Exception as exc:  # any pin-factory failure: say what to do, never a traceback
        print(
            f"bfr deflate: cannot reach the GPIO pins ({exc}); open the cuff by hand",
            file=sys.stderr,
        )
        return 1
    pump.close()
    valve.release()
    print("pump off, dump valve de-energised (open): the cuff is emptying")
    return 0
