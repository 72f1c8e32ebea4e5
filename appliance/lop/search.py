"""How fast to inflate: quickly up to the largest pulsations, then finely through occlusion.

Only the fade-out between mean arterial pressure and occlusion needs dense beats: the reading is
where the arterial pulsation has all but faded, and the peak before it is broad, so a few beats
on the way up find it well enough. Three stages:
- approach: until the estimator has beats enough for an envelope (8), at a moderate spacing so
  that even a low mean arterial pressure is not passed before it can be seen;
- coarse: while the envelope is still rising, fast;
- fine: once the newest beats have fallen below the peak, slowly through the fade-out (back
  to a moderate rate if the pulsations grow again: the "fall" was a knock or noise).
Rates are set in mmHg per beat, so a slow heart gets a slow ramp and a fast heart a fast one,
within limits that the pump and the estimator allow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.lop.result import Envelope, LopEstimate

APPROACH = "approach"
COARSE = "coarse"
FINE = "fine"


@dataclass(frozen=True)
class SearchSettings:
    """Spacing (mmHg per beat) and rate limits (mmHg/s) of each stage; defaults for an arm.

    The coarse stage is limited by how late the estimator sees the peak (a beat or two and
    half a second): on an arm, occlusion can be as little as 20 mmHg above the peak.
    """

    approach_mmHg_per_beat: float = 4.0
    approach_rate_mmHg_s: tuple[float, float] = (3.0, 6.0)
    coarse_mmHg_per_beat: float = 5.0
    coarse_rate_mmHg_s: tuple[float, float] = (4.0, 6.0)
    fine_mmHg_per_beat: float = 3.5
    fine_rate_mmHg_s: tuple[float, float] = (2.6, 7.0)
    # Until the estimator has found the heart rate.
    assumed_heart_rate_bpm: float = 60.0
    plausible_heart_rate_bpm: tuple[float, float] = (40.0, 180.0)
    # The peak counts as passed once the newest beat has fallen below this share of it and the
    # cuff is this far above it: the pulsations are then on their way to occlusion.
    past_peak_share: float = 0.95
    past_peak_mmHg: float = 5.0
    # Back to coarse if, this far above where the fine stage began, the newest beats are the
    # largest so far and have grown by this factor since.
    resume_after_mmHg: float = 10.0
    resume_growth: float = 1.05
    min_beats: int = 8
    # Occlusion lies at most ~70 mmHg above the largest pulsations (a thigh's mean arterial to
    # occlusion pressure) plus the room to confirm it: beyond this the pulsations are lost.
    max_occlusion_above_peak_mmHg: float = 90.0


class InflationSearch:
    """Stage and rate of the inflation, updated from each new estimate of the trace so far."""

    def __init__(self, settings: SearchSettings | None = None) -> None:
        self.settings = settings or SearchSettings()
        self.stage = APPROACH
        self.heart_rate_bpm: float | None = None
        # Cuff pressure of the largest pulsations so far (None until there is an envelope).
        self.peak_mmHg: float | None = None
        # Top of the envelope and its size where the fine stage began.
        self._fine_from = (0.0, 0.0)
        self._resumed = False

    def update(self, estimate: LopEstimate) -> None:
        s = self.settings
        low, high = s.plausible_heart_rate_bpm
        if estimate.heart_rate_bpm is not None and low <= estimate.heart_rate_bpm <= high:
            self.heart_rate_bpm = estimate.heart_rate_bpm
        if len(estimate.envelope) < s.min_beats:
            return
        if estimate.peak_pulsation_mmHg is not None:
            self.peak_mmHg = estimate.peak_pulsation_mmHg
        envelope = estimate.envelope
        newest = int(np.argmax(envelope.cuff_mmHg))
        top, size = float(envelope.cuff_mmHg[newest]), float(envelope.smoothed_mmHg[newest])
        if self.stage != FINE:
            if self._past_peak(envelope):
                self.stage = FINE
                self._fine_from = (top, size)
            else:
                self.stage = COARSE
        elif (
            top >= self._fine_from[0] + s.resume_after_mmHg
            and size >= s.resume_growth * self._fine_from[1]
            and newest == int(np.argmax(envelope.smoothed_mmHg))
        ):
            # The "decline" was a knock or noise: the pulsations have grown on since. Resume,
            # but no faster than the approach: the peak may be close after all.
            self.stage = COARSE
            self._resumed = True

    def lost(self, pressure_mmHg: float) -> bool:
        """True once the cuff is so far above the largest pulsations that occlusion is behind."""
        return (
            self.peak_mmHg is not None
            and pressure_mmHg >= self.peak_mmHg + self.settings.max_occlusion_above_peak_mmHg
        )

    @property
    def rate_mmHg_s(self) -> float:
        s = self.settings
        beats_per_s = (self.heart_rate_bpm or s.assumed_heart_rate_bpm) / 60.0
        stage = APPROACH if self.stage == COARSE and self._resumed else self.stage
        per_beat, (low, high) = {
            APPROACH: (s.approach_mmHg_per_beat, s.approach_rate_mmHg_s),
            COARSE: (s.coarse_mmHg_per_beat, s.coarse_rate_mmHg_s),
            FINE: (s.fine_mmHg_per_beat, s.fine_rate_mmHg_s),
        }[stage]
        return float(np.clip(per_beat * beats_per_s, low, high))

    def _past_peak(self, envelope: Envelope) -> bool:
        s = self.settings
        order = np.argsort(envelope.cuff_mmHg, kind="stable")
        cuff, smooth = envelope.cuff_mmHg[order], envelope.smoothed_mmHg[order]
        peak = int(np.argmax(smooth))
        return bool(
            cuff[-1] - cuff[peak] >= s.past_peak_mmHg
            and smooth[-1] <= s.past_peak_share * smooth[peak]
        )
