"""The web server's contract: REST validation, the console lock, Socket.IO events, STOP, heartbeat."""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.cli import main
from appliance.controller.commands import CommandError, parse_command
from appliance.controller.supervisor import State
from appliance.screening import QUESTIONS
from appliance.sessions.phases import Phase
from appliance.sessions.prompts import ENGLISH
from appliance.store.records import LIMBS, LOP_METHODS, POSTURES, SESSION_OUTCOMES, SIDES
from tests.clinic import make_ready
from web.api.errors import GENERIC_500
from web.api.sessions import ACTION_FIELDS
from web.app import WebServer, create_server
from web.i18n import CATALOGUE_DIR, Catalogues
from web.pin import PIN_FILE, PinThrottle, PinVault
from web.settings import WebSettings

WEB = Path(__file__).resolve().parent.parent / "web"
PIN = "2468"


class FakeController:
    """Answers the IPC commands like the controller, with an instant cuff: enough for the UI."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.commands: list[str] = []
        self.state = "IDLE"
        self.mmHg = 0.0
        self.target: float | None = None
        self.fault: str | None = None
        self.alarms: list[dict[str, Any]] = []
        self.silenced = False
        self.closed = threading.Event()
        self.generation = 0

    def count(self, name: str) -> int:
        with self.lock:
            return self.commands.count(name)

    def status(self) -> dict[str, Any]:
        return {
            "t": round(time.monotonic() - self.t0, 3),
            "mmHg": self.mmHg,
            "target_mmHg": self.target,
            "state": self.state,
            "fault": self.fault,
            "alarms": copy.deepcopy(self.alarms),
            "silenced": self.silenced,
            "pump_duty": 0.0,
            "valve_open": self.state not in ("HOLDING", "INFLATING"),
            "occlusion_s": 0.0,
            "occlusion_limit_s": 600.0,
            "reperfusion_lockout_s": None,
            "limb": "arm",
            "lop_mmHg": None,
            "max_target_mmHg": 260.0,
            "last_lop": None,
            "last_selftest": None,
            "nominal_mmHg": None,
        }

    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            command = parse_command(message)
        except CommandError as exc:
            return {"ok": False, "error": str(exc)}
        with self.lock:
            self.commands.append(command.name)
            name = command.name
            if name == "stop":
                self.state, self.fault, self.mmHg, self.target = "FAULT", "STOP_UI", 0.0, None
                self.alarms = [
                    {"code": "STOP_UI", "message": "STOP pressed.", "latched": True, "since": 1.0}
                ]
            elif name == "inflate":
                if self.state == "FAULT":
                    return {"ok": False, "error": "inflate: controller is in FAULT"}
                self.state, self.target = "HOLDING", command.args["target_mmHg"]
                self.mmHg = self.target
            elif name == "deflate" and self.state != "FAULT":
                self.state, self.mmHg, self.target = "IDLE", 0.0, None
            elif name == "reset":
                if self.state != "FAULT":
                    return {"ok": False, "error": "reset: only a FAULT needs a reset"}
                self.state, self.fault, self.alarms = "IDLE", None, []
            elif name == "silence":
                self.silenced = True
                self.silence_codes = command.args.get("codes")
            elif name == "measure_lop":
                return {"ok": False, "error": "measure_lop: not available on this controller"}
            return {"ok": True, "status": self.status()}

    def stream(self, hz: float) -> Iterator[dict[str, Any]]:
        generation = self.generation
        while not self.closed.is_set() and generation == self.generation:
            with self.lock:
                snapshot = {"event": "status", **self.status()}
            yield snapshot
            time.sleep(1.0 / hz)

    def restart(self) -> None:
        """Like the real process restarting: the stream ends and the clock starts from zero."""
        with self.lock:
            self.generation += 1
            self.t0 = time.monotonic()
            self.state, self.fault, self.target, self.alarms = "IDLE", None, None, []


class FakeClient:
    def __init__(self, controller: FakeController) -> None:
        self.controller = controller

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        return self.controller.handle(json.loads(json.dumps(message)))

    def subscribe(self, hz: float = 20) -> Iterator[dict[str, Any]]:
        return self.controller.stream(hz)

    def close(self) -> None:
        pass


class Wall:
    """Wall-clock time the test can move (console idle lock)."""

    def __init__(self) -> None:
        self.t = 1_750_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def controller() -> Iterator[FakeController]:
    fake = FakeController()
    yield fake
    fake.closed.set()


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def server(tmp_path: Path, controller: FakeController, wall: Wall) -> Iterator[WebServer]:
    settings = WebSettings(
        data_dir=tmp_path / "data",
        socket_path=str(tmp_path / "none.sock"),
        heartbeat_period_s=0.1,
        ui_timeout_s=0.4,
    )
    make_ready(settings.data_dir, wall())
    built = create_server(settings, client_factory=lambda _path: FakeClient(controller), wall=wall)
    built.app.testing = True
    built.start()
    assert wait_for(lambda: built.state.link.connected)
    yield built
    controller.closed.set()
    built.close()
    assert built.app.extensions["bfr_unexpected_errors"] == 0, "bad input reached the 500 handler"


@pytest.fixture
def http(server: WebServer) -> Any:
    return server.app.test_client()


@pytest.fixture
def console(http: Any) -> Any:
    """A test client with the console unlocked by a first-run PIN."""
    reply = http.post("/api/console/pin", json={"pin": PIN, "clinician": "dr-a"})
    assert reply.status_code == 201, reply.get_json()
    return http


def wait_for(predicate: Any, timeout_s: float = 3.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def all_no() -> dict[str, bool]:
    return {q.id: False for q in QUESTIONS}


def register(client: Any, clinic_id: str = "P-0001") -> None:
    reply = client.post("/api/patients", json={"clinic_id": clinic_id, "birth_year": 1980})
    assert reply.status_code == 201, reply.get_json()


# ---------------------------------------------------------------- pages and assets


def test_pages_render_with_stop_and_offline_assets(http: Any) -> None:
    for path in ("/", "/console"):
        reply = http.get(path)
        assert reply.status_code == 200
        page = reply.get_data(as_text=True)
        assert 'id="stop-button"' in page
        assert "vendor/socket.io.min.js" in page
        assert "http://" not in page and "https://" not in page
        assert "default-src 'self'" in reply.headers["Content-Security-Policy"]
    for asset in ("socket.io.min.js", "uPlot.iife.min.js", "uPlot.min.css"):
        assert http.get(f"/static/vendor/{asset}").status_code == 200


def test_no_asset_comes_from_the_internet() -> None:
    """The appliance has no internet at run time: no CDN links in what the browser loads."""
    url = re.compile(r"""(src|href)\s*=\s*["']?(https?:)?//""", re.I)
    for path in [*WEB.glob("templates/**/*.html"), *WEB.glob("static/js/**/*.js")]:
        assert not url.search(path.read_text()), path
    assert not re.search(r"url\(\s*['\"]?https?:", (WEB / "static/css/app.css").read_text())


