"""IPC: the real socket server in front of a running simulated controller; validation; fuzzing."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.controller.commands import COMMANDS, CommandError, parse_command
from appliance.controller.gate import CHECK_BUDGET_S, TECHNICIAN_ONLY, TREATING, ClinicGate
from appliance.controller.ipc import ControllerClient, ControllerServer, SocketInUse
from appliance.controller.process import Snapshots, readiness
from appliance.controller.supervisor import State
from appliance.simulation import SimulatedAppliance, build_simulated
from hardware.sim.cuff import default_plant
from tests.clinic import make_ready


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[SimulatedAppliance, str]]:
    """A simulated controller looping in its own thread, served on a Unix socket."""
    sim = build_simulated(default_plant(2, limb="arm", leak_orifice_mm=0.0), 2)
    sim.clock.realtime = True  # the loop thread paces itself like the device
    snapshots = Snapshots(sim.controller)
    sim.controller.on_tick = lambda rec: snapshots.publish(rec.t)
    path = str(tmp_path / "c.sock")
    server = ControllerServer(path, sim.controller.submit, snapshots.latest)
    server.start()
    loop_thread = threading.Thread(target=sim.loop.run, daemon=True)
    loop_thread.start()
    yield sim, path
    sim.loop.stop()
    loop_thread.join(5)
    server.close()


def wait_until_idle(client: ControllerClient) -> None:
    """Let the power-up deflation finish, so nothing changes on its own during a test."""
    deadline = time.monotonic() + 10
    while client.request({"cmd": "status"})["status"]["state"] != "IDLE":
        assert time.monotonic() < deadline, "controller never settled to IDLE"
        time.sleep(0.05)


def raw_exchange(path: str, payload: bytes) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        s.connect(path)
        s.sendall(payload)
        return json.loads(s.makefile("rb").readline())


def test_status_and_commands_over_socket(running) -> None:
    sim, path = running
    client = ControllerClient(path)
    reply = client.request({"cmd": "status", "id": 7})
    assert reply["ok"] and reply["id"] == 7
    assert reply["status"]["state"] in ("IDLE", "DEFLATING")
    assert client.request({"cmd": "configure", "limb": "arm"})["ok"]
    reply = client.request({"cmd": "inflate", "target_mmHg": 80})
    assert reply["ok"], reply
    assert client.request({"cmd": "stop"})["status"]["fault"] == "STOP_UI"
    client.close()


def test_bad_commands_get_clear_errors_and_change_nothing(running) -> None:
    sim, path = running
    client = ControllerClient(path)
    wait_until_idle(client)
    before = "IDLE"
    cases = {
        "cmd: must be one of": {"cmd": "explode"},
        "target_mmHg: 301.0 is outside": {"cmd": "inflate", "target_mmHg": 301},
        "target_mmHg: must be a number": {"cmd": "inflate", "target_mmHg": "120"},
        "unknown field(s) force": {"cmd": "inflate", "target_mmHg": 100, "force": True},
        "limb: must be one of arm, leg": {"cmd": "configure", "limb": "tail"},
        "needs allow_above_80": {"cmd": "configure", "limb": "leg", "max_pct_lop": 90},
    }
    for needle, message in cases.items():
        reply = client.request(message)
        assert not reply["ok"]
        assert needle in reply["error"], reply
    assert "invalid JSON" in raw_exchange(path, b"{not json\n")["error"]
    assert "NaN" in raw_exchange(path, b'{"cmd":"inflate","target_mmHg":NaN}\n')["error"]
    assert "longer" in raw_exchange(path, b"x" * 5000 + b"\n")["error"]
    assert client.request({"cmd": "status"})["status"]["state"] == before
    assert sim.controller.target is None


def test_the_clinic_socket_inflates_no_limb_until_the_appliance_is_ready(running) -> None:
    """Defence in depth behind the web server's own check: a request that reaches the clinic's
    socket without calibration and self-test records inflates nothing, whoever sent it; the
    technician socket, which only root and the controller's user may open, still can."""
    sim, technician_path = running
    data_dir = Path(technician_path).parent / "data"
    clinic_path = str(Path(technician_path).parent / "clinic.sock")
    snapshots = Snapshots(sim.controller)
    therapy = functools.partial(sim.controller.submit, therapy=True)  # as the process wires it
    clinic = ControllerServer(
        clinic_path, ClinicGate(therapy, readiness(data_dir)), snapshots.latest
    )
    clinic.start()
    try:
        web, technician = ControllerClient(clinic_path), ControllerClient(technician_path)
        wait_until_idle(technician)
        assert web.request({"cmd": "configure", "limb": "arm", "lop_mmHg": 150})["ok"]
        refused = web.request({"cmd": "inflate", "target_mmHg": 100})
        assert not refused["ok"] and "inflate: the appliance is not ready" in refused["error"]
        assert any("calibrat" in p for p in refused["not_ready"])
        assert any("self-test" in p for p in refused["not_ready"])
        lop = web.request({"cmd": "measure_lop", "limb": "arm"})
        assert not lop["ok"] and "measure_lop: the appliance is not ready" in lop["error"]
        technicians = (
            {"cmd": "selftest"},
            {"cmd": "set_calibration", "zero_mmHg": 5, "span": 1},
            {"cmd": "sound_test"},
        )
        for message in technicians:
            reply = web.request(message)
            assert not reply["ok"] and "only on the technician socket" in reply["error"], reply
        time.sleep(0.2)
        status = technician.request({"cmd": "status"})["status"]
        assert status["state"] == "IDLE" and status["pump_duty"] == 0 and status["valve_open"]
        assert sim.controller.target is None and sim.rig.valve_open
        assert sim.devices.sensor.calibration.zero_mmHg == 0  # set_calibration changed nothing

        reply = technician.request({"cmd": "inflate", "target_mmHg": 100})
        assert reply["ok"], reply
        assert technician.request({"cmd": "deflate"})["ok"]
        wait_until_idle(technician)

        make_ready(data_dir, time.time())
        # Ready, but a treatment pressure still needs the patient's LOP: no 260 mmHg on a limb
        # because a client skipped `configure`. The technician's cylinder needs none.
        assert web.request({"cmd": "configure", "limb": "arm", "lop_mmHg": None})["ok"]
        no_lop = web.request({"cmd": "inflate", "target_mmHg": 100})
        assert not no_lop["ok"] and "no LOP configured for this patient" in no_lop["error"]
        assert sim.controller.target is None
        assert web.request({"cmd": "configure", "limb": "arm", "lop_mmHg": 150})["ok"]
        assert web.request({"cmd": "inflate", "target_mmHg": 100})["ok"]
        assert sim.controller.target == 100
        assert web.request({"cmd": "deflate"})["ok"]
        web.close()
        technician.close()
    finally:
        clinic.close()


