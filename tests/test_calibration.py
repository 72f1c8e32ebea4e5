"""Calibration: least-squares maths, the stored record and its validity, the guided run against
the simulated cuff (applied live, audited), the drift check, and the session gate."""

from __future__ import annotations

import io
import json
import time
import tomllib
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.simulation import build_simulated
from appliance.store import Store, records
from appliance.store.audit import audit_trail
from appliance.technician import DeviceNotReady, require_valid_calibration
from appliance.technician.calibration import (
    VALID_DAYS,
    CalibrationPoint,
    calibration_state,
    fit_calibration,
    load_calibration,
    new_record,
    read_record,
    write_record,
)
from appliance.technician.calibration_run import (
    calibrate,
    check,
    scripted_gauge,
    simulated_gauge,
    typed_gauge,
)
from appliance.technician.errors import TechnicianError
from appliance.technician.link import SimLink
from appliance.technician.pressure_hold import HeldPressure
from appliance.technician.progress import Progress
from hardware.transducer import Calibration
from tests.clinic import start_running_session

NOW = 1_780_000_000.0
DAY = 86400.0


def _points(zero: float, span: float, refs=(0.0, 100.0, 200.0)) -> list[CalibrationPoint]:
    # reference = span * (nominal - zero)  =>  nominal = reference / span + zero
    return [CalibrationPoint(r / span + zero, r) for r in refs]


def _quiet() -> Progress:
    return Progress(io.StringIO())


# ---- maths --------------------------------------------------------------------------------


def test_the_fit_recovers_zero_and_span() -> None:
    cal = fit_calibration(_points(2.5, 1.04))
    assert cal.zero_mmHg == pytest.approx(2.5, abs=1e-9)
    assert cal.span == pytest.approx(1.04, abs=1e-9)


def test_the_fit_is_least_squares_over_three_points() -> None:
    points = _points(1.0, 0.98)
    points[1] = CalibrationPoint(points[1].nominal_mmHg, points[1].reference_mmHg + 1.5)
    record = new_record(points, gauge_id="G-1", technician="tess", now=NOW)
    residuals = record.residuals
    assert sum(residuals) == pytest.approx(0.0, abs=1e-9)  # least squares: residuals sum to 0
    assert max(abs(r) for r in residuals) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    ("points", "match"),
    [
        ([CalibrationPoint(0.0, 0.0)], "at least two"),
        ([CalibrationPoint(100.0, 100.0), CalibrationPoint(100.2, 101.0)], "differ"),
        (_points(0.0, 1.5), "span"),
        ([CalibrationPoint(0, 0), CalibrationPoint(100, 110), CalibrationPoint(200, 200)], "line"),
        ([CalibrationPoint(0, 0), CalibrationPoint(100, 1000)], "outside"),
    ],
)
def test_implausible_points_are_rejected_with_advice(points, match: str) -> None:
    with pytest.raises(TechnicianError, match=match) as info:
        fit_calibration(points)
    assert info.value.advice


# ---- record -------------------------------------------------------------------------------


def test_the_record_round_trips_through_toml(tmp_path: Path) -> None:
    record = new_record(_points(-1.25, 1.0125), gauge_id='DRUCK "7"', technician="tess", now=NOW)
    path = write_record(tmp_path, record)
    assert read_record(tmp_path) == record
    data = tomllib.loads(path.read_text())
    assert data["gauge_id"] == 'DRUCK "7"' and len(data["points"]) == 3
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    assert [p.name for p in tmp_path.iterdir()] == ["calibration.toml"]  # no temp file left
    assert load_calibration(tmp_path) == record.calibration


def test_validity_missing_valid_expired_damaged_and_clock(tmp_path: Path) -> None:
    assert calibration_state(tmp_path, NOW).state == "missing"
    with pytest.raises(DeviceNotReady, match="never been calibrated") as info:
        require_valid_calibration(tmp_path, NOW)
    assert "bfr calibrate" in info.value.advice
    write_record(tmp_path, new_record(_points(0, 1), gauge_id="G", technician="t", now=NOW))
    assert require_valid_calibration(tmp_path, NOW + 10 * DAY).gauge_id == "G"
    assert calibration_state(tmp_path, NOW + (VALID_DAYS - 1) * DAY).valid
    with pytest.raises(DeviceNotReady, match="expired"):
        require_valid_calibration(tmp_path, NOW + (VALID_DAYS + 1) * DAY)
    assert calibration_state(tmp_path, NOW - 3 * DAY).state == "clock"
    (tmp_path / "calibration.toml").write_text("zero_mmHg = 'x'\n")
    assert calibration_state(tmp_path, NOW).state == "damaged"
    assert load_calibration(tmp_path) is None
    with pytest.raises(DeviceNotReady, match="damaged"):
        require_valid_calibration(tmp_path, NOW)