# ---------------------------------------------------------------- translations


def _used_keys() -> set[str]:
    keys: set[str] = set()
    call = re.compile(r"""\bt\(\s*["']([A-Za-z0-9_.]+)["']""")
    for path in [*WEB.glob("templates/**/*.html"), *WEB.glob("static/js/**/*.js")]:
        keys |= set(call.findall(path.read_text()))
    return keys


def test_every_text_key_used_exists_in_english() -> None:
    english = json.loads((CATALOGUE_DIR / "en.json").read_text())
    used = _used_keys()
    assert len(used) > 100
    # Keys built at run time, from the codes the server sends.
    used |= {f"prompt.{key}" for key in ENGLISH}
    used |= {f"state.{state.value}" for state in State} | {"state.unknown"}
    used |= {f"phase.{phase.value}" for phase in Phase}
    used |= {f"action.{name}" for name in ACTION_FIELDS}
    used |= {q.text_key for q in QUESTIONS}
    used |= {f"limb.{v}" for v in LIMBS} | {f"side.{v}" for v in SIDES}
    used |= {f"posture.{v}" for v in POSTURES} | {f"method.{v}" for v in LOP_METHODS}
    used |= {f"param.limb.{v}" for v in LIMBS} | {f"param.side.{v}" for v in SIDES}
    used |= {f"param.posture.{v}" for v in POSTURES}
    used |= {f"param.outcome.{v}" for v in SESSION_OUTCOMES}
    used |= {f"outcome.screening.{v}" for v in ("cleared", "caution", "blocked")}
    used |= {"reps.up", "reps.down"}
    missing = sorted(k for k in used if k not in english)
    assert not missing, f"keys missing from web/i18n/en.json: {missing}"


def test_other_catalogues_match_english_keys_and_placeholders() -> None:
    english = json.loads((CATALOGUE_DIR / "en.json").read_text())
    placeholder = re.compile(r"\{([a-z_]+)\}")
    for path in CATALOGUE_DIR.glob("*.json"):
        catalogue = json.loads(path.read_text())
        for key, text in catalogue.items():
            if key.startswith("alarm.code."):
                continue  # optional: English shows the controller's own advice
            assert key in english, f"{path.name}: {key} is not an English key"
            assert set(placeholder.findall(text)) == set(placeholder.findall(english[key])), key


