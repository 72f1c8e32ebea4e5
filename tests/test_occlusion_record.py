"""A restart (crash, watchdog, update, power cut) cannot forget a limb's occlusion or its lockout."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from appliance.controller import occlusion_record
from appliance.controller.ipc import ControllerClient
from appliance.controller.limits import MAX_REPERFUSION_S
from appliance.controller.occlusion import OcclusionClock
from appliance.controller.occlusion_record import (
    IDLE_PERIOD_S,
    PERIOD_S,
    STALE_S,
    UNKNOWN_OCCLUDED_S,
    BootClock,
    OcclusionRecord,
    resume,
)
from appliance.controller.supervisor import State
from appliance.simulation import SimulatedAppliance, build_simulated
from appliance.technician.atomic_file import write_atomically
from hardware.sim.cuff import default_plant

ARM = {"limb": "arm", "posture": "seated", "leak_orifice_mm": 0.0, "artefact_rate_per_min": 0.0}
LIMITS = {"limit_s": 600.0, "reperfusion_s": 180.0}
LIMITS_PAIR = (600.0, 180.0)


def record_text(
    occluded: bool,
    occlusion_s: float,
    deflated_s: float = 0.0,
    owed_s: float | None = None,
    boot_s: float = 1000.0,
    boot_id: str = "boot-a",
    limit_s: float = 600.0,
    reperfusion_s: float = 180.0,
) -> str:
    return json.dumps(
        {
            "version": 1,
            "boot_id": boot_id,
            "boot_s": boot_s,
            "occluded": occluded,
            "occlusion_s": occlusion_s,
            "deflated_s": deflated_s,
            "owed_s": owed_s,
            "limit_s": limit_s,
            "reperfusion_s": reperfusion_s,
        }
    )


# ---- what a restart resumes with ----------------------------------------------------------------
def test_no_record_owes_nothing() -> None:
    resumed = resume(None, "boot-a", 5.0, **LIMITS)
    assert resumed.clock == OcclusionClock()


def test_same_boot_an_occluded_record_counts_the_gap_as_occlusion() -> None:
    """A process killed with the valve shut may have left the cuff up: the gap was occlusion."""
    resumed = resume(record_text(True, 300.0), "boot-a", 1000.0 + 40.0, **LIMITS)
    assert resumed.clock.occlusion_s == pytest.approx(340.0)
    assert resumed.clock.deflated_s == 0.0 and resumed.clock.owed_s is None


def test_same_boot_a_gap_that_crosses_the_limit_owes_the_reperfusion() -> None:
    resumed = resume(record_text(True, 590.0), "boot-a", 1000.0 + 30.0, **LIMITS)
    assert resumed.clock.owed_s == 180.0
    assert resumed.clock.lockout_s(600.0, 180.0) == 180.0


def test_same_boot_a_deflated_record_credits_the_gap_as_rest() -> None:
    resting = record_text(False, 300.0, deflated_s=20.0, boot_s=1000.0)
    part = resume(resting, "boot-a", 1000.0 + 100.0, **LIMITS).clock
    assert part.occlusion_s == 300.0 and part.deflated_s == pytest.approx(120.0)
    rested = resume(resting, "boot-a", 1000.0 + 160.0, **LIMITS).clock
    assert rested.occlusion_s == 0.0 and rested.owed_s is None  # a full rest: a fresh allowance


def test_same_boot_a_lockout_keeps_what_it_owes_and_credits_rest_served() -> None:
    locked = record_text(False, 610.0, deflated_s=50.0, owed_s=180.0)
    clock = resume(locked, "boot-a", 1000.0 + 60.0, **LIMITS).clock
    assert clock.lockout_s(600.0, 180.0) == pytest.approx(70.0)
    # The record's owed rest stands even though a restart's default limit would owe less.
    shorter = resume(locked, "boot-a", 1000.0 + 60.0, limit_s=600.0, reperfusion_s=60.0)
    assert shorter.clock.lockout_s(600.0, 60.0) == pytest.approx(70.0)


@pytest.mark.parametrize("boot_id, boot_s", [("boot-b", 5000.0), ("boot-b", 3.0), ("boot-a", 2.0)])
def test_across_a_reboot_or_a_clock_gone_back_no_rest_is_credited(boot_id, boot_s) -> None:
    """The Pi has no real-time clock: after a reboot nobody knows how long it was off."""
    locked = resume(record_text(False, 610.0, 50.0, 180.0), boot_id, boot_s, **LIMITS).clock
    assert locked.lockout_s(600.0, 180.0) == pytest.approx(130.0)
    occluded = resume(record_text(True, 300.0), boot_id, boot_s, **LIMITS).clock
    assert occluded.occlusion_s == pytest.approx(300.0 + UNKNOWN_OCCLUDED_S)
    resting = resume(record_text(False, 300.0, deflated_s=170.0), boot_id, boot_s, **LIMITS).clock
    assert (resting.occlusion_s, resting.deflated_s, resting.owed_s) == (300.0, 170.0, None)


def test_a_sessions_stricter_limits_outlive_the_restart_until_a_full_rest() -> None:
    """A session's 300 s limit and 1800 s rest hold for the occlusion carried over, though a
    restarted controller's defaults are 600 and 180 s; a full rest ends them."""
    strict = {"limit_s": 300.0, "reperfusion_s": 1800.0}
    text = record_text(False, 250.0, deflated_s=200.0, **strict)
    clock = resume(text, "boot-a", 1000.0, **LIMITS).clock
    assert clock.occlusion_s == 250.0 and clock.limits(600.0, 180.0) == (300.0, 1800.0)
    clock.track(True, 60.0, limit_s=600.0, reperfusion_s=180.0)
    assert clock.lockout_s(600.0, 180.0) == 1800.0  # 310 s occluded: the session's limit
    clock.track(False, 1800.0, limit_s=600.0, reperfusion_s=180.0)
    assert clock.lockout_s(600.0, 180.0) is None and clock.limits(600.0, 180.0) == LIMITS_PAIR