def test_the_controller_process_serves_both_sockets_and_checks_readiness(tmp_path: Path) -> None:
    """`bfr controller --sim --check-readiness` wired as the device is: the clinic's socket for
    the shared group and gated, the technician socket for its own user only."""
    clinic_path = str(tmp_path / "controller.sock")
    technician_path = str(tmp_path / "controller.technician.sock")
    config = tmp_path / "bfr.toml"
    config.write_text("[readiness]\nselftest_max_age_h = 0.5\n")  # the clinic's own policy
    command = [sys.executable, "-m", "appliance", "controller", "--sim", "--check-readiness"]
    command += ["--socket", clinic_path, "--data-dir", str(tmp_path / "data")]
    command += ["--config", str(config)]
    child = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        technician = ControllerClient(technician_path, timeout_s=1.0)
        deadline = time.monotonic() + 30
        while not (Path(technician_path).exists() and technician.request({"cmd": "status"})["ok"]):
            assert child.poll() is None and time.monotonic() < deadline, "controller did not start"
            time.sleep(0.1)
        modes = {p: stat.S_IMODE(os.stat(p).st_mode) for p in (clinic_path, technician_path)}
        assert modes == {clinic_path: 0o660, technician_path: 0o600}
        web = ControllerClient(clinic_path)
        wait_until_idle(web)
        refused = web.request({"cmd": "inflate", "target_mmHg": 60})
        assert not refused["ok"] and len(refused["not_ready"]) == 2, refused
        make_ready(tmp_path / "data", time.time())  # calibrated, self-tested an hour ago
        assert web.request({"cmd": "configure", "limb": "arm", "lop_mmHg": 150})["ok"]
        stale = web.request({"cmd": "inflate", "target_mmHg": 60})
        assert not stale["ok"] and len(stale["not_ready"]) == 1, stale
        assert stale["not_ready"][0].startswith("the last self-test is too old"), stale
        assert technician.request({"cmd": "inflate", "target_mmHg": 60})["ok"]
        assert technician.request({"cmd": "deflate"})["ok"]
        web.close()
        technician.close()
    finally:
        child.terminate()
        child.wait(10)
    assert "readiness checked" in child.stderr.read()
    assert not Path(clinic_path).exists() and not Path(technician_path).exists()


