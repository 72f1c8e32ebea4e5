"""Offline and incremental LOP estimate from a recorded cuff trace (inflating or deflating)."""

from __future__ import annotations

import numpy as np

from appliance.lop.beats import (
    Beats,
    detect_beats,
    detect_beats_unpaced,
    heart_period,
    high_cut_for,
    separate_pulsations,
)
from appliance.lop.filters import moving_average
from appliance.lop.oscillogram import (
    ARTERIAL_FRACTION,
    read_occlusion,
    settled,
    smooth_oscillogram,
)
from appliance.lop.quality import (
    MAX_ARTEFACT_FRACTION,
    MIN_PERIODICITY,
    confidence,
    occlusion_problem,
    signal_problem,
)
from appliance.lop.ramps import LOWEST_USEFUL_MMHG, Ramp, find_ramps, pressure_trend
from appliance.lop.result import Envelope, LopEstimate, LopFailure
from appliance.lop.rhythm import assess_rhythm
from appliance.lop.trace import (
    UniformTrace,
    clean_samples,
    median_sample_rate_hz,
    resample_uniform,
)

MIN_DURATION_S = 4.0
# Sampling below ~45 Hz leaves too few points per beat at 180 bpm to find its peak and foot.
MIN_SAMPLE_RATE_HZ = 45.0
# A trace whose pressure moved less than this cannot span mean arterial pressure to occlusion.
MIN_PRESSURE_SPAN_MMHG = 15.0
MIN_RAMP_S = 3.0
# First-pass band before the heart rate is known: the fundamental of 180 bpm is 3 Hz.
FIRST_PASS_HIGH_CUT_HZ = 3.5
# A rep or a bump on the cuff is a pressure excursion far beyond any arterial pulsation.
SPIKE_MIN_MMHG = 6.0
SPIKE_SCALE = 8.0
SPIKE_RINGING_S = 0.3


def estimate_lop(
    t_s: np.ndarray, pressure_mmHg: np.ndarray, *, arterial_fraction: float = ARTERIAL_FRACTION
) -> LopEstimate:
    """Occlusion pressure of a cuff trace, or a reason why it cannot be measured.

    Works on complete recordings (inflation, deflation or both) and on a trace still growing
    during inflation: call it again as samples arrive; `occlusion_confirmed` turns True once the
    cuff has gone far enough past occlusion that inflating further adds nothing.
    """
    t, p = clean_samples(t_s, pressure_mmHg)
    duration = float(t[-1] - t[0]) if t.size > 1 else 0.0
    if t.size < 10 or duration < MIN_DURATION_S:
        return LopEstimate.failed(
            LopFailure.TOO_SHORT,
            f"trace too short: {duration:.1f} s, at least {MIN_DURATION_S:.0f} s needed",
        )
    rate = median_sample_rate_hz(t)
    if rate < MIN_SAMPLE_RATE_HZ:
        return LopEstimate.failed(
            LopFailure.LOW_SAMPLE_RATE,
            f"sample rate too low: {rate:.0f} Hz, at least {MIN_SAMPLE_RATE_HZ:.0f} Hz needed",
        )
    trace = resample_uniform(t, p)
    trend = pressure_trend(trace.pressure_mmHg, trace.rate_hz)
    span = float(trend.max() - trend.min())
    if span < MIN_PRESSURE_SPAN_MMHG:
        return LopEstimate.failed(
            LopFailure.FLAT_TRACE,
            f"flat trace: cuff pressure moved only {span:.0f} mmHg, no ramp to read",
        )
    ramps = [
        r
        for r in find_ramps(trace.pressure_mmHg, trace.rate_hz, trend)
        if r.size >= MIN_RAMP_S * trace.rate_hz
    ]
    if not ramps:
        return LopEstimate.failed(
            LopFailure.TOO_SHORT,
            f"no inflation or deflation ramp of at least {MIN_RAMP_S:.0f} s "
            f"above {LOWEST_USEFUL_MMHG:.0f} mmHg",
        )
    return _best([(ramp, _estimate_on_ramp(trace, ramp, arterial_fraction)) for ramp in ramps])


def _best(candidates: list[tuple[Ramp, LopEstimate]]) -> LopEstimate:
    measured = [e for _, e in candidates if e.lop_mmHg is not None]
    if measured:
        return max(measured, key=lambda e: e.confidence)
    # The longest ramp is the slow, measuring one; its failure is the one worth reporting.
    return max(candidates, key=lambda c: c[0].size)[1]


