"""The oscillogram (pulsation amplitude against cuff pressure) and where arterial pulsation ends.

Physiology behind the reading (arm or thigh cuff, inflating or deflating alike):
- Pulsations are largest near mean arterial pressure, where the artery under the cuff swings
  between open and collapsed in every beat.
- Above occlusion they do not reach zero: the artery still knocks on the proximal edge of the
  cuff, and sensor noise and 1 mmHg quantisation add to that. This residual is a floor, not part
  of the arterial signal, so it is measured and removed before anything is compared.
- Occlusion is read where the arterial part (envelope minus residual) has fallen to one third of
  its peak on the high-pressure side. The classic systolic ratio reads half of the *raw* peak;
  with a residual of about a quarter of the peak (13-33 %, median 23 % in the development
  recordings), half the raw peak is one third of the arterial part. So this is the classic
  criterion made independent of how large the residual of a given cuff, sensor and limb is.
- The fade-out must be sustained: a dip between peak and occlusion is noise, and the reading is
  only confirmed once the cuff has gone a few beats and some mmHg past it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.lop.filters import running_median

ARTERIAL_FRACTION = 1.0 / 3.0
# Classic systolic ratio: while the highest pulsations are above half the peak, the cuff has
# not passed occlusion yet.
NOT_OCCLUDED_RATIO = 0.5
# Evidence above the estimate before occlusion counts as confirmed (stop inflating): with less
# headroom the residual floor is judged from its rising edge and the estimate reads low.
BEATS_ABOVE_TO_CONFIRM = 3
HEADROOM_TO_CONFIRM_MMHG = 10.0
# Settled: leaving out the beats of the top 5 mmHg moves the reading by no more than 4 mmHg.
SETTLE_DROP_MMHG = 5.0
SETTLE_TOLERANCE_MMHG = 4.0
# Arterial pulsations are 0.5-3 mmHg at their peak; a smaller rise over the residual is a
# wander of the noise floor, not an oscillogram.
MIN_ARTERIAL_PEAK_MMHG = 0.5
# Smoothing half-width: wide enough to average several beats at 2-10 mmHg/s, narrow against the
# 30-60 mmHg between mean arterial pressure and occlusion.
BANDWIDTH_MMHG = 8.0
MIN_NEIGHBOURS = 5
ROBUST_ITERATIONS = 3
# Lower bound of the bisquare scale: where most beats sit on a flat residual floor, six times
# their tiny scatter would reject the honest beats on a sharp knee as artefacts.
MIN_ROBUST_SCALE_MMHG = 0.25
# A beat this many times the median of its neighbours (5 in pressure order) is a knock.
GROSS_FACTOR = 2.0
GROSS_WINDOW_BEATS = 5


@dataclass(frozen=True)
class OcclusionReading:
    """What the oscillogram says about the peak, the residual floor and the fade-out between.

    `fade_mmHg` is where the arterial part falls below the threshold (None if it never does);
    it becomes the occlusion pressure once the trace has gone far enough past it to confirm it.
    """

    fade_mmHg: float | None
    confirmed: bool
    peak_cuff_mmHg: float
    peak_amplitude_mmHg: float
    floor_mmHg: float
    beats_above: int
    peak_at_low_edge: bool
    snr: float

    @property
    def lop_mmHg(self) -> float | None:
        return self.fade_mmHg if self.confirmed else None


def smooth_oscillogram(
    cuff_mmHg: np.ndarray, amplitude_mmHg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Robust local-linear smooth of amplitude against cuff pressure (LOWESS with bisquare).

    Returns the smooth and each beat's robustness weight (0 for a beat judged an artefact).
    """
    n = cuff_mmHg.size
    robust = np.ones(n)
    amplitude = amplitude_mmHg.astype(float)
    if n < 3:
        return amplitude.copy(), robust
    robust = _not_gross(cuff_mmHg, amplitude)
    offset = cuff_mmHg[None, :] - cuff_mmHg[:, None]  # row i: every beat seen from beat i
    distance = np.abs(offset)
    k = min(MIN_NEIGHBOURS, n - 1)
    reach = np.maximum(BANDWIDTH_MMHG, np.partition(distance, k, axis=1)[:, k] * 1.01)
    u = distance / reach[:, None]
    kernel = np.where(u < 1, (1 - u**3) ** 3, 0.0)
    smoothed = amplitude.copy()
    for _ in range(ROBUST_ITERATIONS):
        w = kernel * robust[None, :]
        # Where robustness emptied a neighbourhood, fall back to the plain kernel.
        empty = np.count_nonzero(w, axis=1) < 2
        w[empty] = kernel[empty]
        smoothed = _weighted_line_at_zero(offset, amplitude, w)
        robust = _bisquare(amplitude - smoothed)
    # Where robustness left only beats on one side, the local line can overshoot past every
    # beat it stands on (below zero at a sharp knee, up towards a rejected knock); no smooth is
    # outside the beats that carry it.
    spanned = np.where(w > 0, amplitude[None, :], np.nan)
    smoothed = np.clip(smoothed, np.nanmin(spanned, axis=1), np.nanmax(spanned, axis=1))
    return smoothed, robust


