"""Clinic records for tests: a settable wall clock and a patient with a session under way."""

from __future__ import annotations

from pathlib import Path

from appliance.store import Store, records
from appliance.technician.calibration import CalibrationPoint, new_record, write_record
from appliance.technician.selftest import CHECKS
from appliance.technician.selftest_results import record_selftest


class Wall:
    """A settable wall clock, so records get predictable times."""

    def __init__(self, t: float = 1_750_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def start_running_session(store: Store, patient_id: int, at: float | None = None) -> None:
    """A cleared arm screening and a session started on it and not ended."""
    screening = records.insert_screening(
        store,
        patient_id=patient_id,
        kind="initial",
        limb="arm",
        side="left",
        answers={},
        score=0,
        outcome="cleared",
        reasons=[],
        screened_by="dr",
    )
    records.start_session(
        store,
        patient_id=patient_id,
        screening_id=screening.id,
        protocol={"name": "standard", "version": 1},
        limb="arm",
        side="left",
        posture="seated",
        cuff="standard",
        clinician="dr",
        at=at,
    )


def make_ready(data_dir: Path, now: float) -> None:
    """A calibration a day old and a self-test an hour old that passed every check there is."""
    data_dir.mkdir(parents=True, exist_ok=True)
    points = [CalibrationPoint(0.0, 0.0), CalibrationPoint(200.0, 200.0)]
    write_record(data_dir, new_record(points, gauge_id="G-1", technician="tess", now=now - 86400))
    checks = [{"name": name, "status": "passed"} for name in CHECKS]
    record_selftest(data_dir, {"passed": True, "at_epoch": now - 3600, "checks": checks})
