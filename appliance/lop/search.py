"""How fast to inflate: quickly up to the largest pulsations, then finely through occlusion.

Only the fade-out between mean arterial pressure and occlusion needs dense beats: the reading is
where the arterial pulsation has all but faded, and the peak before it is broad, so a few beats
on the way up find it well enough. Three stages:
- approach: until the estimator has beats enough for an envelope (8), at a moderate spacing so
  that even a low mean arterial pressure is not passed before it can be seen;
- coarse: while the envelope is still rising, fast;
- fine: once the envelope has stopped rising or fallen below its peak, slowly through the
  fade-out.
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
    """Spacing (mmHg per beat) and rate limits (mmHg/s) of each stage."""

    approach_mmHg_per_beat: float = 4.0
    approach_rate_mmHg_s: tuple[float, float] = (3.0, 6.0)
    coarse_mmHg_per_beat: float = 6.0
    coarse_rate_mmHg_s: tuple[float, float] = (4.5, 7.5)
    fine_mmHg_per_beat: float = 3.5
    fine_rate_mmHg_s: tuple[float, float] = (2.6, 7.0)
    # Until the estimator has found the heart rate.
    assumed_heart_rate_bpm: float = 60.0
    plausible_heart_rate_bpm: tuple[float, float] = (40.0, 180.0)
    # The peak counts as passed once the newest beat has fallen below this share of it and the
    # cuff is this far above it: the pulsations are then on their way to occlusion.
    past_peak_share: float = 0.95
    past_peak_mmHg: float = 5.0
    # Or the envelope has stopped rising: over the last 10 mmHg it grew by less than 3 %. Both
    # are judged on the estimator's smooth, which lags the cuff by a beat or two.
    flat_over_mmHg: float = 10.0
    flat_rise: float = 0.03
    min_beats: int = 8


class InflationSearch:
    """Stage and rate of the inflation, updated from each new estimate of the trace so far."""

    def __init__(self, settings: SearchSettings | None = None) -> None:
        self.settings = settings or SearchSettings()
        self.stage = APPROACH
        self.heart_rate_bpm: float | None = None
        # Cuff pressure at which the fine stage began (None before).
        self.fine_from_mmHg: float | None = None

    def update(self, estimate: LopEstimate, pressure_mmHg: float) -> None:
        s = self.settings
        low, high = s.plausible_heart_rate_bpm
        if estimate.heart_rate_bpm is not None and low <= estimate.heart_rate_bpm <= high:
            self.heart_rate_bpm = estimate.heart_rate_bpm
        if self.stage == FINE or len(estimate.envelope) < s.min_beats:
            return
        if self._past_peak(estimate.envelope):
            self.stage = FINE
            self.fine_from_mmHg = pressure_mmHg
        else:
            self.stage = COARSE

    @property
    def rate_mmHg_s(self) -> float:
        s = self.settings
        beats_per_s = (self.heart_rate_bpm or s.assumed_heart_rate_bpm) / 60.0
        per_beat, (low, high) = {
            APPROACH: (s.approach_mmHg_per_beat, s.approach_rate_mmHg_s),
            COARSE: (s.coarse_mmHg_per_beat, s.coarse_rate_mmHg_s),
            FINE: (s.fine_mmHg_per_beat, s.fine_rate_mmHg_s),
        }[self.stage]
        return float(np.clip(per_beat * beats_per_s, low, high))

    def _past_peak(self, envelope: Envelope) -> bool:
        s = self.settings
        order = np.argsort(envelope.cuff_mmHg, kind="stable")
        cuff, smooth = envelope.cuff_mmHg[order], envelope.smoothed_mmHg[order]
        peak = int(np.argmax(smooth))
        newest = float(smooth[-1])
        if cuff[-1] - cuff[peak] >= s.past_peak_mmHg and newest <= s.past_peak_share * smooth[peak]:
            return True
        if cuff[-1] - cuff[0] < s.flat_over_mmHg:
            return False
        earlier = float(np.interp(cuff[-1] - s.flat_over_mmHg, cuff, smooth))
        return earlier > 0 and newest <= (1.0 + s.flat_rise) * earlier
