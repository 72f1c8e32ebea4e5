"""A simulated patient and clinician who follow the runner's prompts, for `bfr sim` and tests.

They listen to the event stream like a screen would and act a little later, through the same
methods a touchscreen calls. The patient's muscle acts on the plant: each `up` beat starts a
contraction under the cuff, so the controller holds against real rep spikes.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from appliance.sessions.events import SessionEvent
from appliance.sessions.runner import SessionError, SessionRunner

log = logging.getLogger(__name__)

Rating = Callable[[int, int], int | None]  # (exercise_index, set_index) -> 0-10 or None


class _Actor:
    """Actions queued by events, done on `tick(now)` once due (never inside a listener)."""

    def __init__(self, runner: SessionRunner) -> None:
        self.runner = runner
        self._due: list[tuple[float, str, Callable[[], None]]] = []
        self.refused: list[tuple[str, str]] = []
        runner.subscribe(self._heard)

    def _later(self, t: float, what: str, action: Callable[[], None]) -> None:
        self._due.append((t, what, action))

    def tick(self, now: float) -> None:
        due = [item for item in self._due if item[0] <= now + 1e-6]
        self._due = [item for item in self._due if item[0] > now + 1e-6]
        for _, what, action in due:
            try:
                action()
            except SessionError as exc:
                # The session moved on (an alarm, an abort) before this action came.
                self.refused.append((what, str(exc)))

    def _heard(self, event: SessionEvent) -> None:
        raise NotImplementedError


class SimulatedPatient(_Actor):
    """Does the reps to the beat and rates every set a few seconds after it ends."""

    def __init__(
        self,
        runner: SessionRunner,
        plant: Any,
        *,
        seed: int = 0,
        rate_after_s: float = 4.0,
        rpe: Rating | None = None,
        pain: Rating | None = None,
        strength: float = 1.0,
        rates: bool = True,
    ) -> None:
        super().__init__(runner)
        self.plant = plant
        self.rng = random.Random(f"sim-patient:{seed}")
        self.rate_after_s = rate_after_s
        self.rpe = rpe or (lambda ex, s: min(10, 4 + s + ex))
        self.pain = pain or (lambda ex, s: min(10, 1 + s))
        self.strength = strength
        self.rates = rates
        self.reps_done = 0
        self._cadence_s = 2.0

    def _heard(self, event: SessionEvent) -> None:
        if event.name == "set.start":
            self._cadence_s = float(event.detail.get("cadence_s") or 2.0)
        elif event.name == "rep.up":
            contract = getattr(self.plant, "contract", None)
            if contract is not None:
                # Lift and lower inside the beat, a little uneven like a person.
                duration = 0.75 * self._cadence_s * self.rng.uniform(0.9, 1.1)
                contract(duration_s=duration, strength=self.strength * self.rng.uniform(0.9, 1.1))
            self.reps_done += 1
        elif event.name == "set.done" and self.rates:
            ex, s = int(event.detail["exercise_index"]), int(event.detail["set_index"])
            rpe, pain = self.rpe(ex, s), self.pain(ex, s)
            self._later(event.t + self.rate_after_s, "rate", lambda: self.runner.rate(rpe, pain))


class SimulatedClinician(_Actor):
    """Confirms the cuff, accepts flagged LOP pairs, and takes a Doppler LOP when asked.

    `doppler_lop` stands for a handheld Doppler at the table; without it, a LOP the controller
    cannot measure ends the session ("aborted"), as a clinician without a Doppler would.
    """

    def __init__(
        self,
        runner: SessionRunner,
        *,
        name: str = "sim clinician",
        cuff_after_s: float = 5.0,
        decide_after_s: float = 5.0,
        doppler_lop: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(runner)
        self.name = name
        self.cuff_after_s = cuff_after_s
        self.decide_after_s = decide_after_s
        self.doppler_lop = doppler_lop

    def _heard(self, event: SessionEvent) -> None:
        if event.kind != "prompt":
            return
        key = event.name.removeprefix("prompt.")
        if key == "place_cuff":
            self._later(event.t + self.cuff_after_s, "confirm_cuff", self.runner.confirm_cuff)
        elif key == "lop_spread":
            self._later(event.t + self.decide_after_s, "accept_lop", self.runner.accept_lop)
        elif key == "lop_needed":
            self._later(event.t + self.decide_after_s, "lop_needed", self._lop_needed)

    def _lop_needed(self) -> None:
        if self.doppler_lop is None:
            self.runner.abort(self.name, "LOP could not be measured and no Doppler is at hand")
            return
        first, second = self.doppler_lop(), self.doppler_lop()
        self.runner.enter_lop(round(first), round(second), method="doppler", by=self.name)