def test_a_machine_without_a_boot_id_never_credits_rest() -> None:
    resting = record_text(False, 300.0, deflated_s=20.0, boot_id="")
    assert resume(resting, "", 9000.0, **LIMITS).clock.deflated_s == 20.0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        json.dumps({"version": 2}),
        record_text(True, 300.0).replace('"occluded": true', '"occluded": 1'),
        record_text(True, 300.0).replace("300.0", "NaN"),
        record_text(True, -5.0),
        record_text(False, 10.0, owed_s=1e9),
        record_text(False, 10.0).replace('"boot_id": "boot-a"', '"boot_id": 7'),
        json.dumps({"version": 1, "boot_id": "boot-a", "occluded": True}),
        "[" * 5000,
        record_text(True, 300.0).replace("300.0", "1" * 400),  # overflows a float
    ],
)
def test_an_unreadable_record_owes_a_full_reperfusion(text: str) -> None:
    """Unknown: the longest rest a session may have been owed, not the default 180 s."""
    resumed = resume(text, "boot-a", 2000.0, **LIMITS)
    assert resumed.clock.lockout_s(600.0, 180.0) == MAX_REPERFUSION_S
    assert "unreadable" in resumed.reason


def test_a_record_from_before_limits_were_kept_is_read_not_taken_for_damage() -> None:
    """The first records had no limit_s/reperfusion_s: an update must not turn the 1690 s of
    rest one still owes into the default lockout."""
    old = json.loads(record_text(False, 700.0, deflated_s=100.0, owed_s=1800.0))
    del old["limit_s"], old["reperfusion_s"]
    clock = resume(json.dumps(old), "boot-a", 1000.0 + 10.0, **LIMITS).clock
    assert clock.lockout_s(600.0, 180.0) == pytest.approx(1690.0)