def _blank_spikes(pressure: np.ndarray, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Replace rep-like spikes by the slow trend; returns the cleaned trace and the spike mask."""
    trend = pressure_trend(pressure, rate_hz)
    deviation = pressure - trend
    scale = 1.4826 * float(np.median(np.abs(deviation - np.median(deviation))))
    spike = np.abs(deviation) > max(SPIKE_MIN_MMHG, SPIKE_SCALE * scale)
    if not spike.any():
        return pressure, spike
    # The rise and fall around a detected spike are artefact as well.
    spike = moving_average(spike.astype(float), int(0.5 * rate_hz), hold_ends=True) > 0
    cleaned = np.where(spike, trend, pressure)
    return cleaned, spike


def _estimate_on_ramp(trace: UniformTrace, ramp: Ramp, arterial_fraction: float) -> LopEstimate:
    rate = trace.rate_hz
    pressure, spike = _blank_spikes(trace.pressure_mmHg[ramp.start : ramp.stop], rate)
    first = separate_pulsations(pressure, rate, FIRST_PASS_HIGH_CUT_HZ)
    period, periodicity = heart_period(np.where(spike, 0.0, first.signal_mmHg), rate)
    pulsations = separate_pulsations(pressure, rate, high_cut_for(period))
    beats, lost = _usable_beats(detect_beats(pulsations, period), spike, period, rate)
    unpaced, _ = _usable_beats(detect_beats_unpaced(pulsations), spike, period, rate)
    rhythm = assess_rhythm(unpaced, rate, period if periodicity >= MIN_PERIODICITY else None)
    artefacts = max(float(spike.mean()), lost)
    heart_rate = 60.0 / period if periodicity >= MIN_PERIODICITY else None

    spread = 1.4826 * float(np.median(np.abs(pulsations.signal_mmHg)))
    problem = signal_problem(ramp, artefacts, periodicity, rhythm, beats, spread)
    if problem is not None:
        return LopEstimate.failed(*problem, heart_rate_bpm=heart_rate, ramp=ramp.direction)

    smoothed, weights = smooth_oscillogram(beats.cuff_mmHg, beats.amplitude_mmHg)
    envelope = Envelope(beats.cuff_mmHg, beats.amplitude_mmHg, smoothed)
    artefacts += float(np.mean(weights < 0.05))
    reading = read_occlusion(beats.cuff_mmHg, beats.amplitude_mmHg, smoothed, arterial_fraction)
    arterial = smoothed >= reading.floor_mmHg + ARTERIAL_FRACTION * (
        reading.peak_amplitude_mmHg - reading.floor_mmHg
    )
    heart_rate = _heart_rate(beats.peak_index[arterial], rate, period)
    if artefacts > MAX_ARTEFACT_FRACTION:
        problem = (
            LopFailure.MOTION,
            f"motion artefacts: {artefacts:.0%} of the beats are disturbed or off the envelope",
        )
    elif reading.lop_mmHg is None:
        problem = occlusion_problem(reading, beats)
    if problem is not None:
        return LopEstimate.failed(
            *problem,
            heart_rate_bpm=heart_rate,
            envelope=envelope,
            ramp=ramp.direction,
            peak_pulsation_mmHg=reading.peak_cuff_mmHg,
        )
    steady = settled(beats.cuff_mmHg, beats.amplitude_mmHg, reading, arterial_fraction)
    return LopEstimate(
        lop_mmHg=reading.lop_mmHg,
        confidence=confidence(reading, len(beats), periodicity, artefacts, steady),
        reason=None,
        heart_rate_bpm=heart_rate,
        envelope=envelope,
        beats=len(beats),
        failure=None,
        ramp=ramp.direction,
        peak_pulsation_mmHg=reading.peak_cuff_mmHg,
        occlusion_confirmed=steady,
    )


def _usable_beats(
    beats: Beats, spike: np.ndarray, period_s: float, rate_hz: float
) -> tuple[Beats, float]:
    """Beats clear of blanked spikes on a cuff tight enough to matter, and the share lost."""
    keep = beats.cuff_mmHg >= LOWEST_USEFUL_MMHG
    considered = int(np.count_nonzero(keep))
    if spike.any():
        # A beat reads its foot up to 0.7 period before its peak, and the band-pass rings for
        # a few tenths of a second where the blanked stretch meets the real signal.
        before = int((0.7 * period_s + SPIKE_RINGING_S) * rate_hz)
        after = int((0.5 * period_s + SPIKE_RINGING_S) * rate_hz)
        blanked = np.concatenate(([0], np.cumsum(spike)))
        first = np.clip(beats.peak_index - before, 0, spike.size)
        last = np.clip(beats.peak_index + after + 1, 0, spike.size)
        keep &= blanked[last] - blanked[first] == 0
    lost = 1.0 - np.count_nonzero(keep) / considered if considered else 0.0
    return Beats(beats.peak_index[keep], beats.amplitude_mmHg[keep], beats.cuff_mmHg[keep]), lost


def _heart_rate(peak_index: np.ndarray, rate_hz: float, period_s: float) -> float:
    """Rate from the beats with clear arterial pulsation; the autocorrelation period otherwise."""
    intervals = np.diff(peak_index) / rate_hz
    intervals = intervals[(intervals > 0.6 * period_s) & (intervals < 1.6 * period_s)]
    if intervals.size < 3:
        return 60.0 / period_s
    return 60.0 / float(np.median(intervals))