def test_a_new_language_is_one_file(tmp_path: Path) -> None:
    (tmp_path / "en.json").write_text(json.dumps({"stop.button": "STOP", "a.b": "Hello {name}"}))
    (tmp_path / "de.json").write_text(json.dumps({"a.b": "Hallo {name}"}))
    catalogues = Catalogues(tmp_path)
    assert catalogues.languages == ["de", "en"]
    assert catalogues.text("de", "a.b", name="Ada") == "Hallo Ada"
    assert catalogues.text("de", "stop.button") == "STOP"  # falls back to English
    assert catalogues.resolve("xx") == "en"


def test_catalogue_endpoint(http: Any) -> None:
    assert http.get("/api/i18n").get_json()["languages"] == ["en"]
    assert http.get("/api/i18n/en").get_json()["stop.button"] == "STOP"
    assert http.get("/api/i18n/zz").status_code == 404


# ---------------------------------------------------------------- STOP, silence, status


def test_stop_over_rest_needs_no_pin_and_deflates(http: Any, controller: FakeController) -> None:
    controller.handle({"cmd": "inflate", "target_mmHg": 80})
    reply = http.post("/api/stop")
    assert reply.status_code == 200
    assert reply.get_json()["status"]["state"] == "FAULT"
    assert controller.state == "FAULT" and controller.mmHg == 0.0


def test_stop_is_never_refused_for_its_body(http: Any, controller: FakeController) -> None:
    for body in BAD_BODIES:
        assert http.post("/api/stop", json=body).status_code == 200
    assert http.post("/api/stop", data="{garbage", content_type="text/plain").status_code == 200
    assert controller.count("stop") == len(BAD_BODIES) + 1


def test_stop_and_silence_over_socketio(server: WebServer, controller: FakeController) -> None:
    client = server.socketio.test_client(server.app)
    assert client.is_connected()
    assert client.emit("stop", callback=True) == {"ok": True, "error": None}
    assert controller.count("stop") == 1
    assert client.emit("silence", callback=True)["ok"] is True
    assert controller.silenced
    # It mutes what the screens were shown (the STOP_UI fault), not whatever is active by the
    # time the controller reads the command.
    assert controller.silence_codes == ["STOP_UI"]
    client.disconnect()


def test_connect_gets_status_alarm_and_session(server: WebServer) -> None:
    client = server.socketio.test_client(server.app)
    names = {m["name"] for m in client.get_received()}
    assert {"status", "alarm", "session"} <= names
    client.disconnect()


def test_pressure_is_pushed_to_every_client(server: WebServer) -> None:
    clients = [server.socketio.test_client(server.app) for _ in range(2)]
    for client in clients:
        client.get_received()
    received: list[list[dict]] = [[] for _ in clients]
    # 25 Hz: six readings take a quarter of a second; a loaded test machine may take longer.
    deadline = time.monotonic() + 5.0
    while min(len(r) for r in received) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
        for client, got in zip(clients, received, strict=True):
            got += [m["args"][0] for m in client.get_received() if m["name"] == "pressure"]
    for client, pressure in zip(clients, received, strict=True):
        assert len(pressure) >= 6
        assert {"t", "mmHg", "target_mmHg", "state"} <= set(pressure[-1])
        times = [m["t"] for m in pressure]
        assert times == sorted(set(times))  # each a new reading, in order
        client.disconnect()


def test_alarm_event_carries_the_advice(server: WebServer, http: Any) -> None:
    client = server.socketio.test_client(server.app)
    client.get_received()
    http.post("/api/stop")
    alarms: list[dict[str, Any]] = []

    def alarm_seen() -> bool:
        alarms.extend(m["args"][0] for m in client.get_received() if m["name"] == "alarm")
        return bool(alarms)

    assert wait_for(alarm_seen)
    assert alarms[-1]["alarms"][0]["code"] == "STOP_UI"
    assert alarms[-1]["alarms"][0]["message"]
    assert alarms[-1]["connected"] is True
    client.disconnect()


def test_a_late_command_reply_never_shows_screens_an_older_state(
    server: WebServer, controller: FakeController
) -> None:
    """A command's reply travels on its own connection and can land after the stream has shown
    what came next: a STOP a moment after "measure LOP" put MEASURING_LOP back on the console
    after the FAULT. Screens only ever move forward in the controller's time."""
    link = server.state.link
    client = server.socketio.test_client(server.app)
    before = controller.status() | {"state": "MEASURING_LOP"}  # the reply, taken now
    with controller.lock:
        controller.state, controller.fault = "FAULT", "STOP_UI"
    assert wait_for(lambda: (link.latest or {}).get("state") == "FAULT")
    assert wait_for(lambda: link.latest["t"] > before["t"])
    client.get_received()
    controller.handle = lambda message: {"ok": True, "status": before}  # arrives late
    assert link.request({"cmd": "heartbeat"})["ok"]
    shown = [m["args"][0]["state"] for m in client.get_received() if m["name"] == "status"]
    assert "MEASURING_LOP" not in shown
    assert link.status_view()["state"] == "FAULT"


