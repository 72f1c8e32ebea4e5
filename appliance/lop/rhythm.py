"""Is the heartbeat regular enough for an oscillometric reading (atrial fibrillation check)?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.lop.beats import Beats
from appliance.lop.oscillogram import noise_level, smooth_oscillogram

# Where the envelope is above this share of its peak the artery pulses clearly.
STRONG_SHARE = 0.35
MIN_BEATS = 8


@dataclass(frozen=True)
class Rhythm:
    """Beat-to-beat variability and how clearly the beats stand out of the noise."""

    irregularity: float
    clarity: float
    beats: int


def interval_irregularity(peak_index: np.ndarray, rate_hz: float) -> float:
    """Median change between successive beat intervals as a fraction of the median interval.

    Successive differences ignore a slow drift in heart rate over the measurement but grow
    with beat-to-beat chaos as in atrial fibrillation. 0 when there are too few beats to say.
    """
    intervals = np.diff(peak_index) / rate_hz
    if intervals.size < 5:
        return 0.0
    typical = float(np.median(intervals))
    # Gaps from rejected or missed beats are not intervals of the rhythm.
    intervals = intervals[intervals < 2.0 * typical]
    if intervals.size < 5:
        return 0.0
    return float(np.median(np.abs(np.diff(intervals))) / typical)


def assess_rhythm(beats: Beats, rate_hz: float) -> Rhythm:
    """Judge the rhythm over the pressures with strong pulsation, found without an assumed period.

    Clarity (envelope height over beat-to-beat scatter) tells an irregular but clean heartbeat
    from motion, which is irregular too but does not follow an envelope.
    """
    if len(beats) < MIN_BEATS:
        return Rhythm(irregularity=0.0, clarity=0.0, beats=len(beats))
    amplitude = beats.amplitude_mmHg
    smoothed, _ = smooth_oscillogram(beats.cuff_mmHg, amplitude)
    span = smoothed >= STRONG_SHARE * smoothed.max()
    height = float(smoothed.max() - np.percentile(smoothed, 10))
    clarity = height / max(noise_level(amplitude, smoothed), 0.05)
    return Rhythm(
        irregularity=interval_irregularity(beats.peak_index[span], rate_hz),
        clarity=float(clarity),
        beats=int(np.count_nonzero(span)),
    )
