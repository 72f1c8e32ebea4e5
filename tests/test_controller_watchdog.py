"""systemd notification from the loop: READY once, WATCHDOG only while healthy."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from appliance.controller.ipc import ControllerServer
from appliance.controller.loop import ControlLoop
from appliance.controller.watchdog import Watchdog
from appliance.simulation import build_simulated
from hardware.sim.cuff import default_plant


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_feed_only_when_healthy(notify_socket) -> None:
    dog = Watchdog(interval_s=0.5)
    assert not dog.feed(0.0, healthy=False, status="x")
    assert received(notify_socket) == []
    assert dog.feed(1.0, healthy=True, status="HOLDING 120 mmHg")
    assert not dog.feed(1.2, healthy=True, status="HOLDING 120 mmHg")  # rate limited
    assert dog.feed(1.6, healthy=True, status="HOLDING 120 mmHg")
    msgs = received(notify_socket)
    assert len(msgs) == 2 and all("WATCHDOG=1" in m for m in msgs)
    assert "STATUS=HOLDING 120 mmHg" in msgs[0] and "STATUS" not in msgs[1]


def test_loop_sends_ready_then_pings(notify_socket) -> None:
    sim = build_simulated(default_plant(1), 1)
    loop = ControlLoop(sim.controller, sim.clock, 250, Watchdog(interval_s=0.5))
    loop.run(duration_s=3.0)
    msgs = received(notify_socket)
    assert msgs[0].startswith("READY=1")
    assert 5 <= sum("WATCHDOG=1" in m for m in msgs) <= 7


def test_no_pings_while_the_loop_runs_late(notify_socket) -> None:
    """A bus that blocks 300 ms per read (wedged, recovering) makes every tick late: no pings."""
    sim = build_simulated(default_plant(1), 1)
    loop = ControlLoop(sim.controller, sim.clock, 250, Watchdog(interval_s=0.1))
    loop.run(duration_s=1.0)
    assert any("WATCHDOG=1" in m for m in received(notify_socket))
    sensor = sim.controller.hw.sensor
    real_read = sensor.read

    def wedged_read():
        sim.clock._t += 0.3  # time passes, the world does not move
        return real_read()

    sensor.read = wedged_read
    loop.run(duration_s=3.0)
    assert not any("WATCHDOG=1" in m for m in received(notify_socket))
    sensor.read = real_read
    loop.run(duration_s=1.0)
    assert any("WATCHDOG=1" in m for m in received(notify_socket))


def test_schedule_check() -> None:
    sim = build_simulated(default_plant(1), 1)
    loop = ControlLoop(sim.controller, sim.clock, 250)
    assert not loop.on_schedule(now=10.0, scheduled=9.8)
    assert loop.on_schedule(now=10.0, scheduled=9.99)


def test_off_systemd_runs_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    sim = build_simulated(default_plant(1), 1)
    loop = ControlLoop(sim.controller, sim.clock, 250, Watchdog(interval_s=0.5))
    loop.run(duration_s=1.0)
    assert loop.watchdog is not None and loop.watchdog.pings >= 1


def test_no_pings_once_the_controllers_socket_stops_serving(notify_socket, tmp_path) -> None:
    """A loop ticking on behind a dead socket is of no use: systemd must restart it."""
    sim = build_simulated(default_plant(1), 1)
    server = ControllerServer(str(tmp_path / "c.sock"), sim.controller.submit, dict)
    accepting = server.start()
    loop = ControlLoop(
        sim.controller, sim.clock, 250, Watchdog(interval_s=0.1), serving=lambda: server.serving
    )
    loop.run(duration_s=1.0)
    assert any("WATCHDOG=1" in m for m in received(notify_socket))
    server.shutdown()  # its accepting thread ends, as an unexpected error would end it
    accepting.join(1.0)
    loop.run(duration_s=1.0)
    assert not any("WATCHDOG=1" in m for m in received(notify_socket))
    assert sim.controller.healthy  # the loop itself is fine: only the socket is gone
    server.server_close()


@pytest.mark.parametrize("change", ["deleted", "replaced"])
def test_no_pings_once_the_controllers_socket_file_is_gone(notify_socket, tmp_path, change) -> None:
    """No client can reach a socket whose file was deleted or bound over: restart to remake it."""
    sim = build_simulated(default_plant(1), 1)
    path = tmp_path / "c.sock"
    server = ControllerServer(str(path), sim.controller.submit, dict)
    server.file_check_s = 0.0
    server.start()
    loop = ControlLoop(
        sim.controller, sim.clock, 250, Watchdog(interval_s=0.1), serving=lambda: server.serving
    )
    loop.run(duration_s=1.0)
    assert any("WATCHDOG=1" in m for m in received(notify_socket))
    path.unlink()
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if change == "replaced":
        other.bind(str(path))
    loop.run(duration_s=1.0)
    assert not any("WATCHDOG=1" in m for m in received(notify_socket))
    assert sim.controller.healthy
    other.close()
    server.close()
