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
    BEATS_ABOVE_TO_CONFIRM,
    HEADROOM_TO_CONFIRM_MMHG,
    MIN_ARTERIAL_PEAK_MMHG,
    NOT_OCCLUDED_RATIO,
    OcclusionReading,
    read_occlusion,
    settled,
    smooth_oscillogram,
)
from appliance.lop.ramps import LOWEST_USEFUL_MMHG, Ramp, find_ramps, pressure_trend
from appliance.lop.result import Envelope, LopEstimate, LopFailure
from appliance.lop.rhythm import Rhythm, assess_rhythm
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
MIN_BEATS = 8
# First-pass band before the heart rate is known: the fundamental of 180 bpm is 3 Hz.
FIRST_PASS_HIGH_CUT_HZ = 3.5
# A rep or a bump on the cuff is a pressure excursion far beyond any arterial pulsation.
SPIKE_MIN_MMHG = 6.0
SPIKE_SCALE = 8.0
# More of the ramp than this lost to artefacts leaves the envelope to guesswork.
MAX_ARTEFACT_FRACTION = 0.3
# Pulsations below this autocorrelation are not a heartbeat the estimate can rely on.
MIN_PERIODICITY = 0.25
# Pulsations averaging under this are indistinguishable from 1 mmHg quantisation noise.
MIN_PULSATION_MMHG = 0.3
# Aperiodic excursions spreading wider than this (robust SD) are movement, not sensor noise:
# arterial pulsations of 0.5-3 mmHg peak to peak spread about 0.2-1 mmHg.
MOTION_SPREAD_MMHG = 1.0
# Median successive interval change above this fraction of the interval is arrhythmia, not
# detection jitter (regular recordings stay below 0.15 here).
MAX_IRREGULARITY = 0.2
# Envelope height over beat scatter: clean beats in an irregular rhythm reach 7+, motion ~2-4.
MIN_RHYTHM_CLARITY = 5.0


def estimate_lop(t_s: np.ndarray, pressure_mmHg: np.ndarray) -> LopEstimate:
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
        for r in find_ramps(trace.pressure_mmHg, trace.rate_hz)
        if r.size >= MIN_RAMP_S * trace.rate_hz
    ]
    if not ramps:
        return LopEstimate.failed(
            LopFailure.TOO_SHORT,
            f"no inflation or deflation ramp of at least {MIN_RAMP_S:.0f} s above {LOWEST_USEFUL_MMHG:.0f} mmHg",
        )
    return _best([(ramp, _estimate_on_ramp(trace, ramp)) for ramp in ramps])


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


def _estimate_on_ramp(trace: UniformTrace, ramp: Ramp) -> LopEstimate:
    rate = trace.rate_hz
    pressure, spike = _blank_spikes(trace.pressure_mmHg[ramp.start : ramp.stop], rate)
    first = separate_pulsations(pressure, rate, FIRST_PASS_HIGH_CUT_HZ)
    period, periodicity = heart_period(np.where(spike, 0.0, first.signal_mmHg), rate)
    pulsations = separate_pulsations(pressure, rate, high_cut_for(period))
    beats, lost = _usable_beats(detect_beats(pulsations, period), spike, period, rate)
    unpaced, _ = _usable_beats(detect_beats_unpaced(pulsations), spike, period, rate)
    rhythm = assess_rhythm(unpaced, rate)
    artefacts = max(float(spike.mean()), lost)
    heart_rate = 60.0 / period if periodicity >= MIN_PERIODICITY else None

    spread = 1.4826 * float(np.median(np.abs(pulsations.signal_mmHg)))
    problem = _signal_problem(ramp, artefacts, periodicity, rhythm, beats, spread)
    if problem is not None:
        return LopEstimate.failed(*problem, heart_rate_bpm=heart_rate, ramp=ramp.direction)

    smoothed, weights = smooth_oscillogram(beats.cuff_mmHg, beats.amplitude_mmHg)
    envelope = Envelope(beats.cuff_mmHg, beats.amplitude_mmHg, smoothed)
    artefacts += float(np.mean(weights < 0.05))
    reading = read_occlusion(beats.cuff_mmHg, beats.amplitude_mmHg, smoothed)
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
        problem = _occlusion_problem(reading, beats)
    if problem is not None:
        return LopEstimate.failed(
            *problem,
            heart_rate_bpm=heart_rate,
            envelope=envelope,
            ramp=ramp.direction,
            peak_pulsation_mmHg=reading.peak_cuff_mmHg,
        )
    steady = settled(beats.cuff_mmHg, beats.amplitude_mmHg, reading)
    return LopEstimate(
        lop_mmHg=reading.lop_mmHg,
        confidence=_confidence(reading, len(beats), periodicity, artefacts, steady),
        reason=None,
        heart_rate_bpm=heart_rate,
        envelope=envelope,
        beats=len(beats),
        failure=None,
        ramp=ramp.direction,
        peak_pulsation_mmHg=reading.peak_cuff_mmHg,
        occlusion_confirmed=steady,
    )


