"""Pulsations riding on the cuff pressure: separate them, find the heart period and each beat."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.lop.filters import band_pass, moving_average

# Heart rates the appliance must handle; the period search is limited to this range.
MIN_HEART_RATE_BPM = 40.0
MAX_HEART_RATE_BPM = 180.0
# Below the slowest heart rate: keeps the whole beat, drops the ramp and breathing.
LOW_CUT_HZ = 0.5
# The amplitude lives in the first two harmonics; higher up there is mostly the 1 mmHg
# quantisation staircase (a deflation at 4-7 mmHg/s steps at 4-7 Hz) and pump noise.
HARMONICS_KEPT = 2.0
HIGH_CUT_RANGE_HZ = (3.0, 7.0)
# Autocorrelation peaks this close to the best are taken as the fundamental, not a multiple;
# so is a fraction of the chosen lag whose added multiples read this close to the lag's own.
SUBHARMONIC_MARGIN = 0.8
# Whole fractions of the chosen lag tried as the fundamental: a half and a third (a quarter is a
# half of a half). A knock's band-passed ringing dips the autocorrelation about 0.4 s after it,
# right on a fast heart's first lag, and can leave only its double or triple above the margin.
FRACTIONS_TRIED = (2, 3)
# An autocorrelation peak read at a multiple of the period may sit this share of the period
# off: beat-to-beat variability smears the peaks a little more at each multiple.
MULTIPLE_SLACK = 0.05


@dataclass(frozen=True)
class Pulsations:
    """The trace split into the cuff pressure and the pulsations on it."""

    cuff_mmHg: np.ndarray
    signal_mmHg: np.ndarray
    rate_hz: float


@dataclass(frozen=True)
class Beats:
    """Detected beats: sample index of each peak, its amplitude and the cuff pressure under it."""

    peak_index: np.ndarray
    amplitude_mmHg: np.ndarray
    cuff_mmHg: np.ndarray

    def __len__(self) -> int:
        return int(self.peak_index.size)


def cuff_baseline(pressure_mmHg: np.ndarray, rate_hz: float) -> np.ndarray:
    """Cuff pressure without pulsations: a 1.5 s then 0.75 s mean (ramps pass unchanged)."""
    return moving_average(moving_average(pressure_mmHg, int(1.5 * rate_hz)), int(0.75 * rate_hz))


def separate_pulsations(
    pressure_mmHg: np.ndarray, rate_hz: float, high_cut_hz: float
) -> Pulsations:
    cuff = cuff_baseline(pressure_mmHg, rate_hz)
    signal = band_pass(pressure_mmHg - cuff, rate_hz, LOW_CUT_HZ, high_cut_hz)
    return Pulsations(cuff_mmHg=cuff, signal_mmHg=signal, rate_hz=rate_hz)


def high_cut_for(period_s: float) -> float:
    low, high = HIGH_CUT_RANGE_HZ
    return float(np.clip(HARMONICS_KEPT / period_s, low, high))


def heart_period(signal: np.ndarray, rate_hz: float) -> tuple[float, float]:
    """Dominant beat period (s) and how periodic the signal is (autocorrelation 0..1)."""
    n = signal.size
    x = signal - np.mean(signal)
    spectrum = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(np.abs(spectrum) ** 2)[:n]
    if acf[0] <= 0:
        return 60.0 / 75.0, 0.0
    # Unbiased normalisation so longer lags are not penalised for overlapping less.
    acf = acf / (n - np.arange(n)) / (acf[0] / n)
    lo = int(np.floor(rate_hz * 60.0 / MAX_HEART_RATE_BPM))
    hi = min(int(np.ceil(rate_hz * 60.0 / MIN_HEART_RATE_BPM)), n // 2)
    if hi - lo < 3:
        return 60.0 / 75.0, 0.0
    window = acf[lo : hi + 1]
    interior = (window[1:-1] >= window[:-2]) & (window[1:-1] > window[2:])
    peaks = np.flatnonzero(interior) + 1
    best = window[peaks].max() if peaks.size else 0.0
    if best <= 0:
        return 60.0 / 75.0, 0.0
    first = peaks[window[peaks] >= SUBHARMONIC_MARGIN * best][0]
    # How periodic the signal is reads at the chosen lag: a multiple of the period is a period.
    periodicity = float(np.clip(window[first], 0.0, 1.0))
    first = _fundamental(acf, lo, peaks, first)
    # Parabolic refinement: the period resolution should not be one sample.
    y0, y1, y2 = window[first - 1], window[first], window[first + 1]
    denom = y0 - 2 * y1 + y2
    shift = 0.5 * (y0 - y2) / denom if denom < 0 else 0.0
    return (lo + first + shift) / rate_hz, periodicity


def _fundamental(acf: np.ndarray, lo: int, peaks: np.ndarray, chosen: int) -> int:
    """The shortest whole fraction of the chosen lag that the autocorrelation bears out.

    `peaks` and `chosen` count from lag `lo`; the fraction must be one of the peaks too.
    """
    for parts in FRACTIONS_TRIED:
        fraction = (lo + chosen) / parts
        slack = max(1, int(round(MULTIPLE_SLACK * fraction)))
        nearby = peaks[np.abs(lo + peaks - fraction) <= slack]
        if nearby.size and _repeats_at(acf, fraction, parts, slack):
            return _fundamental(acf, lo, peaks, int(nearby[np.argmax(acf[lo + nearby])]))
    return chosen


def _repeats_at(acf: np.ndarray, fraction: float, parts: int, slack: int) -> bool:
    """Whether the signal repeats at `fraction` of a lag, not only at the whole lag.

    A single lag can be dipped by a knock, so the fraction is judged on all its multiples
    within half the trace: the lags it adds (for a half: 1, 3, 5... times it) must read about
    as high as the multiples of the whole lag. A slow heart with a second wave at mid-beat
    reads low at the odd multiples of its half period and keeps its period.
    """
    multiples = np.arange(1, int(acf.size // 2 // fraction) + 1)
    # One added lag beside the whole one would be the single-lag judgement again.
    if multiples.size <= parts:
        return False
    heights = np.array([_height_near(acf, m * fraction, slack) for m in multiples])
    own = heights[multiples % parts == 0].mean()
    added = heights[multiples % parts != 0].mean()
    return bool(own > 0 and added >= SUBHARMONIC_MARGIN * own)


def _height_near(acf: np.ndarray, lag: float, slack: int) -> float:
    centre = int(round(lag))
    return float(acf[max(0, centre - slack) : centre + slack + 1].max())


def _beats_at_peaks(pulsations: Pulsations, half_s: float, reach_s: float) -> Beats:
    """Peaks that are the highest point within +-half_s; amplitude is peak minus the foot.

    The foot is the lowest point since the previous peak (at most reach_s back).
    """
    x = pulsations.signal_mmHg
    rate = pulsations.rate_hz
    n = x.size
    half = max(1, int(half_s * rate))
    if n < 3:
        return Beats(np.empty(0, int), np.empty(0), np.empty(0))
    padded = np.pad(x, half, mode="constant", constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    is_peak = (x >= windows.max(axis=1)) & (np.arange(n) > 0) & (np.arange(n) < n - 1)
    peaks = np.flatnonzero(is_peak)
    # Plateaus from quantisation can give two equal maxima; keep the first of a close pair.
    if peaks.size > 1:
        peaks = peaks[np.concatenate(([True], np.diff(peaks) > half))]
    reach = int(reach_s * rate)
    shortest = max(1, int(0.6 * half))
    indices: list[int] = []
    amplitudes: list[float] = []
    previous = -1
    for peak in peaks:
        start = max(0, peak - reach) if previous < 0 else max(previous, peak - reach)
        previous = int(peak)
        # A peak right at the start has no foot in the trace to measure from.
        if peak - start < shortest:
            continue
        indices.append(int(peak))
        amplitudes.append(float(x[peak] - np.min(x[start:peak])))
    index = np.asarray(indices, dtype=int)
    return Beats(
        peak_index=index,
        amplitude_mmHg=np.asarray(amplitudes, dtype=float),
        cuff_mmHg=pulsations.cuff_mmHg[index] if index.size else np.empty(0),
    )


def detect_beats(pulsations: Pulsations, period_s: float) -> Beats:
    """Beats of a regular rhythm: one peak per +-35 % of the heart period.

    Knowing the period keeps noise peaks between beats out, also where pulsations are faint.
    """
    return _beats_at_peaks(pulsations, 0.35 * period_s, 0.7 * period_s)


def detect_beats_unpaced(pulsations: Pulsations) -> Beats:
    """Beats without assuming a period, for judging the rhythm itself.

    Peaks may be as close as the fastest heart rate allows; small peaks between beats (notch,
    quantisation ripple) are dropped against the amplitude of the neighbouring beats. The
    reference is the upper quartile of the neighbours, not their median: with a slow heart and
    faint pulsations every other peak can be such a ripple, and a median would be one of them.
    """
    shortest_period = 60.0 / MAX_HEART_RATE_BPM
    beats = _beats_at_peaks(pulsations, 0.45 * shortest_period, 60.0 / MIN_HEART_RATE_BPM)
    if len(beats) < 5:
        return beats
    amplitude = beats.amplitude_mmHg
    padded = np.pad(amplitude, 3, mode="edge")
    local = np.percentile(np.lib.stride_tricks.sliding_window_view(padded, 7), 75, axis=1)
    keep = amplitude >= 0.4 * local
    return Beats(beats.peak_index[keep], amplitude[keep], beats.cuff_mmHg[keep])
