"""A whole guided session on the simulated bench in simulated time: `bfr sim session` and tests.

The runner talks to the real controller through `Controller.handle` (the same messages as the
device's socket) and is the only heartbeat the controller gets, so a runner that stopped
ticking would be caught exactly as on the device. Wall time is the start's wall clock plus
simulated seconds, for every record and the trace alike.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import Any

from appliance import patients, screening
from appliance.screening import QUESTIONS
from appliance.sessions.patient_sim import SimulatedClinician, SimulatedPatient
from appliance.sessions.phases import Phase
from appliance.sessions.plan import SessionPlan
from appliance.sessions.runner import SessionRunner
from appliance.simulation import SimulatedAppliance
from appliance.store import Store, records

TICK_S = 0.1  # 10 Hz: the runner's pace, and the trace's rate
DOPPLER_SD_MMHG = 5.0  # a careful handheld Doppler reading (Masri 2016 reports 8-15 for devices)


class SimulatedSession:
    """The bench, the runner, a simulated patient and clinician, advanced together."""

    def __init__(
        self,
        store: Store,
        plan: SessionPlan,
        sim: SimulatedAppliance,
        *,
        seed: int = 0,
        wall0: float | None = None,
        link: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        patient: dict[str, Any] | None = None,
        clinician: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.sim = sim
        sim.ui_heartbeat = False  # the runner's heartbeat is the one that counts
        self.wall0 = time.time() if wall0 is None else wall0
        # As on the clinic's socket: a treatment pressure needs the patient's LOP configured.
        clinic = functools.partial(sim.controller.handle, therapy=True)
        self.runner = SessionRunner(store, link or clinic, plan, to_wall=self.to_wall)
        rng = random.Random(f"sim-doppler:{seed}")
        true_lop = getattr(sim.plant, "true_lop_mmHg", None)
        doppler = None
        if true_lop is not None:
            doppler = lambda: true_lop + rng.gauss(0.0, DOPPLER_SD_MMHG)  # noqa: E731
        self.patient = SimulatedPatient(self.runner, sim.plant, seed=seed, **(patient or {}))
        self.clinician = SimulatedClinician(
            self.runner, **({"doppler_lop": doppler} | (clinician or {}))
        )

    def to_wall(self, t: float) -> float:
        return self.wall0 + t

    @property
    def now(self) -> float:
        return self.sim.clock.now()

    def start(self) -> None:
        self.runner.start(self.now)

    def step(self, seconds: float = TICK_S) -> None:
        """Advance simulated time; tick the runner and the people every `TICK_S`."""
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.sim.run(min(TICK_S, end - self.now))
            now = self.now
            self.runner.tick(now)
            self.patient.tick(now)
            self.clinician.tick(now)

    def run_until(self, predicate: Callable[[], bool], max_s: float) -> bool:
        end = self.now + max_s
        while not predicate() and not self.runner.finished and self.now < end:
            self.step()
        return predicate()

    def run(self, max_s: float = 7200.0) -> dict[str, Any]:
        """Start if needed, run to the end (or `max_s`, then close: "aborted"); the summary."""
        with self.runner:
            if self.runner.phase == Phase.NOT_STARTED:
                self.start()
            self.run_until(lambda: self.runner.finished, max_s)
        self.sim.run(2.0)  # let the cuff empty behind the final deflate
        summary = self.runner.summary
        assert summary is not None
        return summary


def enroll_simulated_patient(
    store: Store, clinic_id: str, *, limb: str, side: str, at: float, by: str = "sim clinician"
) -> int:
    """The simulated patient's record and a fresh, cleared screening for this session."""
    patient = records.find_patient(store, clinic_id)
    if patient is None:
        patient = patients.register_patient(store, clinic_id, age_band="31-45", by=by, at=at)
    answers = {q.id: False for q in QUESTIONS}
    screening.record_screening(store, patient.id, answers, limb=limb, side=side, by=by, at=at)
    return patient.id
