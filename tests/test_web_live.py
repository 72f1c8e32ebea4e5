"""`bfr run --sim` as a subprocess: a real Socket.IO client, live pressure rate, STOP, heartbeat loss."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import socketio

from appliance.controller.ipc import ControllerClient
from hardware.sim.plant import build_plant

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60.0


@dataclass
class SimApp:
    """A running `bfr run --sim`: its URL, controller socket and process."""

    process: subprocess.Popen
    url: str
    socket_path: str
    data_dir: Path
    lines: list[str] = field(default_factory=list)
    log: Any = None

    def controller(self) -> ControllerClient:
        return ControllerClient(self.socket_path)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()
        return self.process.returncode


def launch_sim(data_dir: Path, *extra: str) -> SimApp:
    """Start `bfr run --sim --port 0` and wait for the URL it prints."""
    log = open(data_dir.parent / f"{data_dir.name}-run.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "appliance",
            "run",
            "--sim",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            *extra,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    url = socket_path = None
    seen: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT_S
    while (url is None or socket_path is None) and time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        if match := re.search(r"open (http://\S+/) ", line):
            url = match.group(1)
        if match := re.search(r"controller socket (\S+)", line):
            socket_path = match.group(1)
    if url is None or socket_path is None:
        process.kill()
        process.wait()
        log.close()
        raise RuntimeError(f"bfr run did not start: {''.join(seen)}")
    return SimApp(process, url, socket_path, data_dir, seen, log)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimApp]:
    app = launch_sim(tmp_path_factory.mktemp("live") / "data")
    yield app
    socket_path = app.socket_path
    assert app.stop() == 0
    assert not Path(socket_path).exists(), "the controller child was not stopped"


class Listener:
    """A python-socketio client that keeps what the server pushes, with receive times."""

    def __init__(self, url: str) -> None:
        self.client = socketio.Client(reconnection=False)
        self.pressure: list[tuple[float, dict[str, Any]]] = []
        self.status: list[dict[str, Any]] = []
        self.client.on("pressure", lambda data: self.pressure.append((time.monotonic(), data)))
        self.client.on("status", self.status.append)
        self.client.connect(url, transports=["websocket"], wait_timeout=10)

    def close(self) -> None:
        # A clean disconnect waits seconds for the socket to close; nothing here needs that.
        threading.Thread(target=self.client.disconnect, daemon=True).start()

    def ping(self, stop: threading.Event) -> threading.Thread:
        """Send `ui_alive` every 0.3 s, as an open page does, until `stop` is set."""

        def loop() -> None:
            while not stop.is_set():
                self.client.emit("ui_alive")
                stop.wait(0.3)

        pinger = threading.Thread(target=loop, daemon=True)
        pinger.start()
        return pinger


def wait_for(predicate: Any, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@dataclass
class LiveScreen:
    """An open page (pinging) and the controller's socket, for one test."""

    listener: Listener
    controller: ControllerClient
    alive: threading.Event
    pinger: threading.Thread


@contextmanager
def live_screen(sim: SimApp) -> Iterator[LiveScreen]:
    """Yields once the page's heartbeat reaches the controller: a stale one faults an inflation."""
    listener = Listener(sim.url)
    controller = sim.controller()
    alive = threading.Event()
    pinger = listener.ping(alive)
    try:
        assert wait_for(lambda: bool(listener.status) and listener.status[-1].get("ui"), 5)
        time.sleep(0.6)
        yield LiveScreen(listener, controller, alive, pinger)
    finally:
        alive.set()
        listener.close()
        controller.close()


