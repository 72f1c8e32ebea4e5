"""`bfr run --sim`: the simulated controller and the touchscreen UI together, for a desk demo."""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

log = logging.getLogger("bfr.run")

CONTROLLER_START_S = 20.0  # the simulated rig imports numpy and builds its plant first


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run the simulated controller and the UI together (make run)",
        description="Start `bfr controller --sim` as a child process on a temporary socket and "
        "the web UI next to it; prints the URL. Ctrl-C stops both, and the cuff is emptied.",
    )
    p.add_argument("--sim", action="store_true", help="simulated cuff in real time (required)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="TCP port, 0 = any (default 8080)")
    p.add_argument(
        "--data-dir",
        type=Path,
        help="clinic records (default: a temporary directory removed on exit)",
    )
    p.add_argument("--plant", help="plant MODULE:CALLABLE for the simulated cuff")
    p.add_argument("--seed", type=int, default=0, help="seed for the simulated plant")
    p.add_argument("--language", default="en", help="screen language (default en)")
    p.add_argument(
        "--check-readiness",
        action="store_true",
        help="refuse sessions and LOP measurements without calibration and self-test records in "
        "the data directory, as the appliance does (default: the simulated rig needs none)",
    )
    p.set_defaults(func=run)


def _controller_command(socket_path: str, data_dir: Path, args: argparse.Namespace) -> list[str]:
    command = [sys.executable, "-m", "appliance", "controller", "--sim", "--socket", socket_path]
    command += ["--seed", str(args.seed), "--data-dir", str(data_dir)]
    if args.check_readiness:
        command.append("--check-readiness")
    if args.plant:
        command += ["--plant", args.plant]
    return command


def _wait_for_controller(child: subprocess.Popen, socket_path: str) -> str | None:
    """None once the controller answers `status`; otherwise why it did not."""
    from appliance.controller.ipc import ControllerClient

    client = ControllerClient(socket_path, timeout_s=1.0)
    deadline = time.monotonic() + CONTROLLER_START_S
    try:
        while time.monotonic() < deadline:
            if child.poll() is not None:
                return f"the controller exited with code {child.returncode}"
            if Path(socket_path).exists() and client.request({"cmd": "status"}).get("ok"):
                return None
            time.sleep(0.1)
    finally:
        client.close()
    return f"the controller did not answer within {CONTROLLER_START_S:g} s"


def _stop_child(child: subprocess.Popen) -> None:
    """SIGTERM lets the controller vent the cuff and remove its socket; kill only if it hangs."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if not args.sim:
        print(
            "bfr run: only --sim is supported; on the device systemd runs `bfr controller` and"
            " `bfr web` as two services",
            file=sys.stderr,
        )
        return 2
    if not 0 <= args.port <= 65535:
        print("bfr run: --port must be 0-65535", file=sys.stderr)
        return 2
    from appliance.config import technician_socket_beside
    from web.app import create_server
    from web.serve import HttpServer, quiet_request_log
    from web.settings import WebSettings

    quiet_request_log()
    work = Path(tempfile.mkdtemp(prefix="bfr-run-"))
    socket_path = str(work / "controller.sock")
    data_dir = args.data_dir or work / "data"
    child = subprocess.Popen(_controller_command(socket_path, data_dir, args))
    try:
        problem = _wait_for_controller(child, socket_path)
        if problem:
            print(f"bfr run: {problem}", file=sys.stderr)
            return 1
        # The simulated rig has no transducer to calibrate and no cuff to self-test.
        settings = WebSettings(
            data_dir=data_dir,
            socket_path=socket_path,
            language=args.language,
            device_checks=args.check_readiness,
        )
        try:
            http = HttpServer(create_server(settings), args.host, args.port)
        except OSError as exc:
            print(f"bfr run: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1

        def watch_child() -> None:
            # Without its controller the UI is a picture of a cuff: stop rather than pretend.
            child.wait()
            log.error("the controller exited (code %s): stopping the UI", child.returncode)
            http.shutdown()

        threading.Thread(target=watch_child, name="controller-watch", daemon=True).start()

        def ready(url: str) -> None:
            print(f"bfr run: open {url} (clinician console: {url}console)", flush=True)
            print(f"bfr run: controller socket {socket_path}", flush=True)
            technician_socket = technician_socket_beside(socket_path)
            print(f"bfr run: technician socket {technician_socket}", flush=True)
            if not args.check_readiness:
                print("bfr run: simulated rig: no calibration or self-test required", flush=True)
            if args.data_dir is None:
                print(f"bfr run: records in {data_dir} (removed on exit)", flush=True)

        http.serve(ready)
        return 0 if child.poll() is None else 1
    finally:
        _stop_child(child)
        with contextlib.suppress(OSError):
            shutil.rmtree(work)
