"""Transducer transfer function (MPX5050GP through a divider into the ADS1115) and its calibration.

The MPX5050GP is ratiometric to its 5 V supply: Vout = Vs * (0.018 * P_kPa + 0.04), 0-50 kPa
(0-375 mmHg), so 0.2 V at 0 and 4.7 V at full scale. The ADS1115 runs from 3.3 V and its inputs must
stay below VDD + 0.3 V, so Vout goes through a divider (10k in series, 20k to ground: ratio 2/3), giving 0.133 V at
0 mmHg and 3.13 V at 375 mmHg. At PGA gain 1 (+-4.096 V, 125 uV/LSB) one mmHg is about 64 codes.
"""

from __future__ import annotations

from dataclasses import dataclass

KPA_PER_MMHG = 0.133322


@dataclass(frozen=True)
class TransducerModel:
    """Nominal datasheet constants; calibration corrects the real part's offset and span."""

    supply_v: float = 5.0
    offset_ratio: float = 0.04
    sensitivity_ratio_per_kpa: float = 0.018
    divider_ratio: float = 2.0 / 3.0
    saturation_v: float = 4.9

    def __post_init__(self) -> None:
        if not 0 < self.divider_ratio <= 1:
            raise ValueError(f"divider_ratio must be in (0, 1], got {self.divider_ratio}")
        if self.supply_v <= 0 or self.sensitivity_ratio_per_kpa <= 0:
            raise ValueError("supply_v and sensitivity_ratio_per_kpa must be positive")

    def adc_volts(self, mmHg: float) -> float:
        """Voltage the ADC sees for a gauge pressure (used by the emulator)."""
        kpa = mmHg * KPA_PER_MMHG
        out = self.supply_v * (self.sensitivity_ratio_per_kpa * kpa + self.offset_ratio)
        return out * self.divider_ratio

    def nominal_mmHg(self, adc_volts: float) -> float:
        """Invert the datasheet transfer function (before calibration)."""
        out = adc_volts / self.divider_ratio
        kpa = (out / self.supply_v - self.offset_ratio) / self.sensitivity_ratio_per_kpa
        return kpa / KPA_PER_MMHG

    def volts_in_range(self, adc_volts: float) -> bool:
        """False when the input sits where no connected transducer can drive it (a rail).

        Low bound: half the zero-pressure output (the part's offset tolerance is +-0.11 V, a
        disconnected input with its pull-down reads 0 V). High bound: midway between full-scale
        output (4.7 V) and the output's saturation (4.9 V), below the 3.3 V rail after the divider.
        """
        return 0.5 * self.adc_volts(0.0) <= adc_volts <= self.range_high_v()

    def range_high_v(self) -> float:
        """The highest input a connected transducer can give (the range check's upper bound):
        the ADC's full scale must reach it, or readings clip under the pressure cap."""
        return 0.5 * (self.adc_volts(375.0) + self.saturation_v * self.divider_ratio)


@dataclass(frozen=True)
class Calibration:
    """Zero offset and span from a two-point check against a reference gauge.

    corrected = span * (nominal - zero_mmHg). Defaults are the identity (uncalibrated).
    """

    zero_mmHg: float = 0.0
    span: float = 1.0

    def __post_init__(self) -> None:
        if not 0.8 <= self.span <= 1.2:
            raise ValueError(f"calibration span {self.span} is outside 0.8..1.2: check the gauge")
        if abs(self.zero_mmHg) > 30:
            raise ValueError(f"calibration zero {self.zero_mmHg} mmHg is implausible (> 30)")

    def apply(self, nominal_mmHg: float) -> float:
        return self.span * (nominal_mmHg - self.zero_mmHg)

    @classmethod
    def from_points(cls, points: list[tuple[float, float]]) -> Calibration:
        """Least-squares fit from (nominal reading, reference gauge mmHg) pairs, at least two."""
        if len(points) < 2:
            raise ValueError("calibration needs at least two points")
        n = len(points)
        mx = sum(p[0] for p in points) / n
        my = sum(p[1] for p in points) / n
        sxx = sum((p[0] - mx) ** 2 for p in points)
        if sxx < 1.0:
            raise ValueError("calibration points must differ in pressure")
        span = sum((p[0] - mx) * (p[1] - my) for p in points) / sxx
        # reference = span * (nominal - zero)  =>  zero = mx - my / span
        return cls(zero_mmHg=mx - my / span, span=span)