# ---- against the simulated cuff -----------------------------------------------------------


def _sim() -> SimLink:
    link = SimLink(build_simulated(None, 0, procedures={}))
    link.wait(1.0)
    return link


def test_a_guided_run_fits_stores_audits_and_applies(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    link = _sim()
    # A gauge reading 3 % high with a 1 mmHg offset: the fit must find span ~1.03.
    readings: list[float] = []

    def gauge(index, held):
        readings.append(round(1.03 * held.true_mmHg + 1.0, 1))
        return readings[-1]

    report = calibrate(
        link,
        targets=[0, 100, 200],
        gauge=gauge,
        given=[],
        gauge_id="G-42",
        technician="tess",
        data_dir=tmp_path,
        progress=_quiet(),
    )
    cal = report["calibration"]
    assert cal["span"] == pytest.approx(1.03, abs=0.01)
    assert report["applied"] and report["stored"] == str(tmp_path / "calibration.toml")
    sensor = link.app.devices.sensor
    assert sensor.calibration == Calibration(cal["zero_mmHg"], cal["span"])
    assert link.status()["state"] == "IDLE"  # deflated at the end
    with Store.open(tmp_path) as store:
        (entry,) = audit_trail(store, action="technician.calibration")
    assert entry.actor == "tess" and entry.subject == "gauge:G-42"
    # The drift check against the same gauge now agrees within 3 mmHg...
    ok = check(
        link,
        targets=[0, 150],
        gauge=gauge,
        technician="tess",
        gauge_id="G-42",
        data_dir=tmp_path,
        progress=_quiet(),
    )
    assert ok["passed"], ok
    # ...and a gauge 10 mmHg off does not.
    off = check(
        link,
        targets=[150],
        gauge=lambda i, held: held.true_mmHg * 1.03 + 11.0,
        technician="tess",
        gauge_id="G-42",
        data_dir=tmp_path,
        progress=_quiet(),
    )
    link.close()
    assert not off["passed"] and off["points"][0]["drift_mmHg"] < -3


def test_a_running_session_blocks_calibration(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        patient = records.insert_patient(store, clinic_id="P1")
        start_running_session(store, patient.id, at=time.time() - 60)
    with pytest.raises(TechnicianError, match="session 1") as info:
        calibrate(
            None,
            targets=[],
            gauge=None,
            given=_points(0, 1),
            gauge_id="G",
            technician="t",
            data_dir=tmp_path,
            progress=_quiet(),
        )
    assert "wait until it has ended" in info.value.advice


def test_cli_scripted_run_in_simulation(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["calibrate", "--sim", "--points", "0,120", "--gauge-readings", "0.5,124"]
    assert main([*args, "--gauge-id", "G-9", "--data-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["calibration"]["gauge_id"] == "G-9"
    assert read_record(tmp_path).calibration.span == pytest.approx(report["calibration"]["span"])
    # Given points: no cuff involved, stored and applied the same way.
    assert main(["calibrate", "--sim", "--point", "0.2=0", "--point", "100.9=100", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["calibration"]["zero_mmHg"] == pytest.approx(0.2)


def test_cli_rejects_mismatched_readings(capsys: pytest.CaptureFixture) -> None:
    assert main(["calibrate", "--sim", "--points", "0,100", "--gauge-readings", "0"]) == 2
    err = capsys.readouterr().err
    assert "1 gauge readings for 2 points" in err and "next:" in err


def test_simulated_gauge_reads_the_true_pressure() -> None:
    link = _sim()
    try:
        report = calibrate(
            link,
            targets=[0, 100],
            gauge=simulated_gauge(_quiet()),
            given=[],
            gauge_id="sim",
            technician="t",
            data_dir=None,
            progress=_quiet(),
        )
    finally:
        link.close()
    assert report["stored"] is None
    assert report["calibration"]["span"] == pytest.approx(1.0, abs=0.01)
    assert scripted_gauge([1.0, 2.0])(1, None) == 2.0


def test_typed_gauge_asks_again_until_a_number_and_q_stops(capsys) -> None:
    link = _sim()
    answers = iter(["abc", "999", "101,5"])
    read = typed_gauge(link, ask=lambda prompt: next(answers))
    held = HeldPressure(100.0, 99.0, 99.5, 0.5, None)
    try:
        assert read(0, held) == 101.5
        assert "not a number" in capsys.readouterr().out
        with pytest.raises(TechnicianError, match="stopped by the technician"):
            typed_gauge(link, ask=lambda prompt: "q")(0, held)
    finally:
        link.close()