def _signal_problem(
    ramp: Ramp, artefacts: float, periodicity: float, rhythm: Rhythm, beats: Beats, spread: float
) -> tuple[LopFailure, str] | None:
    """Reasons, found before any envelope is read, why the pulsations cannot be trusted."""
    where = f"on the {ramp.direction}"
    if artefacts > MAX_ARTEFACT_FRACTION:
        return LopFailure.MOTION, f"motion artefacts over {artefacts:.0%} of the {ramp.direction}"
    irregular = rhythm.irregularity > MAX_IRREGULARITY
    if irregular and rhythm.clarity >= MIN_RHYTHM_CLARITY:
        return (
            LopFailure.IRREGULAR_RHYTHM,
            f"irregular rhythm: beat intervals change by {rhythm.irregularity:.0%} from beat "
            "to beat (atrial fibrillation?); oscillometric LOP is unreliable",
        )
    typical = float(np.median(beats.amplitude_mmHg)) if len(beats) else 0.0
    if periodicity < MIN_PERIODICITY:
        if spread > MOTION_SPREAD_MMHG:
            return (
                LopFailure.MOTION,
                f"motion or noise: no regular heartbeat {where} "
                f"(autocorrelation {periodicity:.2f})",
            )
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


def _usable_beats(
    beats: Beats, spike: np.ndarray, period_s: float, rate_hz: float
) -> tuple[Beats, float]:
    """Beats clear of blanked spikes on a cuff tight enough to matter, and the share lost."""
    keep = beats.cuff_mmHg >= LOWEST_USEFUL_MMHG
    considered = int(np.count_nonzero(keep))
    if spike.any():
        near = moving_average(spike.astype(float), int(period_s * rate_hz), hold_ends=True)
        keep &= near[beats.peak_index] <= 0
    lost = 1.0 - np.count_nonzero(keep) / considered if considered else 0.0
    return Beats(beats.peak_index[keep], beats.amplitude_mmHg[keep], beats.cuff_mmHg[keep]), lost


def _heart_rate(peak_index: np.ndarray, rate_hz: float, period_s: float) -> float:
    """Rate from the beats with clear arterial pulsation; the autocorrelation period otherwise."""
    intervals = np.diff(peak_index) / rate_hz
    intervals = intervals[(intervals > 0.6 * period_s) & (intervals < 1.6 * period_s)]
    if intervals.size < 3:
        return 60.0 / period_s
    return 60.0 / float(np.median(intervals))


def _occlusion_problem(reading: OcclusionReading, beats: Beats) -> tuple[LopFailure, str]:
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
    if reading.beats_above == 0:
        return (
            LopFailure.NOT_OCCLUDED,
            f"occlusion not confirmed: pulsations have not faded out for good up to {top:.0f} "
            f"mmHg ({need})",
        )
    return (
        LopFailure.NOT_OCCLUDED,
        f"occlusion not confirmed yet: {reading.beats_above} faded beat(s) up to {top:.0f} "
        f"mmHg, {need}",
    )


def _confidence(
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