# ---- the controller keeps it across a restart ---------------------------------------------------
class Machine:
    """A boot: its id and a boot clock the test moves on while no controller runs."""

    def __init__(self, boot_id: str = "boot-a") -> None:
        self.boot_id = boot_id
        self.offset_s = 100.0

    def start(self, path: Path, seed: int = 3) -> tuple[SimulatedAppliance, OcclusionRecord]:
        """A controller started as the process starts it: the record loaded, then kept."""
        holder: list[SimulatedAppliance] = []
        base = self.offset_s
        boot = BootClock(self.boot_id, lambda: base + holder[0].clock.now() if holder else base)
        record = OcclusionRecord(path, boot)
        resumed = record.load(limit_s=600.0, reperfusion_s=180.0)
        sim = build_simulated(default_plant(seed, **ARM), seed)
        holder.append(sim)
        sim.controller.occlusion = resumed.clock
        sim.controller.occlusion_record = record
        sim.run(0.3)
        assert sim.controller.handle({"cmd": "configure", "limb": "arm"})["ok"]
        return sim, record

    def stop(self, sim: SimulatedAppliance, down_s: float) -> None:
        """The controller dies where it stands; the machine runs on for `down_s`."""
        self.offset_s += sim.clock.now() + down_s
        sim.close()


def hold(sim: SimulatedAppliance, seconds: float) -> None:
    assert sim.controller.handle({"cmd": "inflate", "target_mmHg": 120})["ok"]
    assert sim.run_until(lambda: sim.controller.state == State.HOLDING, 40.0)
    sim.run(seconds)


def test_a_crash_mid_hold_keeps_the_occlusion_time_and_counts_the_gap(tmp_path: Path) -> None:
    path = tmp_path / "occlusion.json"
    machine = Machine()
    sim, record = machine.start(path)
    hold(sim, 100.0)
    before = sim.controller.occlusion.occlusion_s
    assert record.writes >= 20  # every 5 s while occluded, never only at the end
    machine.stop(sim, down_s=8.0)  # killed holding; restarted 8 s later
    again, _ = machine.start(path)
    # Exact within a boot, however old the last record was: the gap is counted from it.
    assert again.controller.status()["occlusion_s"] == pytest.approx(before + 8.0, abs=0.2)


def test_a_lockout_survives_a_restart_and_a_reboot(tmp_path: Path) -> None:
    path = tmp_path / "occlusion.json"
    machine = Machine()
    sim, _ = machine.start(path)
    c = sim.controller
    assert c.handle({"cmd": "configure", "limb": "arm", "occlusion_limit_s": 60})["ok"]
    hold(sim, 70.0)
    assert c.fault is not None and c.fault.value == "OCCLUSION_TIME"
    sim.run(10.0)  # venting, then some rest
    owed = c.reperfusion_remaining_s()
    assert owed is not None and 150.0 < owed < 175.0
    machine.stop(sim, down_s=30.0)
    again, _ = machine.start(path)  # same boot: the 30 s off count as rest
    refused = again.controller.handle({"cmd": "inflate", "target_mmHg": 120})
    assert not refused["ok"] and "reperfusion lockout" in refused["error"]
    assert again.controller.status()["reperfusion_lockout_s"] == pytest.approx(owed - 30.3, abs=1)
    owed = again.controller.reperfusion_remaining_s()
    rebooted = Machine("boot-b")
    rebooted.offset_s = 5.0
    machine.stop(again, down_s=0.0)
    after, _ = rebooted.start(path)  # another boot: the time it was off counts for nothing
    # (Rest since the last record is lost too: that one was written when `again` started.)
    assert after.controller.reperfusion_remaining_s() == pytest.approx(owed - 0.3, abs=0.5)
    after.run(owed)
    assert after.controller.reperfusion_remaining_s() is None
    assert after.controller.handle({"cmd": "inflate", "target_mmHg": 120})["ok"]