def test_the_technician_socket_is_never_open_to_the_group_not_even_at_bind(tmp_path: Path) -> None:
    """The device's umask (0007) would create a socket the web's group may open; the mode is on
    the socket before its file exists, so there is no moment between bind and chmod."""
    seen: list[int] = []

    class Watched(ControllerServer):
        def server_bind(self) -> None:
            super().server_bind()
            seen.append(stat.S_IMODE(os.stat(self.path).st_mode))

    previous = os.umask(0o007)
    try:
        server = Watched(str(tmp_path / "t.sock"), dict, dict, mode=0o600)
    finally:
        os.umask(previous)
    server.server_close()
    assert seen == [0o600]


def test_a_readiness_check_that_fails_refuses_and_the_controller_never_sees_it() -> None:
    seen = []

    def broken() -> list[str]:
        raise PermissionError("selftest.json: permission denied")

    gate = ClinicGate(lambda m: seen.append(m) or {"ok": True}, broken)
    reply = gate({"cmd": "inflate", "target_mmHg": 100})
    assert not reply["ok"] and "readiness could not be checked" in reply["error"]
    assert "permission denied" in reply["error"] and seen == []
    assert gate({"cmd": "deflate"}) == {"ok": True} and seen == [{"cmd": "deflate"}]


def test_a_readiness_check_slower_than_its_budget_refuses_and_changes_nothing() -> None:
    """A stalling card: the command is refused at once, not left to run after its client
    has given up (the client was told it failed and sent it again: two inflations)."""
    seen = []

    def stalling() -> list[str]:
        time.sleep(CHECK_BUDGET_S + 0.2)
        return []

    gate = ClinicGate(lambda m: seen.append(m) or {"ok": True}, stalling)
    reply = gate({"cmd": "inflate", "target_mmHg": 100})
    assert not reply["ok"] and "not done" in reply["error"] and seen == []


def test_a_command_that_times_out_is_reported_and_never_sent_twice(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sock")
    calls = []

    def slow(message: dict) -> dict:
        calls.append(message["cmd"])
        if message["cmd"] == "inflate":
            time.sleep(0.8)
        return {"ok": True}

    server = ControllerServer(path, slow, lambda: {})
    server.start()
    client = ControllerClient(path, timeout_s=0.3)
    try:
        reply = client.request({"cmd": "inflate", "target_mmHg": 100})
        assert not reply["ok"] and "did not answer in time" in reply["error"]
        time.sleep(1.0)
        assert calls == ["inflate"]
        assert client.request({"cmd": "status"}) == {"ok": True}  # and it reconnects
        assert calls == ["inflate", "status"]
    finally:
        client.close()
        server.close()


def test_target_above_session_limit_is_refused(running) -> None:
    _, path = running
    client = ControllerClient(path)
    assert client.request({"cmd": "configure", "limb": "arm", "lop_mmHg": 150})["ok"]
    reply = client.request({"cmd": "inflate", "target_mmHg": 121})  # 80 % of 150 = 120
    assert not reply["ok"] and "limit of 120" in reply["error"]


def test_subscribe_streams_status(running) -> None:
    _, path = running
    stream = ControllerClient(path).subscribe(hz=25)
    first = next(stream)
    second = next(stream)
    assert first["event"] == "status" and "mmHg" in second and "state" in second
    stream.close()


def test_client_reconnects_after_server_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "r.sock")
    handler = lambda m: {"ok": True, "status": {"echo": m.get("cmd")}}  # noqa: E731
    server = ControllerServer(path, handler, dict)
    server.start()
    client = ControllerClient(path)
    assert client.request({"cmd": "status"})["ok"]
    server.close()
    assert not client.request({"cmd": "status"})["ok"]  # clear error, no exception
    server = ControllerServer(path, handler, dict)
    server.start()
    assert client.request({"cmd": "status"})["status"]["echo"] == "status"
    server.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