def _bisquare(residual: np.ndarray) -> np.ndarray:
    """Robustness weights: 1 for a small residual, 0 beyond six times the typical one."""
    scale = max(6.0 * float(np.median(np.abs(residual))), MIN_ROBUST_SCALE_MMHG)
    r = residual / scale
    return np.where(np.abs(r) < 1, (1 - r**2) ** 2, 0.0)


def _not_gross(cuff_mmHg: np.ndarray, amplitude: np.ndarray) -> np.ndarray:
    """Starting weights: 0 for a beat several times the size of its neighbours, else 1.

    A knock on the cuff can add more than the whole pulsation to a beat. Left in the first,
    unweighted pass it drags the line so far that, at the ends of the envelope where a beat
    has neighbours on one side only, the honest beats look like the outliers instead.
    """
    order = np.argsort(cuff_mmHg, kind="stable")
    typical = np.empty_like(amplitude)
    typical[order] = running_median(amplitude[order], GROSS_WINDOW_BEATS)
    return np.where(amplitude > GROSS_FACTOR * typical + MIN_ROBUST_SCALE_MMHG, 0.0, 1.0)


def _weighted_line_at_zero(offset: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per row, the weighted least-squares line through (offset, y) evaluated at offset 0."""
    sw = w.sum(axis=1)
    sx = (w * offset).sum(axis=1)
    sy = w @ y
    sxx = (w * offset**2).sum(axis=1)
    sxy = (w * offset) @ y
    det = sw * sxx - sx**2
    flat = det <= 1e-9 * np.maximum(sw * sxx, 1e-12)
    # Intercept of the fitted line; a neighbourhood at one pressure gets its weighted mean.
    with np.errstate(divide="ignore", invalid="ignore"):
        line = (sxx * sy - sx * sxy) / det
        mean = sy / sw
    return np.where(flat, mean, line)


def noise_level(amplitude_mmHg: np.ndarray, smoothed: np.ndarray) -> float:
    """Beat-to-beat scatter around the smooth (robust standard deviation)."""
    return 1.4826 * float(np.median(np.abs(amplitude_mmHg - smoothed)))


def read_occlusion(
    cuff_mmHg: np.ndarray,
    amplitude_mmHg: np.ndarray,
    smoothed: np.ndarray,
    arterial_fraction: float = ARTERIAL_FRACTION,
) -> OcclusionReading:
    """Locate the peak, the residual floor above it and the occlusion between them.

    Occlusion is read where the arterial part has fallen to `arterial_fraction` of its peak.
    """
    order = np.argsort(cuff_mmHg, kind="stable")
    cuff, smooth = cuff_mmHg[order], smoothed[order]
    peak = int(np.argmax(smooth))
    peak_amplitude = float(smooth[peak])
    noise = noise_level(amplitude_mmHg, smoothed)
    above = smooth[peak + 1 :]
    # The residual floor is the lowest the smooth envelope gets above the peak.
    floor = float(above.min()) if above.size else peak_amplitude
    snr = (peak_amplitude - floor) / max(noise, 0.05)
    low_edge = peak < min(2, cuff.size - 1)
    reading = OcclusionReading(
        fade_mmHg=None,
        confirmed=False,
        peak_cuff_mmHg=float(cuff[peak]),
        peak_amplitude_mmHg=peak_amplitude,
        floor_mmHg=floor,
        beats_above=0,
        peak_at_low_edge=bool(low_edge),
        snr=float(snr),
    )
    if (
        above.size == 0
        or floor > NOT_OCCLUDED_RATIO * peak_amplitude
        or peak_amplitude - floor < MIN_ARTERIAL_PEAK_MMHG
    ):
        return reading
    threshold = floor + arterial_fraction * (peak_amplitude - floor)
    lop, beats_above, confirmed = _sustained_fade(cuff, smooth, peak, threshold)
    return OcclusionReading(
        fade_mmHg=lop,
        confirmed=confirmed,
        peak_cuff_mmHg=float(cuff[peak]),
        peak_amplitude_mmHg=peak_amplitude,
        floor_mmHg=floor,
        beats_above=beats_above,
        peak_at_low_edge=bool(low_edge),
        snr=float(snr),
    )


def _sustained_fade(
    cuff: np.ndarray, smooth: np.ndarray, peak: int, threshold: float
) -> tuple[float | None, int, bool]:
    """First fall below the threshold that stays below for the confirming beats and headroom.

    A shorter dip between peak and occlusion is noise, and a rise after a sustained fade-out
    (the first beats after the valve opens, a knock on the cuff) does not undo the occlusion.
    Returns the crossing pressure, the beats below after it and whether that run confirms it.
    """
    below = smooth < threshold
    j = peak + 1
    while j < cuff.size:
        if not below[j]:
            j += 1
            continue
        # Linear interpolation between the last beat above and the first below the threshold.
        share = (smooth[j - 1] - threshold) / (smooth[j - 1] - smooth[j])
        crossing = float(cuff[j - 1] + share * (cuff[j] - cuff[j - 1]))
        end = j
        while end < cuff.size and below[end]:
            end += 1
        run = end - j
        if run >= BEATS_ABOVE_TO_CONFIRM and cuff[end - 1] >= crossing + HEADROOM_TO_CONFIRM_MMHG:
            return crossing, run, True
        if end == cuff.size:
            return crossing, run, False
        j = end
    return None, 0, False


def settled(
    cuff_mmHg: np.ndarray,
    amplitude_mmHg: np.ndarray,
    reading: OcclusionReading,
    arterial_fraction: float = ARTERIAL_FRACTION,
) -> bool:
    """Would the fade-out read the same without the highest beats?

    While the cuff is still on the arterial decline, the highest beats pass for the residual
    floor and the reading climbs with every new beat; past occlusion it stays put.
    """
    if reading.fade_mmHg is None:
        return False
    keep = cuff_mmHg <= cuff_mmHg.max() - SETTLE_DROP_MMHG
    if np.count_nonzero(keep) < 5:
        return False
    smoothed, _ = smooth_oscillogram(cuff_mmHg[keep], amplitude_mmHg[keep])
    earlier = read_occlusion(cuff_mmHg[keep], amplitude_mmHg[keep], smoothed, arterial_fraction)
    return (
        earlier.fade_mmHg is not None
        and abs(earlier.fade_mmHg - reading.fade_mmHg) <= SETTLE_TOLERANCE_MMHG
    )