def test_a_card_that_stops_taking_writes_alarms_and_refuses_new_inflations(
    tmp_path: Path, caplog, monkeypatch
) -> None:
    """The data partition gone read-only (errors=remount-ro) mid-exercise: a restart would
    resume from an old clock, so the clinician is told, the exercise may finish, nothing new
    inflates; once the card takes writes again, all is as before."""
    failing = [False]
    real_write = occlusion_record.write_atomically

    def write(path: Path, data: str, mode: int) -> None:
        if failing[0]:
            raise OSError(errno.EROFS, "Read-only file system")
        real_write(path, data, mode)

    monkeypatch.setattr(occlusion_record, "write_atomically", write)
    machine = Machine()
    sim, record = machine.start(tmp_path / "occlusion.json")
    c = sim.controller
    hold(sim, 3.0)
    failing[0] = True
    sim.run(STALE_S - 1.0)
    assert not c.alarms.is_active("OCCLUSION_RECORD")
    sim.run(3.0)
    assert c.alarms.is_active("OCCLUSION_RECORD") and c.state == State.HOLDING
    refused = c.handle({"cmd": "set_target", "target_mmHg": 110})
    assert refused["ok"]  # the exercise under way goes on
    refused = c.handle({"cmd": "inflate", "target_mmHg": 120})
    assert not refused["ok"] and "cannot be saved" in refused["error"]
    failures = [r for r in caplog.records if "occlusion record not written" in r.message]
    assert len(failures) == 1  # once per kind of failure, not every 5 s
    failing[0] = False
    sim.run(PERIOD_S + 0.5)
    assert not c.alarms.is_active("OCCLUSION_RECORD")
    assert json.loads(record.path.read_text())["occlusion_s"] > 10.0
    assert c.handle({"cmd": "inflate", "target_mmHg": 120})["ok"]


def test_a_sessions_stricter_limit_holds_after_a_restart(tmp_path: Path) -> None:
    """A 60 s limit and a 600 s rest configured, 40 s held, 30 s rested, restarted: the next
    inflation faults at 60 s in all, though a restarted controller's default limit is 600 s."""
    path = tmp_path / "occlusion.json"
    machine = Machine()
    sim, _ = machine.start(path)
    limits = {"occlusion_limit_s": 60, "reperfusion_s": 600}
    assert sim.controller.handle({"cmd": "configure", "limb": "arm", **limits})["ok"]
    hold(sim, 30.0)
    assert sim.controller.handle({"cmd": "deflate"})["ok"]
    sim.run(30.0)
    held = sim.controller.occlusion.occlusion_s
    assert 30.0 < held < 45.0
    machine.stop(sim, down_s=0.0)
    again, _ = machine.start(path)
    c = again.controller
    assert c.status()["occlusion_limit_s"] == 60.0
    assert c.occlusion.occlusion_s == pytest.approx(held, abs=0.01)
    assert c.handle({"cmd": "inflate", "target_mmHg": 120})["ok"]
    assert again.run_until(lambda: c.state == State.FAULT, 60.0 - held + 2.0)
    assert c.fault.value == "OCCLUSION_TIME"
    assert 600.0 - 5.0 < c.reperfusion_remaining_s() <= 600.0


def test_the_writer_thread_writes_the_last_snapshot_before_it_stops(tmp_path: Path) -> None:
    path = tmp_path / "occlusion.json"
    record = OcclusionRecord(path, BootClock("boot-a", lambda: 50.0))
    record.start()
    for n in range(1, 40):
        record.note(n * 6.0, OcclusionClock(occlusion_s=n * 6.0), True, **LIMITS)
    record.close()
    assert json.loads(path.read_text())["occlusion_s"] == 39 * 6.0
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_writer_thread_retries_a_failing_card_without_new_snapshots(tmp_path: Path) -> None:
    path = tmp_path / "later" / "occlusion.json"
    record = OcclusionRecord(path, BootClock("boot-a", lambda: 50.0))
    record.start()
    try:
        record.note(0.0, OcclusionClock(), False, **LIMITS)  # idle: no further notes come
        deadline = time.monotonic() + 5
        while record._failed is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert record.stale(STALE_S + 1.0)
        path.parent.mkdir()
        # The file is renamed into place before the record notes it written.
        while not (path.exists() and not record.stale(STALE_S + 1.0)):
            assert time.monotonic() < deadline, "never retried"
            time.sleep(0.05)
    finally:
        record.close()