def test_a_restarted_controllers_status_is_taken_though_its_clock_went_back(
    server: WebServer, controller: FakeController
) -> None:
    """Older snapshots are dropped by the controller's clock, and a restart sets that clock
    back to zero: the new subscription's status must still be taken, or screens would freeze."""
    link = server.state.link
    with controller.lock:
        controller.state = "HOLDING"
    assert wait_for(lambda: (link.latest or {}).get("t", 0.0) > 1.0)
    controller.restart()
    assert wait_for(lambda: link.latest["state"] == "IDLE" and link.latest["t"] < 1.0)
    assert wait_for(lambda: link.connected)


def test_status_endpoint(http: Any) -> None:
    status = http.get("/api/status").get_json()
    assert status["connected"] is True
    assert status["state"] == "IDLE"


# ---------------------------------------------------------------- heartbeat


def test_heartbeat_only_while_a_screen_is_alive(
    server: WebServer, controller: FakeController
) -> None:
    time.sleep(0.3)
    assert controller.count("heartbeat") == 0, "no screen yet: no heartbeat"
    client = server.socketio.test_client(server.app)
    deadline = time.monotonic() + 5.0  # a loaded test machine may take longer than 0.2 s
    while controller.count("heartbeat") < 2 and time.monotonic() < deadline:
        client.emit("ui_alive")
        time.sleep(0.1)
    assert controller.count("heartbeat") >= 2
    # The page stops pinging (hung): the heartbeat stops soon after, though it stays connected.
    time.sleep(0.6)
    before = controller.count("heartbeat")
    time.sleep(0.4)
    assert controller.count("heartbeat") == before
    assert client.is_connected()
    client.disconnect()


def test_heartbeat_stops_when_the_controller_status_stops(
    server: WebServer, controller: FakeController
) -> None:
    client = server.socketio.test_client(server.app)
    client.emit("ui_alive")
    assert server.state.link.heartbeat_allowed()
    controller.closed.set()  # the status stream ends: the link is down
    assert wait_for(lambda: not server.state.link.connected)
    client.emit("ui_alive")
    assert not server.state.link.heartbeat_allowed()
    client.disconnect()


# ---------------------------------------------------------------- console lock


def test_console_endpoints_need_the_pin(http: Any) -> None:
    for method, path in (
        ("get", "/api/patients"),
        ("post", "/api/patients"),
        ("get", "/api/protocols"),
        ("post", "/api/sessions"),
        ("post", "/api/exports"),
        ("post", "/api/controller/reset"),
        ("post", "/api/lop/measure"),
    ):
        reply = getattr(http, method)(path, json={})
        assert reply.status_code == 401, path
        assert reply.get_json()["locked"] is True


def test_first_run_pin_is_hashed_and_unlocks(console: Any, server: WebServer) -> None:
    stored = (server.state.settings.data_dir / PIN_FILE).read_text()
    assert PIN not in stored and json.loads(stored)["scheme"] == "scrypt"
    view = console.get("/api/console").get_json()
    assert view == {**view, "pin_set": True, "unlocked": True, "clinician": "dr-a"}
    # A second "first run" cannot replace the PIN without the current one.
    assert console.post("/api/console/pin", json={"pin": "1111"}).status_code == 403


def test_wrong_pins_lock_out_for_a_minute(console: Any, server: WebServer) -> None:
    console.post("/api/console/lock")
    for _ in range(4):
        reply = console.post("/api/console/unlock", json={"pin": "0000", "clinician": "x"})
        assert reply.status_code == 403
    reply = console.post("/api/console/unlock", json={"pin": "0000", "clinician": "x"})
    assert reply.status_code == 429 and reply.get_json()["retry_in_s"] > 50
    reply = console.post("/api/console/unlock", json={"pin": PIN, "clinician": "x"})
    assert reply.status_code == 429, "the right PIN waits out the lockout too"
    server.state.throttle.succeeded()
    assert (
        console.post("/api/console/unlock", json={"pin": PIN, "clinician": "x"}).status_code == 200
    )


