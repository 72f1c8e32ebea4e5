"""Is the heartbeat regular enough for an oscillometric reading (atrial fibrillation check)?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.lop.beats import Beats
from appliance.lop.oscillogram import noise_level, smooth_oscillogram

# Where the envelope is above this share of its peak the artery pulses clearly.
STRONG_SHARE = 0.35
MIN_BEATS = 8
# An interval shorter than this share of the typical one, that with its neighbour makes up a
# typical interval within the tolerance, was split by an extra peak (a knock, not a beat).
SPLIT_SHARE = 0.6
SPLIT_TOLERANCE = 0.25
MAX_SPLIT_SHARE = 1.0 / 3.0


@dataclass(frozen=True)
class Rhythm:
    """Beat-to-beat variability and how clearly the beats stand out of the noise."""

    irregularity: float
    clarity: float
    beats: int


def interval_irregularity(
    peak_index: np.ndarray, rate_hz: float, period_s: float | None = None
) -> float:
    """Median change between successive beat intervals as a fraction of the median interval.

    Successive differences ignore a slow drift in heart rate over the measurement but grow
    with beat-to-beat chaos as in atrial fibrillation. 0 when there are too few beats to say.
    `period_s`, the heart period of the whole trace, tells a split interval from a short one;
    without it the median interval does (less reliably over a few beats).
    """
    intervals = np.diff(peak_index) / rate_hz
    if intervals.size < 5:
        return 0.0
    typical = float(np.median(intervals))
    # Gaps from rejected or missed beats are not intervals of the rhythm.
    intervals = intervals[intervals < 2.0 * typical]
    intervals = _merge_split_intervals(intervals, period_s or typical)
    if intervals.size < 5:
        return 0.0
    return float(np.median(np.abs(np.diff(intervals))) / typical)


def _merge_split_intervals(intervals: np.ndarray, typical: float) -> np.ndarray:
    """Join two intervals that together make one ordinary beat interval.

    A knock on the cuff between two beats looks like an extra beat and splits one interval into
    a short and a shorter one; a short interval in atrial fibrillation is followed by one of
    its own length, not by exactly the rest of an ordinary beat.
    """
    merged: list[float] = []
    i = 0
    while i < intervals.size:
        if i + 1 < intervals.size:
            pair = intervals[i] + intervals[i + 1]
            split = min(intervals[i], intervals[i + 1]) < SPLIT_SHARE * typical
            if split and abs(pair - typical) <= SPLIT_TOLERANCE * typical:
                merged.append(float(pair))
                i += 2
                continue
        merged.append(float(intervals[i]))
        i += 1
    # Knocks are occasional; with more than a third of the intervals split it is movement.
    if intervals.size - len(merged) > MAX_SPLIT_SHARE * intervals.size:
        return intervals
    return np.asarray(merged)


def assess_rhythm(beats: Beats, rate_hz: float, period_s: float | None = None) -> Rhythm:
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
        irregularity=interval_irregularity(beats.peak_index[span], rate_hz, period_s),
        clarity=float(clarity),
        beats=int(np.count_nonzero(span)),
    )
