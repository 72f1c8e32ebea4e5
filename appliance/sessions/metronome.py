"""The rep metronome of a counted set: an `up` beat at each rep's start, `down` half-way through."""

from __future__ import annotations

from dataclasses import dataclass

UP = "up"  # concentric half: lift
DOWN = "down"  # eccentric half: lower
_EPS = 1e-6  # ticks land on float sums of the step; a beat due "now" must not slip a tick


@dataclass(frozen=True)
class Beat:
    rep: int  # 1-based
    phase: str  # UP or DOWN
    t: float


class Metronome:
    """Beats for `reps` reps at `cadence_s` per rep, after a `lead_in_s` count-in.

    A pause freezes it; resuming restarts the unfinished rep after a new count-in, so the rep
    count only ever holds reps the patient finished to the beat.
    """

    def __init__(self, reps: int, cadence_s: float, start: float, lead_in_s: float = 0.0) -> None:
        if reps < 1 or cadence_s <= 0 or lead_in_s < 0:
            raise ValueError("a metronome needs reps >= 1, cadence_s > 0, lead_in_s >= 0")
        self.reps = reps
        self.cadence_s = cadence_s
        self.done = 0
        self._base_t = start + lead_in_s
        self._base_n = 0
        self._next = (1, UP)
        self._paused = False

    def beat_time(self, rep: int, phase: str) -> float:
        offset = 0.5 * self.cadence_s if phase == DOWN else 0.0
        return self._base_t + (rep - 1 - self._base_n) * self.cadence_s + offset

    def due(self, now: float) -> list[Beat]:
        """Beats that fell due up to `now` (in order), updating the count of finished reps."""
        if self._paused:
            return []
        beats = []
        rep, phase = self._next
        while rep <= self.reps and self.beat_time(rep, phase) <= now + _EPS:
            beats.append(Beat(rep, phase, self.beat_time(rep, phase)))
            rep, phase = (rep, DOWN) if phase == UP else (rep + 1, UP)
        self._next = (rep, phase)
        while self.done < self.reps and self.beat_time(self.done + 1, UP) + self.cadence_s <= (
            now + _EPS
        ):
            self.done += 1
        return beats

    @property
    def finished(self) -> bool:
        return self.done >= self.reps

    def current(self, now: float) -> tuple[int, str] | None:
        """The rep and half being done now; None during the count-in, a pause or after the set."""
        if self._paused or self.finished or now < self._base_t:
            return None
        rep = self.done + 1
        return rep, (DOWN if now >= self.beat_time(rep, DOWN) else UP)

    def lead_in_left(self, now: float) -> float:
        return max(0.0, self._base_t - now) if not self._paused else 0.0

    def pause(self) -> None:
        self._paused = True

    def resume(self, now: float, lead_in_s: float) -> None:
        self._paused = False
        self._base_n = self.done
        self._base_t = now + lead_in_s
        self._next = (self.done + 1, UP)
