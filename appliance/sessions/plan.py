"""What the clinician chose for one session: patient, protocol, cuff, % LOP, LOP source, cadence.

`SessionPlan.checked()` applies the protocol's hard limits before anything inflates: the limb
must be one the protocol is for, % LOP goes through `protocols.check_pct_lop`, a slower cadence
must still fit the exercise's occlusion limit, and a tighter occlusion limit may only tighten.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from appliance.protocols import (
    CADENCE_RANGE_S,
    MIN_OCCLUSION_LIMIT_S,
    MIN_REPERFUSION_S,
    Exercise,
    Protocol,
    ProtocolError,
    check_pct_lop,
)
from appliance.store.records import POSTURES, SIDES

LOP_SOURCES = ("measure", "recorded")
DEFAULT_RECORDED_LOP_MAX_AGE_S = 7 * 24 * 3600.0  # LOP drifts with blood pressure and training
DEFAULT_LOP_REST_S = 60.0  # good practice: two readings a minute apart
DEFAULT_LEAD_IN_S = 3.0  # a count-in before the first beat of a set
DEFAULT_TRACE_HZ = 10.0
MAX_CUFF_NAME = 40  # the controller's limit for the cuff field of measure_lop


class PlanError(ValueError):
    """The plan cannot be run; the message names the field."""


@dataclass(frozen=True)
class SessionPlan:
    patient_id: int
    protocol: Protocol
    limb: str
    side: str
    posture: str
    cuff: str
    clinician: str
    pct_lop: float | None = None  # None: the protocol's value for the limb
    above_80_reason: str = ""  # the clinician's written reason for a % LOP above 80
    cadence_s: float | None = None  # None: each exercise's own cadence
    max_occlusion_s: float | None = None  # tighter than the protocol, never looser
    lop_source: str = "measure"  # or "recorded": a recent LOP on record for this cuff and posture
    recorded_lop_max_age_s: float = DEFAULT_RECORDED_LOP_MAX_AGE_S
    lop_rest_s: float = DEFAULT_LOP_REST_S
    lead_in_s: float = DEFAULT_LEAD_IN_S
    trace_hz: float = DEFAULT_TRACE_HZ

    def checked(self) -> SessionPlan:
        """The plan with % LOP filled in, or `PlanError` naming what is wrong."""
        if self.limb not in self.protocol.limbs:
            raise PlanError(
                f"limb: {self.protocol.name} is for the {' or '.join(self.protocol.limbs)},"
                f" not the {self.limb}"
            )
        if self.side not in SIDES:
            raise PlanError(f"side: must be one of {', '.join(SIDES)}, got {self.side!r}")
        if self.posture not in POSTURES:
            raise PlanError(f"posture: must be one of {', '.join(POSTURES)}, got {self.posture!r}")
        cuff = self.cuff.strip()
        if not cuff or len(cuff) > MAX_CUFF_NAME or not cuff.isprintable():
            raise PlanError(f"cuff: 1-{MAX_CUFF_NAME} printable characters, got {self.cuff!r}")
        if not self.clinician.strip():
            raise PlanError("clinician: the responsible clinician must be named")
        if self.lop_source not in LOP_SOURCES:
            raise PlanError(f"lop_source: must be one of {', '.join(LOP_SOURCES)}")
        for name in ("recorded_lop_max_age_s", "lop_rest_s", "lead_in_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise PlanError(f"{name}: must be a finite number >= 0, got {value!r}")
        if not 10.0 <= self.trace_hz <= 100.0:
            raise PlanError(f"trace_hz: must be 10-100 Hz, got {self.trace_hz!r}")
        try:
            pct = self._pct_lop()
        except ProtocolError as exc:
            raise PlanError(str(exc)) from None
        self._check_cadence()
        self._check_occlusion()
        return replace(self, cuff=cuff, pct_lop=pct)

    def _pct_lop(self) -> float:
        if self.pct_lop is None:
            return self.protocol.pct_lop.for_limb(self.limb)
        # Set at the table, above 80 % needs the clinician's own written reason, even when the
        # protocol file allows it.
        allowed = self.protocol.allow_above_80 or bool(self.above_80_reason.strip())
        return check_pct_lop(
            self.limb,
            self.pct_lop,
            allow_above_80=allowed,
            reason=self.above_80_reason,
        )

    def _check_cadence(self) -> None:
        if self.cadence_s is None:
            return
        low, high = CADENCE_RANGE_S
        if not low <= self.cadence_s <= high:
            raise PlanError(f"cadence_s: must be {low:g}-{high:g} s, got {self.cadence_s!r}")
        for exercise in self.protocol.exercises:
            paced = self.exercise(exercise)
            if max(paced.occlusion_bouts_s()) > paced.max_occlusion_s:
                raise PlanError(
                    f"cadence_s: at {self.cadence_s:g} s per rep {exercise.name} would occlude"
                    f" longer than its {paced.max_occlusion_s:g} s limit"
                )

    def _check_occlusion(self) -> None:
        limit = self.max_occlusion_s
        if limit is None:
            return
        if not math.isfinite(limit) or limit < MIN_OCCLUSION_LIMIT_S:
            raise PlanError(f"max_occlusion_s: must be at least {MIN_OCCLUSION_LIMIT_S:g} s")
        # Tightening is for a cautious clinician, not a way to cut every exercise short.
        for exercise in self.protocol.exercises:
            planned = max(self.exercise(exercise).occlusion_bouts_s())
            if planned > limit:
                raise PlanError(
                    f"max_occlusion_s: {exercise.name} needs {planned:g} s of continuous"
                    f" occlusion, more than {limit:g} s"
                )

    def exercise(self, exercise: Exercise) -> Exercise:
        """The exercise as this session runs it: the chosen cadence and occlusion limit."""
        out = exercise
        if self.cadence_s is not None and exercise.cadence_s is not None:
            out = replace(out, cadence_s=self.cadence_s)
        if self.max_occlusion_s is not None:
            out = replace(out, max_occlusion_s=min(out.max_occlusion_s, self.max_occlusion_s))
        return out

    @property
    def exercises(self) -> tuple[Exercise, ...]:
        return tuple(self.exercise(e) for e in self.protocol.exercises)


def release_s(exercise: Exercise) -> float:
    """How long the cuff must stay empty before occlusion counts from zero again.

    The shortest planned release of this exercise (deflated rests, the reperfusion after it),
    never below the controller's 60 s minimum, and at most the 3 min reperfusion of the guideline.
    The controller gets the same value, so its occlusion clock and the runner's agree.
    """
    candidates = [MIN_REPERFUSION_S]
    if exercise.reperfusion_after_s > 0:
        candidates.append(exercise.reperfusion_after_s)
    if not exercise.inflate_during_rest:
        candidates += [s.rest_after_s for s in exercise.sets[:-1] if s.rest_after_s > 0]
    return max(60.0, min(candidates))
