"""`bfr status` and `bfr logs`: one screen from fakes of systemd and the controller, and the
journal merged with the store's session events, alarms and audit entries."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.store import Store, records
from appliance.store.audit import record_audit
from appliance.technician.calibration import CalibrationPoint, new_record, write_record
from appliance.technician.errors import TechnicianError
from appliance.technician.logs import journal_entries, parse_since, store_entries
from appliance.technician.release_tree import ReleaseTree
from appliance.technician.selftest import CHECKS
from appliance.technician.selftest_results import record_selftest
from appliance.technician.status import gather_status, render

NOW = 1_780_000_000.0


class FakeSystemctl:
    def available(self) -> bool:
        return True

    def show(self, unit: str, properties) -> dict[str, str]:
        return {"ActiveState": "active", "SubState": "running", "NRestarts": "2"}


def _tree(tmp_path: Path) -> ReleaseTree:
    tree = ReleaseTree(tmp_path / "opt")
    for version in ("0.1.0", "0.2.0"):
        (tree.releases / version).mkdir(parents=True)
    tree.switch("0.2.0", previous="0.1.0")
    return tree


def _session_with_history(data_dir: Path) -> int:
    with Store.open(data_dir, wall=lambda: NOW) as store:
        patient = records.insert_patient(store, clinic_id="P1")
        screening = records.insert_screening(
            store,
            patient_id=patient.id,
            kind="initial",
            limb="leg",
            side="right",
            answers={},
            score=0,
            outcome="cleared",
            reasons=[],
            screened_by="dr",
        )
        session = records.start_session(
            store,
            patient_id=patient.id,
            screening_id=screening.id,
            protocol={"name": "standard", "version": 1},
            limb="leg",
            side="right",
            posture="seated",
            cuff="standard",
            clinician="dr",
            at=NOW,
        )
        records.record_event(store, session_id=session.id, kind="set", name="set.start", at=NOW + 5)
        records.record_alarm(
            store, code="leak", message="The cuff is leaking", session_id=session.id, at=NOW + 9
        )
        records.end_session(store, session.id, outcome="completed", at=NOW + 600)
        record_audit(
            store, actor="dr", action="session.note", subject=f"session:{session.id}", at=NOW + 700
        )
        return session.id


def test_status_gathers_one_screen(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _session_with_history(data)
    points = [CalibrationPoint(0.0, 0.0), CalibrationPoint(100.0, 101.0)]
    write_record(data, new_record(points, gauge_id="G-1", technician="t", now=NOW - 30 * 86400))
    every = [{"name": name, "status": "passed"} for name in CHECKS]
    record_selftest(data, {"passed": True, "at": "2026-05-01T10:00:00Z", "checks": every})
    uptime = tmp_path / "uptime"
    uptime.write_text("93784.5 1000.0\n")
    tree = _tree(tmp_path)
    status = gather_status(
        tree=tree,
        data_dir=data,
        controller=lambda: {"state": "IDLE", "fault": None, "mmHg": 0.2, "alarms": []},
        systemctl=FakeSystemctl(),
        now=NOW,
        uptime_file=uptime,
    )
    assert status["software"]["current"] == "0.2.0"
    assert status["software"]["previous"] == "0.1.0"
    assert status["controller"]["state"] == "IDLE"
    assert status["recent_alarms"][0]["code"] == "leak"
    assert status["calibration"]["state"] == "valid"
    assert round(status["calibration"]["age_days"]) == 30
    assert status["selftest"]["passed"] is True
    assert status["data_partition"]["free_bytes"] > 0
    screen = render(status)
    assert "releases/0.2.0; previous 0.1.0" in screen
    assert "1 d 2 h 3 min" in screen
    assert "bfr-controller active/running (2 restarts)" in screen
    assert "calibration VALID" in screen and "self-test   PASSED" in screen
    assert status["treatment"] == [] and "treatment   allowed" in screen
    json.dumps(status)  # --json must be able to print it
    record_selftest(data, {"passed": True, "at": "2026-05-01T10:00:00Z", "checks": every[:5]})
    stale = gather_status(
        tree=tree, data_dir=data, controller=lambda: None, systemctl=None, now=NOW
    )
    assert stale["selftest"]["missing"] == ["pump_low_duty", "pump_start", "stop_button", "buzzer"]
    screen = render(stale)
    assert (
        "self-test   OUT OF DATE: lacks pump_low_duty, pump_start, stop_button, buzzer; "
        "run `bfr selftest`" in screen
    )
    assert "treatment   REFUSED" in screen
    assert (
        "predates this software's pump_low_duty, pump_start, stop_button, buzzer checks" in screen
    )


def test_status_says_not_running_and_missing(tmp_path: Path, capsys) -> None:
    status = gather_status(
        tree=ReleaseTree(tmp_path / "none"),
        data_dir=tmp_path,
        controller=lambda: None,
        systemctl=None,
        now=NOW,
    )
    screen = render(status)
    assert "controller  not running" in screen
    assert "calibration MISSING" in screen and "self-test   never run" in screen
    assert [p["message"] for p in status["treatment"]] == [
        "the transducer has never been calibrated",
        "the appliance has not been self-tested",
    ]

    def no_permission() -> None:
        raise TechnicianError("no permission on /run/bfr/technician.sock", "run `sudo bfr status`")

    status["controller"] = gather_status(
        tree=ReleaseTree(tmp_path / "none"),
        data_dir=tmp_path,
        controller=no_permission,
        systemctl=None,
        now=NOW,
    )["controller"]
    assert status["controller"]["state"] == "not reachable"
    assert "controller  no permission on /run/bfr/technician.sock - run `sudo bfr status`" in (
        render(status)
    )
    code = main(["status", "--json", "--data-dir", str(tmp_path), "--socket", str(tmp_path / "s")])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["controller"]["state"] == "not running"


def test_status_judges_treatment_under_the_clinics_self_test_age_limit(
    tmp_path: Path, capsys
) -> None:
    """A site whose config asks for a self-test every day sees the refusal the controller and
    the web server would give, not just "passed"."""
    import time

    from tests.clinic import make_ready

    make_ready(tmp_path, time.time() - 2 * 3600.0)  # self-tested three hours ago
    argv = ["status", "--json", "--data-dir", str(tmp_path), "--socket", str(tmp_path / "s")]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["treatment"] == []
    config = tmp_path / "bfr.toml"
    config.write_text("[readiness]\nselftest_max_age_h = 2\n")
    assert main([*argv, "--config", str(config)]) == 0
    (problem,) = json.loads(capsys.readouterr().out)["treatment"]
    assert problem["message"] == "the last self-test is too old"


def test_since_accepts_relative_days_and_dates() -> None:
    assert parse_since("2h", NOW) == NOW - 7200
    assert parse_since("-30m", NOW) == NOW - 1800
    assert parse_since("today", NOW) <= NOW
    assert parse_since("2026-05-01 14:00", NOW) > 0
    with pytest.raises(TechnicianError, match="not a time"):
        parse_since("last tuesday", NOW)


def test_journal_entries_come_from_journalctl_json() -> None:
    calls = []
    lines = [
        {
            "__REALTIME_TIMESTAMP": str(int(NOW * 1e6)),
            "PRIORITY": "3",
            "_SYSTEMD_UNIT": "bfr-controller.service",
            "MESSAGE": "sensor not answering",
        },
        {"__REALTIME_TIMESTAMP": str(int(NOW * 1e6) + 1), "MESSAGE": [104, 105]},
    ]

    def run(argv, **kwargs):
        calls.append(argv)
        out = "\n".join(json.dumps(x) for x in lines) + "\nnot json\n"
        return subprocess.CompletedProcess(argv, 0, out, "")

    entries, note = journal_entries(
        ("bfr-controller.service",), since=NOW - 60, until=None, level="warning", run=run
    )
    assert note is None
    assert calls[0][:3] == ["journalctl", "-o", "json"]
    assert calls[0][-2:] == ["-u", "bfr-controller.service"] and "warning" in calls[0]
    assert entries[0].level == "err" and entries[0].origin == "bfr-controller"
    assert entries[1].message == "hi"


def test_store_entries_filter_by_session_and_level(tmp_path: Path) -> None:
    session = _session_with_history(tmp_path)
    entries = store_entries(tmp_path, since=None, session_id=session, max_priority=6)
    assert [e.source for e in entries] == ["event", "alarm", "audit"]
    assert all(e.session_id == session for e in entries)
    warnings = store_entries(tmp_path, since=None, session_id=None, max_priority=4)
    assert [e.source for e in warnings] == ["alarm"]
    assert store_entries(tmp_path, since=NOW + 10, session_id=None, max_priority=6)[0].source == (
        "audit"
    )


def test_logs_cli_prints_json_lines(tmp_path: Path, capsys) -> None:
    session = _session_with_history(tmp_path)
    code = main(["logs", "--data-dir", str(tmp_path), "--session", str(session), "--json"])
    assert code == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    store = [e for e in out if e["source"] != "journal"]
    assert [e["source"] for e in store] == ["event", "alarm", "audit"]
    assert main(["logs", "--data-dir", str(tmp_path), "--session", "99"]) == 2
    assert "no session 99" in capsys.readouterr().err
