"""The phases of a guided session and the snapshot of the runner that a screen renders."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    NOT_STARTED = "not_started"
    SCREENING = "screening"  # blocked: waits for a clinician's confirmation or override
    CUFF_PLACEMENT = "cuff_placement"  # waits for confirm_cuff()
    LOP_MEASURING = "lop_measuring"  # the controller measures LOP
    LOP_REST = "lop_rest"  # a minute between two readings
    LOP_REVIEW = "lop_review"  # readings disagree or failed: waits for the clinician
    INFLATING = "inflating"
    SET = "set"  # reps to the metronome, or a timed bout
    REST = "rest"  # between sets of one exercise
    PAUSED = "paused"
    RELEASING = "releasing"  # deflating at the end of an exercise
    REPERFUSION = "reperfusion"  # cuff empty between exercises
    FINISHED = "finished"


# Actions the UI may offer in each phase, named as the runner's methods.
ACTIONS: dict[Phase, tuple[str, ...]] = {
    Phase.SCREENING: ("override_screening", "confirm_caution", "recheck_screening"),
    Phase.CUFF_PLACEMENT: ("confirm_cuff",),
    Phase.LOP_REVIEW: ("accept_lop", "remeasure_lop", "enter_lop", "use_recorded_lop"),
    Phase.INFLATING: ("pause",),
    Phase.SET: ("pause", "end_set", "end_exercise"),
    Phase.REST: ("pause", "end_exercise"),
    Phase.PAUSED: ("resume", "end_exercise"),
    Phase.REPERFUSION: ("pause",),
    Phase.LOP_REST: ("pause",),
}


@dataclass(frozen=True)
class RunnerView:
    """Everything a screen shows, presentation-free. Indices are 0-based; `*_number` 1-based."""

    phase: str
    prompt_key: str | None
    prompt_params: dict[str, Any] = field(default_factory=dict)
    countdown_s: float | None = None
    rep: int | None = None
    rep_phase: str | None = None
    reps_target: int | None = None
    reps_done: int | None = None
    set_index: int | None = None  # during a rest: the set that comes next
    sets_total: int | None = None
    exercise_index: int | None = None
    exercises_total: int = 0
    exercise: str | None = None
    target_mmHg: float | None = None
    pct_lop: float | None = None
    lop_mmHg: float | None = None
    pressure_mmHg: float | None = None
    controller_state: str | None = None
    cuff_inflated: bool = False
    occlusion_s: float = 0.0
    occlusion_limit_s: float | None = None
    awaiting_rating: bool = False
    paused: bool = False
    actions: tuple[str, ...] = ()
    session_id: int | None = None
    outcome: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["actions"] = list(self.actions)
        return out