def test_throttle_counts_and_expires() -> None:
    now = [0.0]
    throttle = PinThrottle(3, 60.0, clock=lambda: now[0])
    assert throttle.failed() == 0 and throttle.failed() == 0
    assert throttle.failed() == 60.0
    now[0] = 61.0
    assert throttle.wait_s() == 0


def test_console_locks_after_idle_time(console: Any, wall: Wall) -> None:
    assert console.get("/api/patients").status_code == 200
    wall.t += 299
    assert console.get("/api/patients").status_code == 200, "activity restarts the timer"
    wall.t += 301
    assert console.get("/api/patients").status_code == 401


def test_pin_change_needs_the_current_pin(console: Any) -> None:
    bad = console.post("/api/console/pin", json={"pin": "13579", "current_pin": "0000"})
    assert bad.status_code == 403
    good = console.post("/api/console/pin", json={"pin": "13579", "current_pin": PIN})
    assert good.status_code == 200
    console.post("/api/console/lock")
    assert (
        console.post("/api/console/unlock", json={"pin": "13579", "clinician": "b"}).status_code
        == 200
    )


def test_pin_vault_rejects_bad_formats(tmp_path: Path) -> None:
    vault = PinVault(tmp_path)
    for bad in ("123", "123456789", "12a4", "", " 1234"):
        with pytest.raises(ValueError):
            vault.set_pin(bad)
    vault.set_pin("12345")
    assert vault.verify("12345") and not vault.verify("12346") and not vault.verify("x")


def test_unlock_needs_a_name(http: Any) -> None:
    http.post("/api/console/pin", json={"pin": PIN, "clinician": "dr-a"})
    http.post("/api/console/lock")
    assert http.post("/api/console/unlock", json={"pin": PIN, "clinician": "  "}).status_code == 400


# ---------------------------------------------------------------- patients, screening, LOP


def test_patients_register_list_detail_update(console: Any) -> None:
    register(console)
    assert (
        console.post("/api/patients", json={"clinic_id": "P-0001", "age_band": "61-70"}).status_code
        == 409
    )
    listed = console.get("/api/patients").get_json()
    assert [p["clinic_id"] for p in listed["patients"]] == ["P-0001"]
    assert "61-70" in listed["age_bands"]
    detail = console.get("/api/patients/P-0001").get_json()
    assert detail["patient"]["birth_year"] == 1980 and detail["sessions"] == []
    reply = console.patch("/api/patients/P-0001", json={"limb_notes": "left knee ACL"})
    assert reply.get_json()["limb_notes"] == "left knee ACL"
    assert console.get("/api/patients/NOPE").status_code == 404


def test_screening_flow_blocked_then_overridden(console: Any) -> None:
    register(console)
    questions = console.get("/api/screening/questions").get_json()["questions"]
    assert len(questions) == len(QUESTIONS)
    answers = all_no() | {"dvt_history": True}
    reply = console.post(
        "/api/patients/P-0001/screenings", json={"limb": "arm", "side": "left", "answers": answers}
    )
    assert reply.status_code == 201
    screening = reply.get_json()
    assert screening["outcome"] == "blocked" and screening["absolute"] == ["dvt_history"]
    clearance = console.get("/api/patients/P-0001/clearance?limb=arm&side=left").get_json()
    assert clearance["allowed"] is False
    short = console.post(f"/api/screenings/{screening['id']}/override", json={"reason": "ok"})
    assert short.status_code == 400
    reason = "DVT 20 years ago, cleared by haematology in writing"
    done = console.post(f"/api/screenings/{screening['id']}/override", json={"reason": reason})
    assert done.status_code == 200 and done.get_json()["override_by"] == "dr-a"
    again = console.post(f"/api/screenings/{screening['id']}/override", json={"reason": reason})
    assert again.status_code == 409
    assert console.get("/api/patients/P-0001/clearance?limb=arm&side=left").get_json()["allowed"]


def test_lop_record_and_history(console: Any) -> None:
    register(console)
    body = {
        "limb": "leg",
        "side": "right",
        "posture": "supine",
        "cuff": "11.5 cm",
        "first_mmhg": 180,
        "second_mmhg": 200,
        "method": "doppler",
    }
    reply = console.post("/api/patients/P-0001/lop", json=body)
    assert reply.status_code == 201
    saved = reply.get_json()
    assert saved["lop_mmhg"] == 190 and saved["spread_flag"] is True
    history = console.get("/api/patients/P-0001/lop?limb=leg").get_json()["lop"]
    assert [m["posture"] for m in history] == ["supine"]
    assert console.get("/api/patients/P-0001/lop?limb=tail").status_code == 400