def test_pressure_reaches_a_socketio_client_at_20_hz_or_more(sim: SimApp) -> None:
    listener = Listener(sim.url)
    try:
        time.sleep(1.0)
        start = len(listener.pressure)
        time.sleep(3.0)
        window = listener.pressure[start:]
    finally:
        listener.close()
    rate = len(window) / 3.0
    assert rate >= 20.0, f"pressure at {rate:.1f} Hz"
    sample = window[-1][1]
    assert {"t", "mmHg", "target_mmHg", "state"} <= set(sample)
    assert sample["state"] == "IDLE"
    times = [data["t"] for _, data in window]
    assert times == sorted(times), "pressure events out of order"


def test_stop_over_socketio_deflates_the_cuff(sim: SimApp) -> None:
    with live_screen(sim) as screen:
        listener, controller = screen.listener, screen.controller
        assert controller.request({"cmd": "configure", "limb": "arm", "lop_mmHg": 160})["ok"]
        assert controller.request({"cmd": "inflate", "target_mmHg": 80})["ok"]
        assert wait_for(lambda: (listener.pressure[-1][1]["mmHg"] or 0) > 60, 15)
        peak = listener.pressure[-1][1]["mmHg"]
        reply = listener.client.call("stop", timeout=5)
        assert reply["ok"] is True
        assert wait_for(lambda: listener.pressure[-1][1]["state"] == "FAULT", 2)
        assert wait_for(lambda: listener.pressure[-1][1]["mmHg"] < peak / 2, 5), "not deflating"
        assert controller.request({"cmd": "status"})["status"]["fault"] == "STOP_UI"
        assert wait_for(lambda: controller.request({"cmd": "reset"})["ok"], 10)


def test_a_silent_screen_lets_the_controller_deflate(sim: SimApp) -> None:
    """The page stops pinging but stays connected (a hung screen): the web server withholds the
    heartbeat and the controller vents the cuff on its own."""
    with live_screen(sim) as screen:
        listener, controller = screen.listener, screen.controller
        assert controller.request({"cmd": "configure", "limb": "arm", "lop_mmHg": 160})["ok"]
        assert controller.request({"cmd": "inflate", "target_mmHg": 60})["ok"]
        assert wait_for(lambda: (listener.pressure[-1][1]["mmHg"] or 0) > 45, 15)
        screen.alive.set()
        screen.pinger.join()
        hung_at = time.monotonic()
        assert wait_for(
            lambda: controller.request({"cmd": "status"})["status"]["fault"] == "HEARTBEAT_LOST", 8
        )
        # 2 s for the server to call the screen dead, then the controller's 3 s timeout.
        assert time.monotonic() - hung_at < 7.0
        assert listener.client.connected
        assert wait_for(lambda: controller.request({"cmd": "reset"})["ok"], 10)


def test_a_measurement_in_real_time_reads_the_lop_from_its_worker_process(sim: SimApp) -> None:
    """The device's path: the controller process estimates in a worker process of its own."""
    plant = build_plant(None, 0)  # what `bfr run --sim` runs by default
    with live_screen(sim) as screen:
        controller = screen.controller
        limb = plant.patient.limb
        assert controller.request({"cmd": "configure", "limb": limb})["ok"]
        reply = controller.request(
            {"cmd": "measure_lop", "limb": limb, "posture": plant.patient.posture}
        )
        assert reply["ok"], reply

        def finished() -> bool:
            status = controller.request({"cmd": "status"})["status"]
            return status["state"] != "MEASURING_LOP" and status["last_lop"] is not None

        assert wait_for(finished, 90), "no result"
        status = controller.request({"cmd": "status"})["status"]
        assert status["fault"] is None
        assert status["last_lop"]["lop_mmHg"] == pytest.approx(plant.true_lop_mmHg, abs=8.0)


def test_health_check_reports_the_live_controller(sim: SimApp) -> None:
    """What `bfr update` waits for after a restart."""
    import json
    import urllib.request

    assert wait_for(lambda: urllib.request.urlopen(sim.url + "healthz").status == 200, 10.0)
    with urllib.request.urlopen(sim.url + "healthz") as reply:
        assert json.load(reply) == {"web": "ok", "controller": "connected"}