commands = st.fixed_dictionaries(
    {"cmd": st.sampled_from(COMMANDS) | st.text(max_size=10)},
    optional={
        "target_mmHg": st.floats(allow_nan=True, allow_infinity=True) | json_values,
        "limb": st.sampled_from(["arm", "leg", "", "ARM"]) | json_values,
        "lop_mmHg": st.floats(-100, 1000) | json_values,
        "max_pct_lop": st.floats(-10, 200) | json_values,
        "allow_above_80": st.booleans() | json_values,
        "occlusion_limit_s": st.floats(-10, 5000) | json_values,
        "zero_mmHg": st.floats(-100, 100),
        "span": st.floats(0, 3),
        "junk": json_values,
    },
)


@given(st.one_of(json_values, commands))
@settings(max_examples=400, deadline=None)
def test_parser_never_crashes(message) -> None:
    try:
        command = parse_command(message)
    except CommandError as exc:
        assert str(exc)
        return
    for value in command.args.values():
        if isinstance(value, float):
            assert value == value and abs(value) != float("inf")


@given(st.lists(commands, min_size=1, max_size=12), st.booleans())
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_random_command_sequences_never_unsafe(sequence, therapy) -> None:
    """`therapy`: as if from the clinic's socket, where no set point exists without an LOP."""
    sim = build_simulated(default_plant(4, limb="arm", leak_orifice_mm=0.0), 4)
    c = sim.controller
    for message in sequence:
        reply = c.handle(message, therapy=therapy)
        if therapy and c.state in (State.INFLATING, State.HOLDING):
            assert c.session.lop_mmHg is not None
        assert isinstance(reply, dict) and "ok" in reply
        if not reply["ok"]:
            assert isinstance(reply["error"], str) and reply["error"]
        sim.run(0.05)
        allowed = c.session.max_target(c.limits)
        assert c.target is None or c.target <= allowed + 0.01
        assert c.target is None or c.target <= 300
        assert c.session.max_pct_lop <= 100
        if c.state in (State.FAULT, State.IDLE, State.DEFLATING):
            assert sim.rig.pump_duty == 0.0 and sim.rig.valve_open
    sim.close()


@given(st.lists(st.one_of(json_values, commands), min_size=1, max_size=12))
@settings(max_examples=200, deadline=None)
def test_the_clinic_gate_never_passes_on_a_treating_or_technician_command(sequence) -> None:
    """Whatever arrives on the clinic's socket of an appliance not ready, nothing that puts
    pressure on a limb or changes the calibration reaches the controller; the rest does."""
    seen: list = []
    gate = ClinicGate(lambda m: seen.append(m) or {"ok": True}, lambda: ["no calibration"])
    for message in sequence:
        reply = gate(message)
        assert isinstance(reply, dict) and isinstance(reply["ok"], bool)
        if not reply["ok"]:
            assert reply["error"]
    blocked = TREATING | set(TECHNICIAN_ONLY)
    assert not [m for m in seen if isinstance(m, dict) and m.get("cmd") in blocked]
    passed = [m for m in sequence if not (isinstance(m, dict) and m.get("cmd") in blocked)]
    assert seen == passed


