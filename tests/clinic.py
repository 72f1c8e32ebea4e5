"""Clinic records for tests: a settable wall clock and a patient with a session under way."""

from __future__ import annotations

from appliance.store import Store, records


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