def test_lop_measure_needs_clearance_and_reports_controller_refusals(console: Any) -> None:
    register(console)
    body = {"clinic_id": "P-0001", "limb": "arm", "side": "left", "posture": "seated"}
    blocked = console.post("/api/lop/measure", json=body)
    assert blocked.status_code == 409 and "screen" in blocked.get_json()["error"]
    console.post(
        "/api/patients/P-0001/screenings",
        json={"limb": "arm", "side": "left", "answers": all_no()},
    )
    refused = console.post("/api/lop/measure", json=body)
    assert refused.status_code == 409 and "not available" in refused.get_json()["error"]


def test_nothing_inflates_a_limb_until_calibration_and_self_test_allow_it(
    console: Any, server: WebServer, controller: FakeController, wall: Wall
) -> None:
    register(console)
    console.post(
        "/api/patients/P-0001/screenings",
        json={"limb": "arm", "side": "left", "answers": all_no()},
    )
    measure = {"clinic_id": "P-0001", "limb": "arm", "side": "left", "posture": "seated"}
    plan = measure | {"protocol": "standard-30-15-15-15", "pct_lop": 50, "lop_source": "recorded"}
    data = server.state.settings.data_dir
    assert console.get("/api/readiness").get_json() == {
        "ready": True,
        "checked": True,
        "problems": [],
    }
    (data / "calibration.toml").unlink()
    selftest = json.loads((data / "selftest.json").read_text())
    selftest["checks"] = [c for c in selftest["checks"] if c["name"] != "pump_start"]
    (data / "selftest.json").write_text(json.dumps(selftest))  # as written before pump_start
    readiness = console.get("/api/readiness").get_json()
    assert readiness["ready"] is False
    assert [p["advice"] for p in readiness["problems"]] == [
        "a technician must calibrate the pressure sensor (`bfr calibrate`)",
        "a technician must run the self-test again (`bfr selftest`)",
    ]
    for path, body in (("/api/sessions", plan), ("/api/lop/measure", measure)):
        refused = console.post(path, json=body)
        error = refused.get_json()["error"]
        assert refused.status_code == 409, error
        assert "never been calibrated" in error and "pump_start check" in error
    assert server.state.sessions.view() == {"active": False}
    assert controller.count("inflate") == controller.count("measure_lop") == 0

    make_ready(data, wall() - 3 * 86400)
    # A self-test three days old passes unless the clinic asks for one every day.
    assert console.get("/api/readiness").get_json()["ready"] is True
    daily = WebSettings(data_dir=data, socket_path="none", selftest_max_age_s=86400)
    server.state.settings = daily
    too_old = console.post("/api/sessions", json=plan)
    assert too_old.status_code == 409 and "too old" in too_old.get_json()["error"]
    server.state.settings = WebSettings(data_dir=data, socket_path="none")
    assert console.post("/api/sessions", json=plan).status_code == 201


def test_a_simulated_rig_needs_no_calibration_or_self_test(tmp_path: Path) -> None:
    settings = WebSettings(data_dir=tmp_path, socket_path="none", device_checks=False)
    built = create_server(settings, client_factory=lambda _path: FakeClient(FakeController()))
    try:
        client = built.app.test_client()
        assert (
            client.post("/api/console/pin", json={"pin": PIN, "clinician": "dr"}).status_code == 201
        )
        assert client.get("/api/readiness").get_json() == {
            "ready": True,
            "checked": False,
            "problems": [],
        }
    finally:
        built.close()


def test_protocols_listed_with_pct_lop_rules(console: Any) -> None:
    data = console.get("/api/protocols").get_json()
    names = {p["name"] for p in data["protocols"]}
    assert "standard-30-15-15-15" in names
    assert data["pct_lop"]["needs_reason_above"] == 80
    assert console.get("/api/protocols/nope").status_code == 404


# ---------------------------------------------------------------- sessions


