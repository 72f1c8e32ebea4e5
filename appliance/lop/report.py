"""What an LOP measurement reports: each reading, and the repeats combined with a spread flag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Good practice (domain page): measure twice a minute apart and flag a spread over 15 mmHg.
SPREAD_FLAG_MMHG = 15.0


@dataclass(frozen=True)
class Reading:
    """One inflation: the occlusion pressure or why there is none, and what it took."""

    lop_mmHg: float | None
    reason: str | None
    confidence: float
    heart_rate_bpm: float | None
    duration_s: float
    max_pressure_mmHg: float
    # Cuff pressure of the largest pulsations (about mean arterial pressure under the cuff).
    peak_pulsation_mmHg: float | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "lop_mmHg": _round(self.lop_mmHg),
            "reason": self.reason,
            "confidence": round(self.confidence, 2),
            "heart_rate_bpm": _round(self.heart_rate_bpm),
            "duration_s": round(self.duration_s, 2),
            "max_pressure_mmHg": round(self.max_pressure_mmHg, 1),
            "peak_pulsation_mmHg": _round(self.peak_pulsation_mmHg),
        }


def combine(readings: list[Reading], context: dict[str, Any], total_s: float) -> dict[str, Any]:
    """The result the controller publishes as `last_lop`.

    The LOP is the mean of the readings, and only when every requested reading gave a value:
    a failed repeat is a reason to look at the cuff, not to trust the other reading alone.
    """
    values = [r.lop_mmHg for r in readings if r.lop_mmHg is not None]
    failed = next((r for r in readings if r.lop_mmHg is None), None)
    spread = max(values) - min(values) if len(values) > 1 else None
    first = readings[0] if readings else None
    lop = sum(values) / len(values) if values and failed is None else None
    return {
        "lop_mmHg": _round(lop),
        "readings": [r.to_json_dict() for r in readings],
        "spread_mmHg": _round(spread),
        "spread_flag": spread is not None and spread > SPREAD_FLAG_MMHG,
        "reason": failed.reason if failed is not None else None,
        "confidence": round(min((r.confidence for r in readings), default=0.0), 2),
        "heart_rate_bpm": None if first is None else _round(first.heart_rate_bpm),
        "duration_s": round(total_s, 2),
        "max_pressure_mmHg": round(max((r.max_pressure_mmHg for r in readings), default=0.0), 1),
        **context,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def interrupted(result: dict[str, Any], why: str) -> dict[str, Any]:
    """A measurement a fault ended: never a value, but the readings so far and the reason.

    Published like any other result, so the console stops waiting on it and the record says
    why there is no LOP; a first reading finished before the fault is kept for the record only.
    """
    return result | {
        "lop_mmHg": None,
        "spread_mmHg": None,
        "spread_flag": False,
        "reason": why,
        "confidence": 0.0,
    }
