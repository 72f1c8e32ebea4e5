"""How fast to inflate: quickly up to the largest pulsations, then finely through occlusion.

Only the fade-out between mean arterial pressure and occlusion needs dense beats: the reading is
where the arterial pulsation falls to a third of its peak, and the peak itself is broad, so a
few beats on the way up find it well enough. Rates are set in mmHg per beat, so a slow heart
gets a slow ramp and a fast heart a fast one, within limits the pump and the estimator allow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.lop.result import Envelope, LopEstimate

COARSE = "coarse"
FINE = "fine"


@dataclass(frozen=True)
class SearchSettings:
    coarse_mmHg_per_beat: float = 8.0
    fine_mmHg_per_beat: float = 3.5
    coarse_rate_mmHg_s: tuple[float, float] = (6.0, 8.0)
    fine_rate_mmHg_s: tuple[float, float] = (2.5, 7.0)
    # Until the estimator has found the heart rate.
    assumed_heart_rate_bpm: float = 60.0
    plausible_heart_rate_bpm: tuple[float, float] = (40.0, 180.0)
    # The peak counts as passed once the newest beats have fallen below this share of it and
    # the cuff is this far above it; pulsations are then on their way to occlusion.
    past_peak_share: float = 0.95
    past_peak_mmHg: float = 5.0
    newest_beats: int = 1
    min_beats: int = 6


class InflationSearch:
    """Coarse until the estimator's envelope shows the pulsations past their peak, then fine."""

    def __init__(self, settings: SearchSettings | None = None) -> None:
        self.settings = settings or SearchSettings()
        self.phase = COARSE
        self.heart_rate_bpm: float | None = None
        # Cuff pressure at which the fine search began (None while coarse).
        self.fine_from_mmHg: float | None = None

    def update(self, estimate: LopEstimate, pressure_mmHg: float) -> None:
        s = self.settings
        low, high = s.plausible_heart_rate_bpm
        if estimate.heart_rate_bpm is not None and low <= estimate.heart_rate_bpm <= high:
            self.heart_rate_bpm = estimate.heart_rate_bpm
        if self.phase == COARSE and self._past_peak(estimate.envelope):
            self.phase = FINE
            self.fine_from_mmHg = pressure_mmHg

    @property
    def rate_mmHg_s(self) -> float:
        s = self.settings
        beats_per_s = (self.heart_rate_bpm or s.assumed_heart_rate_bpm) / 60.0
        if self.phase == COARSE:
            per_beat, (low, high) = s.coarse_mmHg_per_beat, s.coarse_rate_mmHg_s
        else:
            per_beat, (low, high) = s.fine_mmHg_per_beat, s.fine_rate_mmHg_s
        return float(np.clip(per_beat * beats_per_s, low, high))

    def _past_peak(self, envelope: Envelope) -> bool:
        s = self.settings
        if len(envelope) < s.min_beats:
            return False
        order = np.argsort(envelope.cuff_mmHg, kind="stable")
        cuff, smooth = envelope.cuff_mmHg[order], envelope.smoothed_mmHg[order]
        peak = int(np.argmax(smooth))
        newest = float(np.mean(smooth[-s.newest_beats :]))
        return cuff[-1] - cuff[peak] >= s.past_peak_mmHg and newest <= s.past_peak_share * float(
            smooth[peak]
        )
