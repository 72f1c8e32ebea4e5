"""When an inflation may stop: the estimator's confirmation, made strict enough to act on.

The estimator confirms occlusion once the fade-out reads the same without the top 5 mmHg of the
trace. On a slow, nearly linear fade (a thigh whose pulsations shrink over 60-70 mmHg) that
test can pass while the cuff is still on the decline: the lowest beats so far pass for the
residual floor, and the reading lands well below occlusion. Stopping the inflation is final, so
the procedure asks more before it stops:
- the pulsations must have been seen to rise to their peak before they fade;
- the residual floor must be small against the peak (a floor at half the peak is a decline),
  and the pulsations above the reading must not grow back;
- leaving out the top 8 mmHg must move the reading by no more than 4 mmHg: above occlusion the
  envelope is flat and the reading stays put, on a decline it moves with the top.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.lop.oscillogram import read_occlusion, smooth_oscillogram
from appliance.lop.result import LopEstimate

MAX_FLOOR_SHARE = 0.4
# Above occlusion the envelope stays down; pulsations that grow back past a quarter of the
# arterial peak mean the "fade" was a dip (knocks on the cuff around weak early pulsations).
# A third let a fast heart's early pulsations grow back to 29 % and stop at 92 mmHg of 183.
RESURGENCE_SHARE = 0.25
# The inflation starts below diastolic pressure, so the rise of the pulsations to their peak
# must be on the record: a "peak" at the start of the trace is a transient, not the envelope.
RISE_SHARE = 0.8
DROP_MMHG = 8.0
TOLERANCE_MMHG = 4.0
MIN_BEATS_LEFT = 8


@dataclass(frozen=True)
class Verdict:
    """An estimate of the trace so far and whether the inflation may stop on it."""

    estimate: LopEstimate
    stop: bool


def may_stop(estimate: LopEstimate, arterial_fraction: float) -> bool:
    if not estimate.occlusion_confirmed or estimate.lop_mmHg is None:
        return False
    envelope = estimate.envelope
    cuff, amplitude, smoothed = envelope.cuff_mmHg, envelope.amplitude_mmHg, envelope.smoothed_mmHg
    reading = read_occlusion(cuff, amplitude, smoothed, arterial_fraction)
    peak = reading.peak_amplitude_mmHg
    if reading.floor_mmHg > MAX_FLOOR_SHARE * peak:
        return False
    below_peak = smoothed[cuff < reading.peak_cuff_mmHg]
    if below_peak.size == 0 or below_peak.min() > RISE_SHARE * peak:
        return False
    above = smoothed[cuff > estimate.lop_mmHg]
    if above.size and above.max() > reading.floor_mmHg + RESURGENCE_SHARE * (
        peak - reading.floor_mmHg
    ):
        return False
    keep = cuff <= cuff.max() - DROP_MMHG
    if np.count_nonzero(keep) < MIN_BEATS_LEFT:
        return False
    earlier_smooth, _ = smooth_oscillogram(cuff[keep], amplitude[keep])
    earlier = read_occlusion(cuff[keep], amplitude[keep], earlier_smooth, arterial_fraction)
    return (
        earlier.fade_mmHg is not None
        and abs(earlier.fade_mmHg - estimate.lop_mmHg) <= TOLERANCE_MMHG
    )
