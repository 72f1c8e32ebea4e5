"""What an LOP estimate reports: the value, how sure it is, or why there is none."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np


class LopFailure(StrEnum):
    """Why no occlusion pressure could be given; stable codes a procedure can branch on."""

    TOO_SHORT = "too_short"
    LOW_SAMPLE_RATE = "low_sample_rate"
    FLAT_TRACE = "flat_trace"
    NO_PULSATION = "no_pulsation"
    TOO_FEW_BEATS = "too_few_beats"
    MOTION = "motion"
    IRREGULAR_RHYTHM = "irregular_rhythm"
    NOT_OCCLUDED = "not_occluded"


@dataclass(frozen=True)
class Envelope:
    """One point per accepted beat: cuff pressure under the beat and its pulsation amplitude."""

    cuff_mmHg: np.ndarray = field(default_factory=lambda: np.empty(0))
    amplitude_mmHg: np.ndarray = field(default_factory=lambda: np.empty(0))
    # The robust smooth of amplitude against cuff pressure that the LOP is read from.
    smoothed_mmHg: np.ndarray = field(default_factory=lambda: np.empty(0))

    def __len__(self) -> int:
        return int(self.cuff_mmHg.size)

    def to_json_dict(self) -> dict[str, list[float]]:
        return {
            "cuff_mmHg": [round(float(v), 2) for v in self.cuff_mmHg],
            "amplitude_mmHg": [round(float(v), 3) for v in self.amplitude_mmHg],
            "smoothed_mmHg": [round(float(v), 3) for v in self.smoothed_mmHg],
        }


@dataclass(frozen=True)
class LopEstimate:
    """Result of one estimate; `lop_mmHg` is None exactly when `reason` says why."""

    lop_mmHg: float | None
    confidence: float
    reason: str | None
    heart_rate_bpm: float | None
    envelope: Envelope = field(default_factory=Envelope)
    beats: int = 0
    failure: LopFailure | None = None
    # Ramp the estimate was read from: "inflation" or "deflation" (None if none was usable).
    ramp: str | None = None
    # Cuff pressure of the largest pulsations, close to mean arterial pressure.
    peak_pulsation_mmHg: float | None = None
    # True once the trace has gone far enough past occlusion that more pressure would not
    # change the value: the signal to stop inflating. A finished recording can give a value
    # that is not confirmed in this sense (it then carries a lower confidence).
    occlusion_confirmed: bool = False

    @classmethod
    def failed(
        cls,
        failure: LopFailure,
        reason: str,
        *,
        heart_rate_bpm: float | None = None,
        envelope: Envelope | None = None,
        ramp: str | None = None,
        peak_pulsation_mmHg: float | None = None,
    ) -> LopEstimate:
        env = envelope if envelope is not None else Envelope()
        return cls(
            lop_mmHg=None,
            confidence=0.0,
            reason=reason,
            heart_rate_bpm=heart_rate_bpm,
            envelope=env,
            beats=len(env),
            failure=failure,
            ramp=ramp,
            peak_pulsation_mmHg=peak_pulsation_mmHg,
        )

    def to_json_dict(self) -> dict[str, float | str | int | None]:
        return {
            "lop_mmHg": None if self.lop_mmHg is None else round(self.lop_mmHg, 1),
            "confidence": round(self.confidence, 3),
            "reason": self.reason,
            "heart_rate_bpm": None
            if self.heart_rate_bpm is None
            else round(self.heart_rate_bpm, 1),
            "beats": self.beats,
        }