def failing_card(monkeypatch, gate: threading.Semaphore | None = None) -> list[bool]:
    """write_atomically that fails while the flag is set (each write first takes `gate`)."""
    failing = [False]
    real_write = occlusion_record.write_atomically

    def write(path: Path, data: str, mode: int) -> None:
        if gate is not None:
            assert gate.acquire(timeout=5.0)
        if failing[0]:
            raise OSError(errno.EROFS, "Read-only file system")
        real_write(path, data, mode)

    monkeypatch.setattr(occlusion_record, "write_atomically", write)
    return failing


def test_a_card_that_dies_while_idle_is_noticed_before_the_next_exercise(
    tmp_path: Path, monkeypatch
) -> None:
    failing = failing_card(monkeypatch)
    record = OcclusionRecord(tmp_path / "occlusion.json", BootClock("boot-a", lambda: 50.0))
    idle = OcclusionClock()
    record.note(0.0, idle, False, **LIMITS)
    assert record.writes == 1
    failing[0] = True
    for t in range(1, int(IDLE_PERIOD_S + STALE_S) + 2):
        record.note(float(t), idle, False, **LIMITS)
    assert record.stale(IDLE_PERIOD_S + STALE_S + 1.0)
    failing[0] = False
    record.note(IDLE_PERIOD_S + STALE_S + 3.0, idle, False, **LIMITS)  # retried, unchanged
    assert record.writes == 2 and not record.stale(IDLE_PERIOD_S + STALE_S + 3.0)


def test_how_far_behind_the_card_is_runs_from_the_first_snapshot_it_has_not_taken(
    tmp_path: Path, monkeypatch
) -> None:
    """A slow card: while the snapshot of 0 s is being written, one of 5 s is replaced by one
    of 9 s. Once the first is on the card, the card is still behind from 5 s, not from 9 s."""
    gate = threading.Semaphore(0)
    failing_card(monkeypatch, gate)
    record = OcclusionRecord(tmp_path / "occlusion.json", BootClock("boot-a", lambda: 50.0))
    record.start()

    def written(n: int) -> None:
        gate.release()
        deadline = time.monotonic() + 5
        while record.writes < n:
            assert time.monotonic() < deadline
            time.sleep(0.01)

    try:
        record.note(0.0, OcclusionClock(occlusion_s=1.0), True, **LIMITS)
        time.sleep(0.05)  # the writer has taken it and waits on the card
        record.note(5.0, OcclusionClock(occlusion_s=6.0), True, **LIMITS)
        record.note(9.0, OcclusionClock(occlusion_s=9.0, deflated_s=0.1), False, **LIMITS)
        written(1)
        assert record.stale(5.0 + STALE_S + 0.5) and not record.stale(5.0 + STALE_S - 0.5)
        written(2)
        assert not record.stale(100.0)
        assert json.loads(record.path.read_text())["occluded"] is False
    finally:
        gate.release()
        record.close()


def test_a_symlink_planted_in_the_data_directory_is_never_written_through(tmp_path: Path) -> None:
    """The data directory is shared with the web's group: a link planted under the name the
    writer used for its temporary file made it truncate and chmod whatever it pointed at."""
    victim = tmp_path / "calibration.json"
    victim.write_text('{"zero_mmHg": 1.2}')
    victim.chmod(0o600)
    for guess in (f".occlusion.json.{os.getpid()}.tmp", ".occlusion.json.tmp"):
        (tmp_path / guess).symlink_to(victim)
    write_atomically(tmp_path / "occlusion.json", '{"version": 1}', mode=0o640)
    assert victim.read_text() == '{"zero_mmHg": 1.2}' and victim.stat().st_mode & 0o777 == 0o600
    written = tmp_path / "occlusion.json"
    assert not written.is_symlink() and written.stat().st_mode & 0o777 == 0o640