def test_session_start_cuff_confirm_and_abort(
    console: Any, server: WebServer, controller: FakeController
) -> None:
    register(console)
    console.post(
        "/api/patients/P-0001/screenings",
        json={"limb": "arm", "side": "left", "answers": all_no()},
    )
    plan = {
        "clinic_id": "P-0001",
        "protocol": "standard-30-15-15-15",
        "limb": "arm",
        "side": "left",
        "posture": "seated",
        "cuff": "standard",
        "pct_lop": 50,
        "lop_source": "recorded",
    }
    reply = console.post("/api/sessions", json=plan)
    assert reply.status_code == 201, reply.get_json()
    view = reply.get_json()
    assert view["phase"] == "cuff_placement" and view["picture"] == {"limb": "arm", "side": "left"}
    assert console.post("/api/sessions", json=plan).status_code == 409
    assert console.get("/api/session").get_json()["prompt_key"] == "place_cuff"

    patient = server.socketio.test_client(server.app)
    bad = patient.emit("session_input", {"action": "abort"}, callback=True)
    assert bad["ok"] is False
    assert patient.emit("session_input", {"action": "confirm_cuff"}, callback=True)["ok"]
    # No LOP on record for this cuff: the clinician has to decide.
    assert wait_for(lambda: server.state.sessions.view()["phase"] == "lop_review")
    refused = console.post("/api/session/actions/enter_lop", json={"first_mmhg": 20})
    assert refused.status_code == 400
    entered = console.post("/api/session/actions/enter_lop", json={"first_mmhg": 150})
    assert entered.status_code == 200
    assert wait_for(lambda: server.state.sessions.view()["phase"] == "set")
    assert controller.count("inflate") == 1
    paused = console.post("/api/session/actions/pause")
    assert paused.status_code == 200 and paused.get_json()["phase"] == "paused"
    assert console.post("/api/session/actions/resume").get_json()["phase"] == "set"
    assert console.post("/api/session/actions/abort", json={}).status_code == 400
    done = console.post("/api/session/actions/abort", json={"reason": "patient asked to stop"})
    assert done.status_code == 200 and done.get_json()["outcome"] == "aborted"
    assert controller.count("deflate") >= 1
    assert console.post("/api/session/actions/pause").status_code == 409
    assert console.post("/api/session/actions/dismiss").get_json() == {"active": False}
    history = console.get("/api/sessions?clinic_id=P-0001").get_json()["sessions"]
    assert history[0]["outcome"] == "aborted"
    detail = console.get(f"/api/sessions/{history[0]['id']}").get_json()
    assert detail["summary"]["outcome"] == "aborted"
    plot = console.get(f"/api/sessions/{history[0]['id']}/plot.svg")
    assert plot.status_code == 200 and plot.mimetype == "image/svg+xml"
    patient.disconnect()


def test_session_start_refuses_bad_plans(console: Any) -> None:
    register(console)
    plan = {
        "clinic_id": "P-0001",
        "protocol": "multi-exercise-leg",
        "limb": "arm",
        "side": "left",
        "posture": "seated",
    }
    assert console.post("/api/sessions", json=plan).status_code == 400  # leg-only protocol
    too_high = plan | {"protocol": "standard-30-15-15-15", "pct_lop": 90}
    reply = console.post("/api/sessions", json=too_high)
    assert reply.status_code == 400 and "80" in reply.get_json()["error"]
    assert console.post("/api/sessions", json=plan | {"protocol": "nope"}).status_code == 404
    assert console.post("/api/session/actions/explode").status_code == 404


# ---------------------------------------------------------------- exports


def test_export_and_download(console: Any, server: WebServer) -> None:
    register(console)
    reply = console.post("/api/exports", json={"clinic_id": "P-0001"})
    assert reply.status_code == 201
    export = reply.get_json()
    assert "index.html" in export["files"]
    listed = console.get("/api/exports").get_json()["exports"]
    assert listed[0]["id"] == export["id"]
    assert console.get(f"/api/exports/{export['id']}/index.html").status_code == 200
    for bad in ("../bfr.sqlite3", "..%2Fbfr.sqlite3", "missing.csv"):
        assert console.get(f"/api/exports/{export['id']}/{bad}").status_code == 404
    assert console.get("/api/exports/..%2F..%2Fetc/passwd").status_code == 404
    assert console.post("/api/exports", json={"clinic_id": "NOPE"}).status_code == 404
    assert console.post("/api/exports", json={"since": "last week"}).status_code == 400


# ---------------------------------------------------------------- validation and errors


BAD_BODIES: list[Any] = [
    None,
    [],
    "text",
    42,
    {"unknown_field": 1},
    {"clinic_id": 7},
    {"clinic_id": "x" * 500},
    {"clinic_id": "P-1", "birth_year": "1980"},
    {"clinic_id": "P-1", "birth_year": True},
    {"clinic_id": "P-1", "birth_year": 1e308},
    {"limb": "tail", "side": "left", "answers": {}},
    {"limb": "arm", "side": "left", "answers": []},
    {"limb": "arm", "side": "left", "answers": {"dvt_history": "no"}},
    {"limb": "arm", "side": "left", "posture": "seated", "first_mmhg": "150"},
    {"limb": "arm", "side": "left", "posture": "seated", "first_mmhg": 1e999},
    {"limb": "arm", "side": "left", "posture": "seated", "first_mmhg": 150, "cuff": "a\x00b"},
    {"pin": 1234, "clinician": "x"},
    {"pin": None, "clinician": None},
    {"reason": 5},
    {"first_mmhg": -1},
    {"rpe": 11, "pain": 0},
    {"since": 20250101},
]
ENDPOINTS = [
    ("post", "/api/patients"),
    ("patch", "/api/patients/P-0001"),
    ("post", "/api/patients/P-0001/screenings"),
    ("post", "/api/patients/P-0001/lop"),
    ("post", "/api/lop/measure"),
    ("post", "/api/sessions"),
    ("post", "/api/session/actions/enter_lop"),
    ("post", "/api/session/actions/rate"),
    ("post", "/api/session/actions/abort"),
    ("post", "/api/screenings/1/override"),
    ("post", "/api/screenings/1/confirm"),
    ("post", "/api/exports"),
    ("post", "/api/console/unlock"),
    ("post", "/api/console/pin"),
    ("post", "/api/silence"),
]


