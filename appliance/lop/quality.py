"""Whether pulsations and oscillogram can be trusted, and how far: reasons and confidence."""

from __future__ import annotations

import numpy as np

from appliance.lop.beats import Beats
from appliance.lop.oscillogram import (
    BEATS_ABOVE_TO_CONFIRM,
    HEADROOM_TO_CONFIRM_MMHG,
    MIN_ARTERIAL_PEAK_MMHG,
    NOT_OCCLUDED_RATIO,
    OcclusionReading,
)
from appliance.lop.ramps import Ramp
from appliance.lop.result import LopFailure
from appliance.lop.rhythm import Rhythm

MIN_BEATS = 8
# With more of the beats than this lost to artefacts the envelope is guesswork.
MAX_ARTEFACT_FRACTION = 0.4
# Pulsations below this autocorrelation are not a heartbeat the estimate can rely on.
MIN_PERIODICITY = 0.25
# Pulsations under this are indistinguishable from 1 mmHg quantisation noise. Judged on the
# larger beats (upper quartile): a long ramp from far below mean arterial pressure to above
# occlusion has mostly small beats, and their median says nothing about the envelope's peak.
MIN_PULSATION_MMHG = 0.3
# Aperiodic excursions spreading wider than this (robust SD) are movement, not sensor noise:
# arterial pulsations of 0.5-3 mmHg peak to peak spread about 0.2-1 mmHg.
MOTION_SPREAD_MMHG = 1.0
# Median successive interval change above this fraction of the interval is arrhythmia, not
# detection jitter (regular recordings stay below 0.15 here).
MAX_IRREGULARITY = 0.2
# Envelope height over beat scatter: clean beats in an irregular rhythm reach 7+, motion ~2-4.
MIN_RHYTHM_CLARITY = 5.0

Problem = tuple[LopFailure, str]


def signal_problem(
    ramp: Ramp, artefacts: float, periodicity: float, rhythm: Rhythm, beats: Beats, spread: float
) -> Problem | None:
    """Reasons, found before any envelope is read, why the pulsations cannot be trusted."""
    where = f"on the {ramp.direction}"
    if artefacts > MAX_ARTEFACT_FRACTION:
        return LopFailure.MOTION, f"motion artefacts over {artefacts:.0%} of the {ramp.direction}"
    irregular = rhythm.irregularity > MAX_IRREGULARITY
    # Irregular excursions larger than any arterial pulsation are movement, whatever their rhythm.
    if (irregular or periodicity < MIN_PERIODICITY) and spread > MOTION_SPREAD_MMHG:
        return (
            LopFailure.MOTION,
            f"motion or noise: no regular heartbeat {where}, excursions of "
            f"{spread:.1f} mmHg (autocorrelation {periodicity:.2f})",
        )
    if irregular and rhythm.clarity >= MIN_RHYTHM_CLARITY:
        return (
            LopFailure.IRREGULAR_RHYTHM,
            f"irregular rhythm: beat intervals change by {rhythm.irregularity:.0%} from beat "
            "to beat (atrial fibrillation?); oscillometric LOP is unreliable",
        )
    typical = float(np.percentile(beats.amplitude_mmHg, 75)) if len(beats) else 0.0
    if periodicity < MIN_PERIODICITY:
        return (
            LopFailure.NO_PULSATION,
            f"no arterial pulsation found {where} (autocorrelation {periodicity:.2f})",
        )
    if len(beats) < MIN_BEATS:
        return (
            LopFailure.TOO_FEW_BEATS,
            f"too few beats: {len(beats)} {where}, at least {MIN_BEATS} needed "
            "(ramp too fast or too short)",
        )
    if typical < MIN_PULSATION_MMHG:
        return (
            LopFailure.NO_PULSATION,
            f"no arterial pulsation: beats of {typical:.2f} mmHg are within sensor noise",
        )
    return None


def occlusion_problem(reading: OcclusionReading, beats: Beats) -> Problem:
    """Why the oscillogram gave no occlusion pressure."""
    top = float(beats.cuff_mmHg.max())
    peak, floor = reading.peak_amplitude_mmHg, reading.floor_mmHg
    ratio = floor / peak if peak > 0 else 1.0
    if ratio > NOT_OCCLUDED_RATIO or reading.peak_cuff_mmHg >= top:
        return (
            LopFailure.NOT_OCCLUDED,
            f"pressure never passed occlusion: pulsations at the top ({top:.0f} mmHg) are still "
            f"{ratio:.0%} of the peak",
        )
    if peak - floor < MIN_ARTERIAL_PEAK_MMHG:
        return (
            LopFailure.NO_PULSATION,
            f"no clear arterial pulsation: the envelope rises only {peak - floor:.2f} mmHg "
            f"above the residual, at least {MIN_ARTERIAL_PEAK_MMHG} mmHg expected",
        )
    need = f"{BEATS_ABOVE_TO_CONFIRM} beats over {HEADROOM_TO_CONFIRM_MMHG:.0f} mmHg needed"
    if reading.fade_mmHg is None:
        return (
            LopFailure.NOT_OCCLUDED,
            f"occlusion not confirmed: pulsations have not faded out for good up to {top:.0f} "
            f"mmHg ({need})",
        )
    return (
        LopFailure.NOT_OCCLUDED,
        f"occlusion not confirmed yet: pulsations fade out at {reading.fade_mmHg:.0f} mmHg but "
        f"the trace goes only {top - reading.fade_mmHg:.0f} mmHg ({reading.beats_above} beats) "
        f"past it; {need}",
    )


def confidence(
    reading: OcclusionReading, n_beats: int, periodicity: float, artefacts: float, steady: bool
) -> float:
    """Heuristic 0..1: geometric mean of evidence factors, each 1 when the evidence is ample.

    Factors are floored so a single thin one lowers the confidence without zeroing it; the
    hard limits that refuse a value are applied before this.
    """
    factors = np.array(
        (
            n_beats / 20.0,
            (periodicity - 0.15) / 0.45,
            (reading.snr - 1.0) / 5.0,
            reading.beats_above / 6.0,
            1.0 - artefacts,
            0.7 if reading.peak_at_low_edge else 1.0,
            1.0 if steady else 0.6,
        )
    )
    factors = np.clip(factors, 0.05, 1.0)
    return float(np.exp(np.mean(np.log(factors))))
