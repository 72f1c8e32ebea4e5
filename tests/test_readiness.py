"""May the appliance inflate a cuff on a limb: the records, the clinic's policy, a session under way."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.store import DB_NAME, Store, records
from appliance.technician.calibration import (
    VALID_DAYS,
    CalibrationPoint,
    new_record,
    write_record,
)
from appliance.technician.preflight import SESSION_STALE_S
from appliance.technician.readiness import readiness_problems, treatment_problems
from appliance.technician.selftest import CHECKS
from appliance.technician.selftest_results import record_selftest
from tests.clinic import start_running_session

DAY = 86400.0
T0 = 1_750_000_000.0  # the session starts here


def calibrate(data_dir: Path, at: float) -> None:
    points = [CalibrationPoint(0.0, 0.0), CalibrationPoint(200.0, 200.0)]
    write_record(data_dir, new_record(points, gauge_id="G-1", technician="tess", now=at))


def selftest(data_dir: Path, at: float, passed: bool = True) -> None:
    status = "passed" if passed else "failed"
    checks = [{"name": name, "status": status} for name in CHECKS]
    record_selftest(data_dir, {"passed": passed, "at_epoch": at, "checks": checks})


def open_session(data_dir: Path, at: float) -> int:
    with Store.open(data_dir) as store:
        number = len(records.list_sessions(store)) + 1
        patient = records.insert_patient(store, clinic_id=f"P{number}", at=at)
        start_running_session(store, patient.id, at=at)
        return max(s.id for s in records.list_sessions(store, patient_id=patient.id))


def messages(problems: list) -> str:
    return "; ".join(map(str, problems))


@pytest.fixture
def expiring(tmp_path: Path) -> Path:
    """A calibration that runs out ten minutes into a session, and a fresh self-test."""
    calibrate(tmp_path, T0 - VALID_DAYS * DAY + 600.0)
    selftest(tmp_path, T0 - 3600.0)
    return tmp_path


def test_a_calibration_that_runs_out_between_two_exercises_lets_the_session_finish(
    expiring: Path,
) -> None:
    later = T0 + 1800.0
    open_session(expiring, T0)
    assert "expired" in messages(readiness_problems(expiring, later))  # what the console shows
    assert treatment_problems(expiring, later) == []  # the next exercise may inflate


def test_no_session_no_grace(expiring: Path) -> None:
    assert "expired" in messages(treatment_problems(expiring, T0 + 1800.0))


def test_a_session_started_after_the_expiry_gets_no_grace(expiring: Path) -> None:
    open_session(expiring, T0 + 1200.0)  # ten minutes after the calibration ran out
    assert "expired" in messages(treatment_problems(expiring, T0 + 1800.0))


def test_an_ended_session_or_a_crashs_leftover_gives_no_grace(expiring: Path) -> None:
    session = open_session(expiring, T0)
    with Store.open(expiring) as store:
        records.end_session(store, session, outcome="completed", at=T0 + 1500.0)
    assert "expired" in messages(treatment_problems(expiring, T0 + 1800.0))
    open_session(expiring, T0)  # never ended: a crash's leftover once it is hours old
    assert treatment_problems(expiring, T0 + 1800.0) == []
    assert "expired" in messages(treatment_problems(expiring, T0 + SESSION_STALE_S + 1.0))


def test_a_self_test_that_fails_during_a_session_refuses_the_next_inflation(
    tmp_path: Path,
) -> None:
    calibrate(tmp_path, T0 - DAY)
    selftest(tmp_path, T0 - 3600.0)
    open_session(tmp_path, T0)
    assert treatment_problems(tmp_path, T0 + 600.0) == []
    selftest(tmp_path, T0 + 900.0, passed=False)
    assert "the last self-test failed" in messages(treatment_problems(tmp_path, T0 + 1200.0))


def test_the_clinics_self_test_age_limit_runs_out_during_a_session(tmp_path: Path) -> None:
    calibrate(tmp_path, T0 - DAY)
    selftest(tmp_path, T0 - 23.5 * 3600.0)  # half an hour left of a one-day limit
    later = T0 + 3600.0
    assert "too old" in messages(treatment_problems(tmp_path, later, selftest_max_age_s=DAY))
    assert treatment_problems(tmp_path, later) == []  # without the clinic's limit: no age
    open_session(tmp_path, T0)
    assert treatment_problems(tmp_path, later, selftest_max_age_s=DAY) == []
    # Started with the self-test already too old: refused whatever is under way.
    assert "too old" in messages(
        treatment_problems(tmp_path, later, selftest_max_age_s=23.0 * 3600.0)
    )


def test_an_unreadable_session_database_refuses(expiring: Path) -> None:
    open_session(expiring, T0)
    (expiring / DB_NAME).write_bytes(b"not a database at all" * 100)
    assert "expired" in messages(treatment_problems(expiring, T0 + 1800.0))