# ---- the controller process -----------------------------------------------------------------------
def test_the_controller_process_remembers_occlusion_after_it_is_killed(tmp_path: Path) -> None:
    """`bfr controller` killed with SIGKILL mid-hold (no clean-up of its own) and started again
    reports the occlusion the limb had, plus the time it was down."""
    path = str(tmp_path / "controller.sock")
    technician = str(tmp_path / "controller.technician.sock")
    command = [sys.executable, "-m", "appliance", "controller", "--sim", "--socket", path]
    command += ["--data-dir", str(tmp_path)]

    def started() -> tuple[subprocess.Popen, ControllerClient]:
        child = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        client = ControllerClient(technician, timeout_s=1.0)
        deadline = time.monotonic() + 30
        while True:
            assert child.poll() is None and time.monotonic() < deadline, "did not start"
            reply = client.request({"cmd": "status"})  # unreachable: ok false
            if reply["ok"] and reply["status"]["state"] == "IDLE":
                return child, client
            time.sleep(0.1)

    child, client = started()
    try:
        assert client.request({"cmd": "configure", "limb": "arm"})["ok"]
        assert client.request({"cmd": "inflate", "target_mmHg": 100})["ok"]
        inflated_at = time.monotonic()
        deadline = time.monotonic() + 30
        while client.request({"cmd": "heartbeat"})["status"]["occlusion_s"] < 6.0:
            assert time.monotonic() < deadline, "never occluded"
            time.sleep(0.2)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        client.close()
    child, client = started()  # over the sockets the killed one left behind
    try:
        status = client.request({"cmd": "status"})["status"]
        assert 6.0 <= status["occlusion_s"] <= time.monotonic() - inflated_at
        deadline = time.monotonic() + 5
        while json.loads((tmp_path / "occlusion.json").read_text())["occluded"]:
            assert time.monotonic() < deadline, "the new process never rewrote the record"
            time.sleep(0.1)
    finally:
        child.terminate()
        child.wait(10)
        client.close()


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGUSR1])
def test_a_stray_signal_stops_the_controller_as_sigterm_does(tmp_path: Path, signum: int) -> None:
    """Not only SIGTERM: a signal that ends a process by default deflates, writes the record,
    and removes the sockets on the way out (before, SIGHUP killed it where it stood)."""
    path = tmp_path / "controller.sock"
    command = [sys.executable, "-m", "appliance", "controller", "--sim", "--socket", str(path)]
    child = subprocess.Popen([*command, "--data-dir", str(tmp_path)], stderr=subprocess.DEVNULL)
    client = ControllerClient(str(tmp_path / "controller.technician.sock"), timeout_s=1.0)
    try:
        deadline = time.monotonic() + 30
        # Serving comes before the first reading, and occlusion is recorded from readings: a
        # signal in between leaves nothing to record (and nothing is known to record).
        while client.request({"cmd": "status"}).get("status", {}).get("mmHg") is None:
            assert child.poll() is None and time.monotonic() < deadline, "did not start"
            time.sleep(0.1)
        child.send_signal(signum)
        assert child.wait(10) == 0
    finally:
        client.close()
        if child.poll() is None:
            child.kill()
    assert not path.exists() and not (tmp_path / "controller.technician.sock").exists()
    assert json.loads((tmp_path / "occlusion.json").read_text())["occluded"] is False


def test_a_reboots_unknown_occlusion_covers_the_record_age_and_the_hardware_watchdog() -> None:
    """A hung kernel may hold the valve shut until bcm2835_wdt resets the SoC: that time, and the
    record's own age, are added to an occluded record after a reboot."""
    conf = (Path(__file__).resolve().parent.parent / "systemd" / "watchdog.conf").read_text()
    watchdog_s = float(re.search(r"^RuntimeWatchdogSec=(\d+)s$", conf, re.MULTILINE).group(1))
    assert PERIOD_S + watchdog_s <= UNKNOWN_OCCLUDED_S