def test_bad_input_is_a_4xx_with_a_message_never_a_500(console: Any, server: WebServer) -> None:
    register(console)
    for method, path in ENDPOINTS:
        for body in BAD_BODIES:
            kwargs: dict[str, Any] = {"json": body} if body is not None else {"data": "{not json"}
            if body is None:
                kwargs["content_type"] = "application/json"
            reply = getattr(console, method)(path, **kwargs)
            assert 400 <= reply.status_code < 500, (path, body, reply.status_code)
            assert isinstance(reply.get_json()["error"], str), (path, body)
    assert server.app.extensions["bfr_unexpected_errors"] == 0


def test_unknown_api_paths_and_methods_are_json(http: Any) -> None:
    missing = http.get("/api/nothing-here")
    assert missing.status_code == 404 and "error" in missing.get_json()
    wrong = http.get("/api/stop")
    assert wrong.status_code == 405 and "error" in wrong.get_json()
    big = http.post("/api/console/unlock", data="x" * 100_000, content_type="application/json")
    assert big.status_code == 413


def test_unexpected_errors_are_a_logged_generic_500(tmp_path: Path) -> None:
    controller = FakeController()
    settings = WebSettings(data_dir=tmp_path / "data", socket_path="unused")
    built = create_server(settings, client_factory=lambda _path: FakeClient(controller))

    def explode() -> None:
        raise RuntimeError("secret internals")

    built.app.add_url_rule("/api/explode", view_func=explode)
    reply = built.app.test_client().get("/api/explode")
    assert reply.status_code == 500
    assert reply.get_json() == {"error": GENERIC_500}
    assert "secret" not in reply.get_data(as_text=True)
    assert built.app.extensions["bfr_unexpected_errors"] == 1
    controller.closed.set()
    built.close()


def test_settings_keep_the_heartbeat_inside_the_controller_timeout(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="heartbeat_period_s"):
        WebSettings(data_dir=tmp_path, socket_path="s", heartbeat_period_s=2.0)
    with pytest.raises(ValueError, match="ui_timeout_s"):
        WebSettings(data_dir=tmp_path, socket_path="s", ui_timeout_s=3.0)
    with pytest.raises(ValueError, match="pressure_hz"):
        WebSettings(data_dir=tmp_path, socket_path="s", pressure_hz=10)


@pytest.mark.parametrize("hours", ["0", "-1", "nan", "inf"])
def test_a_self_test_age_limit_must_be_a_positive_time(
    tmp_path: Path, hours: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(ValueError, match="self-test max age"):
        WebSettings(data_dir=tmp_path, socket_path="s", selftest_max_age_s=float(hours) * 3600)
    argv = ["web", "--data-dir", str(tmp_path), "--port", "0", "--selftest-max-age-h", hours]
    assert main(argv) == 2
    assert "self-test max age" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("policy_h", "option_h", "expected_h"),
    [(0, None, None), (24, None, 24), (0, "12", 12), (24, "48", 24), (24, "6", 6)],
)
def test_the_web_applies_the_stricter_of_the_clinics_policy_and_its_option(
    tmp_path: Path, policy_h: float, option_h: str | None, expected_h: float | None
) -> None:
    """The controller enforces the config's `[readiness]` policy on every inflation, so the web
    server never starts a session under a looser one (its first inflation would be refused)."""
    from appliance.cli import build_parser
    from appliance.commands.web import web_settings
    from appliance.config import load_config

    config = tmp_path / "bfr.toml"
    config.write_text(f"[readiness]\nselftest_max_age_h = {policy_h}\n")
    argv = ["web", "--config", str(config)]
    argv += [] if option_h is None else ["--selftest-max-age-h", option_h]
    args = build_parser().parse_args(argv)
    settings = web_settings(args, load_config(args.config), tmp_path)
    expected = None if expected_h is None else expected_h * 3600.0
    assert settings.selftest_max_age_s == expected