def exchange_lines(path: str, payload: bytes, replies: int) -> list[dict]:
    """Send `payload` on one connection and read `replies` reply lines from it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        s.connect(path)
        s.sendall(payload)
        f = s.makefile("rb")
        return [json.loads(f.readline()) for _ in range(replies)]


def test_a_line_too_long_is_one_bad_request_and_its_tail_never_runs(running) -> None:
    sim, path = running
    wait_until_idle(ControllerClient(path))
    payload = b"x" * 4098 + b'{"cmd":"stop"}\n' + b'{"cmd":"status","id":1}\n'
    too_long, status = exchange_lines(path, payload, 2)
    assert not too_long["ok"] and "longer than 4096 bytes" in too_long["error"]
    assert status["ok"] and status["id"] == 1  # replies stay in step with requests
    assert status["status"]["fault"] is None and sim.controller.fault is None


def test_malformed_requests_each_get_one_clear_error_on_a_connection_that_stays_usable(
    running,
) -> None:
    sim, path = running
    wait_until_idle(ControllerClient(path))
    bad = {
        b'{"cmd":[]}': "cmd: must be one of",
        b'{"cmd":{"x":1}}': "cmd: must be one of",
        b'{"cmd":"inflate","target_mmHg":' + b"9" * 400 + b"}": "target_mmHg: outside",
        b"[" * 2000: "invalid JSON",
        b'{"cmd":"configure","limb":"arm","lop_mmHg":500,"lop_mmHg":150}': "given twice",
    }
    payload = b"".join(line + b"\n" for line in bad) + b'{"cmd":"status","id":"end"}\n'
    replies = exchange_lines(path, payload, len(bad) + 1)
    for (line, needle), reply in zip(bad.items(), replies, strict=False):
        assert not reply["ok"] and needle in reply["error"], (line[:40], reply)
    assert replies[-1]["id"] == "end" and replies[-1]["status"]["lop_mmHg"] is None


@contextlib.contextmanager
def full_server(tmp_path: Path, cap: int) -> Iterator[tuple[ControllerServer, str]]:
    """A server whose `cap` client slots are all held by clients it has served."""
    path = str(tmp_path / "c.sock")
    server = ControllerServer(path, lambda message: {"ok": True}, dict)
    server.max_clients = cap
    server.start()
    held = [ControllerClient(path) for _ in range(cap)]
    try:
        assert all(client.request({"cmd": "status"})["ok"] for client in held)
        yield server, path
        assert all(client.request({"cmd": "status"})["ok"] for client in held)  # served on
    finally:
        for client in held:
            client.close()
        server.close()


def test_a_refused_client_that_trickles_bytes_is_let_go_within_a_second(tmp_path: Path) -> None:
    trickler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with full_server(tmp_path, 1) as (server, path), contextlib.closing(trickler):
        trickler.connect(path)
        trickler.settimeout(0.05)
        start, reply = time.monotonic(), b""
        while not reply.endswith(b"\n") and time.monotonic() - start < 5:
            with contextlib.suppress(OSError):
                trickler.sendall(b"x")  # one byte every 0.3 s, never a whole line
            try:
                reply += trickler.recv(256)
            except TimeoutError:
                time.sleep(0.25)
        assert b"too many clients" in reply and time.monotonic() - start < 2.0
        deadline = time.monotonic() + 1
        while server.refusing:
            assert time.monotonic() < deadline
            time.sleep(0.02)


def test_a_refused_client_whose_request_comes_in_pieces_still_hears_why(tmp_path: Path) -> None:
    split = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with full_server(tmp_path, 1) as (_, path), contextlib.closing(split):
        split.connect(path)
        split.sendall(b'{"cmd":')
        time.sleep(0.1)
        split.sendall(b'"status"}\n')
        split.settimeout(2.0)
        assert b"too many clients (at most 1)" in split.makefile("rb").readline()


def test_a_burst_of_connections_costs_a_bounded_number_of_threads(tmp_path: Path) -> None:
    """Admission happens as each connection is accepted: 100 sockets opened at once beyond the
    cap get at most cap threads to be told why; the rest are closed at once, and the clients
    already admitted are served throughout."""
    burst: list[socket.socket] = []
    with full_server(tmp_path, 3) as (server, path):
        threads = threading.active_count()
        try:
            for _ in range(100):
                burst.append(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
                burst[-1].connect(path)
            deadline = time.monotonic() + 2
            while sum(1 for s in burst if _closed_by_server(s)) < 97:
                assert time.monotonic() < deadline, "the flood was not closed at accept"
            assert threading.active_count() <= threads + 3
            assert len(server.connections) == 3 and len(server.refusing) <= 3
        finally:
            for s in burst:
                s.close()
        deadline = time.monotonic() + 3
        while server.refusing:  # the refusals give up after a second without a request
            assert time.monotonic() < deadline
            time.sleep(0.05)


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.01)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False


def test_clients_beyond_the_cap_are_told_so_and_the_rest_are_served(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sock")
    server = ControllerServer(path, lambda message: {"ok": True}, dict)
    server.max_clients = 3
    server.start()
    held = []
    try:
        for _ in range(3):
            held.append(ControllerClient(path))
            assert held[-1].request({"cmd": "status"})["ok"]
        extra = ControllerClient(path)
        refused = extra.request({"cmd": "status"})
        assert not refused["ok"] and "too many clients (at most 3)" in refused["error"]
        held.pop().close()
        deadline = time.monotonic() + 2
        while not (reply := extra.request({"cmd": "status"}))["ok"]:
            assert time.monotonic() < deadline, reply
            time.sleep(0.02)
    finally:
        for client in held:
            client.close()
        server.close()


def test_a_second_controller_cannot_take_over_a_live_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sock")
    first = ControllerServer(path, lambda message: {"ok": True, "who": "first"}, dict)
    first.start()
    try:
        with pytest.raises(SocketInUse, match="another controller is already serving"):
            ControllerServer(path, lambda message: {"ok": True, "who": "second"}, dict)
        assert ControllerClient(path).request({"cmd": "status"})["who"] == "first"
    finally:
        first.close()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)  # a file left by a controller that died
    stale.close()
    second = ControllerServer(path, lambda message: {"ok": True, "who": "second"}, dict)
    second.start()
    try:
        assert ControllerClient(path).request({"cmd": "status"})["who"] == "second"
    finally:
        second.close()


def test_a_command_its_client_gave_up_on_never_runs_but_a_late_stop_still_does() -> None:
    sim = build_simulated(default_plant(2, limb="arm", leak_orifice_mm=0.0), 2)
    sim.run(0.3)
    c = sim.controller
    assert c.handle({"cmd": "configure", "limb": "arm"})["ok"]
    late = c.submit({"cmd": "inflate", "target_mmHg": 100}, timeout_s=0.01)  # loop not running
    assert not late["ok"] and "did not answer in time (not done)" in late["error"]
    sim.run(0.5)
    assert c.state != State.INFLATING and c.target is None
    late_stop = c.submit({"cmd": "stop"}, timeout_s=0.01)
    assert "it will still be done" in late_stop["error"]
    sim.run(0.1)
    assert c.fault is not None and c.fault.value == "STOP_UI"


def test_a_failed_sensor_reaches_the_stream_and_traces_at_once() -> None:
    """No fresh samples must not freeze what the screens and traces show on the last good tick."""
    records = []
    sim = build_simulated(
        default_plant(2, limb="arm", leak_orifice_mm=0.0), 2, on_tick=records.append
    )
    sim.run(0.3)
    c = sim.controller
    assert c.handle({"cmd": "configure", "limb": "arm"})["ok"]
    assert c.handle({"cmd": "inflate", "target_mmHg": 100})["ok"]
    assert sim.run_until(lambda: c.state == State.HOLDING, 30.0)
    sim.rig.adc.absent = True
    sim.run(1.0)
    last = records[-1]
    assert last.state == State.FAULT and last.alarm == "SENSOR_READ"
    assert last.measured_mmHg is None and last.pump_duty == 0.0 and last.valve_open
    assert c.status()["fault"] == "SENSOR_READ"


def test_clients_that_go_silent_give_their_slots_back(tmp_path: Path) -> None:
    """Leaked connections (a client that neither asks nor reads) cannot lock the UI out."""
    path = str(tmp_path / "c.sock")
    server = ControllerServer(path, lambda message: {"ok": True}, lambda: {"x": "y" * 2000})
    server.max_clients, server.idle_s = 2, 0.5
    server.start()
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deaf = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client = ControllerClient(path)
    try:
        silent.connect(path)
        deaf.connect(path)
        deaf.sendall(b'{"cmd": "subscribe", "hz": 50}\n')  # and never reads a line of it
        time.sleep(0.1)
        refused = client.request({"cmd": "status"})
        assert not refused["ok"] and "too many clients" in refused["error"]
        deadline = time.monotonic() + 30.0
        while len(server.connections) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.request({"cmd": "status"})["ok"]
        silent.settimeout(1.0)
        assert silent.recv(100) == b""  # the server closed it
    finally:
        client.close()
        silent.close()
        deaf.close()
        server.close()


def test_clients_that_trickle_bytes_give_their_slots_back(tmp_path: Path) -> None:
    """A byte now and then, never a whole line: the line has `idle_s` to arrive, not each byte."""
    path = str(tmp_path / "c.sock")
    server = ControllerServer(path, lambda message: {"ok": True}, lambda: {})
    server.max_clients, server.idle_s = 2, 0.5
    server.start()
    tricklers = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(2)]
    client = ControllerClient(path)
    try:
        for s in tricklers:
            s.connect(path)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            for s in tricklers:
                with contextlib.suppress(OSError):
                    s.send(b" ")
            time.sleep(0.2)
        assert client.request({"cmd": "status"})["ok"]
    finally:
        client.close()
        for s in tricklers:
            s.close()
        server.close()


def test_closing_leaves_a_socket_another_process_bound_over_its_file(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    server = ControllerServer(str(path), lambda message: {"ok": True}, dict)
    server.start()
    path.unlink()
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.closing(other):
        other.bind(str(path))
        server.close()
        assert path.exists()


def test_a_socket_named_from_the_working_directory_still_serves_after_a_chdir(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    server = ControllerServer("c.sock", lambda message: {"ok": True}, dict)
    server.file_check_s = 0.0
    server.start()
    try:
        monkeypatch.chdir("/")
        assert server.serving
        with contextlib.closing(ControllerClient(str(tmp_path / "c.sock"))) as client:
            assert client.request({"cmd": "status"})["ok"]
    finally:
        server.close()
    assert not (tmp_path / "c.sock").exists()


class _UnfilledMeasurement:
    """A measurement whose estimator left figures it could not compute as NaN and infinity."""

    ceiling_mmHg = 200.0

    def step(self, now, f, sample):
        return None  # finished at once

    def result(self) -> dict:
        nan, inf = float("nan"), float("inf")
        return {"lop_mmHg": 151.0, "confidence": nan, "readings": [{"heart_rate_bpm": inf}]}


def test_a_result_with_figures_missing_still_serves_status_and_shows_them_as_null(
    tmp_path: Path,
) -> None:
    """JSON has no NaN: one in a published result made every status reply after it fail."""
    sim = build_simulated(
        default_plant(2, limb="arm"), 2, procedures={"lop": lambda a, c: _UnfilledMeasurement()}
    )
    sim.run(0.5)
    snapshots = Snapshots(sim.controller)
    sim.controller.on_tick = lambda rec: snapshots.publish(rec.t)
    assert sim.controller.handle({"cmd": "measure_lop", "limb": "arm"})["ok"]
    sim.run(0.5)
    path = str(tmp_path / "c.sock")
    server = ControllerServer(path, sim.controller.submit, snapshots.latest)
    server.start()
    try:
        sim.clock.realtime = True
        loop_thread = threading.Thread(target=sim.loop.run, daemon=True)
        loop_thread.start()
        client = ControllerClient(path)
        status = client.request({"cmd": "status"})["status"]
        assert status["last_lop"] == {
            "lop_mmHg": 151.0,
            "confidence": None,
            "readings": [{"heart_rate_bpm": None}],
        }
        client.close()
    finally:
        sim.loop.stop()
        server.close()


def test_a_reply_that_cannot_be_encoded_is_answered_and_its_command_never_runs_twice(
    tmp_path: Path,
) -> None:
    """Before, the connection closed with no reply and the client, taking that as "not taken",
    sent the command again: it ran twice. numpy's numbers go as plain numbers."""
    calls: list[dict] = []

    def handler(message: dict) -> dict:
        calls.append(message)
        if message["cmd"] == "status":
            return {"ok": True, "status": {"lop_mmHg": np.float32(151.5), "n": np.int64(2)}}
        return {"ok": True, "status": {"odd": object()}}

    path = str(tmp_path / "c.sock")
    server = ControllerServer(path, handler, lambda: {})
    server.start()
    try:
        client = ControllerClient(path)
        assert client.request({"cmd": "status"})["status"] == {"lop_mmHg": 151.5, "n": 2}
        reply = client.request({"cmd": "inflate", "target_mmHg": 80, "id": 3})
        assert reply == {"ok": False, "error": "reply could not be encoded", "id": 3}
        assert [c["cmd"] for c in calls] == ["status", "inflate"]
        client.close()
    finally:
        server.close()
