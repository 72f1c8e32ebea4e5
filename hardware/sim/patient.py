"""Simulated patients: limb, posture, cuff, blood pressure, and the artery under the cuff."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

Limb = Literal["arm", "leg"]
Posture = Literal["supine", "seated", "standing"]

LIMBS: tuple[Limb, ...] = ("arm", "leg")
POSTURES: tuple[Posture, ...] = ("supine", "seated", "standing")

# Thigh LOP with the reference cuff, Hughes 2018 (domain page): supine, seated, standing.
_THIGH_LOP_BY_POSTURE = {"supine": 187.0, "seated": 204.0, "standing": 242.0}
# Assumed: the Hughes participants' brachial SBP and the width of the cuff used.
_REFERENCE_SBP_mmHg = 120.0
REFERENCE_CUFF_WIDTH_cm = 11.5
# Cuff pressure needed per mmHg of arterial pressure with the reference cuff. Thigh: from Hughes
# supine. Arm: "a bit above SBP with a wide cuff" (domain page); 6 % is our choice.
_TRANSMISSION_AT_REFERENCE = {"leg": 187.0 / _REFERENCE_SBP_mmHg, "arm": 1.06}
# Extra arterial pressure at the cuff from hanging below the heart. Thigh values make the model
# reproduce Hughes 2018 exactly; arm values are small because the upper arm stays near heart level.
_HYDROSTATIC_mmHg = {
    "leg": {
        p: lop / _TRANSMISSION_AT_REFERENCE["leg"] - _REFERENCE_SBP_mmHg
        for p, lop in _THIGH_LOP_BY_POSTURE.items()
    },
    "arm": {"supine": 0.0, "seated": 4.0, "standing": 6.0},
}
# Width effect, domain page: 5 cm cuff 235 vs 13.5 cm cuff 144 mmHg on the same thighs.
_NARROW_CUFF = (5.0, 235.0)
_WIDE_CUFF = (13.5, 144.0)

# Arterial volume pulsation under the reference cuff at 40 mmHg pulse pressure (mL). Chosen so the
# cuff shows 1.5-2.5 mmHg peak-to-peak at MAP, inside the domain page's 0.5-3 mmHg.
_PULSE_VOLUME_AT_REFERENCE_mL = {"arm": 1.6, "leg": 4.5}
# How fast the residual above LOP fades further with pressure (mmHg, e-folding).
_RESIDUAL_TAIL_mmHg = 100.0


def _width_exponent() -> float:
    """Exponent b in transmission = 1 + (T_ref - 1) * (w_ref / w) ** b that reproduces 235/144.

    Only the part of the cuff pressure lost in the tissue depends on width, so the law acts on
    the excess over 1; bisection because the ratio has no closed form in b.
    """
    excess = _TRANSMISSION_AT_REFERENCE["leg"] - 1.0
    target = _NARROW_CUFF[1] / _WIDE_CUFF[1]

    def ratio(b: float) -> float:
        narrow = 1.0 + excess * (REFERENCE_CUFF_WIDTH_cm / _NARROW_CUFF[0]) ** b
        wide = 1.0 + excess * (REFERENCE_CUFF_WIDTH_cm / _WIDE_CUFF[0]) ** b
        return narrow / wide

    lo, hi = 0.1, 5.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if ratio(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


_WIDTH_EXPONENT = _width_exponent()


@dataclass(frozen=True)
class Patient:
    """One patient with one cuff on one limb in one posture.

    `lop_scale` is the individual tissue factor (limb girth, fat, muscle) that makes two people with
    the same blood pressure need different cuff pressures. `lop_mmHg` pins the LOP instead of
    deriving it; `pulse_volume_mL` likewise pins the arterial volume pulsation under the cuff.
    """

    limb: Limb = "leg"
    posture: Posture = "seated"
    cuff_width_cm: float = REFERENCE_CUFF_WIDTH_cm
    sbp_mmHg: float = 120.0
    dbp_mmHg: float = 80.0
    heart_rate_bpm: float = 70.0
    hrv_fraction: float = 0.03  # SD of beat-to-beat interval, fraction of the mean
    respiratory_rate_per_min: float = 14.0  # sinus arrhythmia and pulse-amplitude modulation
    residual_fraction: float = 0.10  # pulsation above LOP, fraction of the peak at MAP
    lop_scale: float = 1.0
    lop_mmHg: float | None = None
    pulse_volume_mL: float | None = None
    # Premature beats (ventricular ectopics, common in older patients): every
    # `ectopic_every`-th beat (0: none) a weak extra pulse (`ectopic_size` of a normal one) comes
    # `ectopic_coupling` of an interval after its beat starts, and the next beat is skipped (the
    # full compensatory pause). A still cuff then shows an upstroke where a watch of the
    # sensing line expects the last beat's run-off.
    ectopic_every: int = 0
    ectopic_coupling: float = 0.45
    ectopic_size: float = 0.6

    def __post_init__(self) -> None:
        if self.limb not in LIMBS:
            raise ValueError(f"limb must be one of {LIMBS}, got {self.limb!r}")
        if self.posture not in POSTURES:
            raise ValueError(f"posture must be one of {POSTURES}, got {self.posture!r}")
        _check_range("cuff_width_cm", self.cuff_width_cm, 3.0, 25.0)
        _check_range("sbp_mmHg", self.sbp_mmHg, 60.0, 250.0)
        _check_range("dbp_mmHg", self.dbp_mmHg, 30.0, self.sbp_mmHg - 10.0)
        _check_range("heart_rate_bpm", self.heart_rate_bpm, 30.0, 220.0)
        _check_range("hrv_fraction", self.hrv_fraction, 0.0, 0.2)
        _check_range("respiratory_rate_per_min", self.respiratory_rate_per_min, 4.0, 40.0)
        _check_range("residual_fraction", self.residual_fraction, 0.0, 0.5)
        _check_range("lop_scale", self.lop_scale, 0.5, 2.0)
        if self.ectopic_every:
            _check_range("ectopic_every", self.ectopic_every, 2, 100)
        _check_range("ectopic_coupling", self.ectopic_coupling, 0.2, 0.9)
        _check_range("ectopic_size", self.ectopic_size, 0.0, 1.5)
        if self.lop_mmHg is not None:
            _check_range("lop_mmHg", self.lop_mmHg, 50.0, 600.0)
        if self.pulse_volume_mL is not None:
            _check_range("pulse_volume_mL", self.pulse_volume_mL, 0.0, 50.0)

    @property
    def map_mmHg(self) -> float:
        """Brachial mean arterial pressure (one third of the pulse pressure above DBP)."""
        return self.dbp_mmHg + (self.sbp_mmHg - self.dbp_mmHg) / 3.0

    @property
    def hydrostatic_mmHg(self) -> float:
        """Arterial pressure the cuffed segment gains by sitting below the heart in this posture."""
        return _HYDROSTATIC_mmHg[self.limb][self.posture]

    @property
    def transmission(self) -> float:
        """Cuff mmHg needed per mmHg of arterial pressure: tissue absorbs part of the squeeze."""
        excess = _TRANSMISSION_AT_REFERENCE[self.limb] - 1.0
        width_factor = (REFERENCE_CUFF_WIDTH_cm / self.cuff_width_cm) ** _WIDTH_EXPONENT
        return (1.0 + excess * width_factor) * self.lop_scale

    @property
    def true_lop_mmHg(self) -> float:
        """Cuff pressure that stops arterial inflow: systolic pressure at the cuff, transmitted."""
        if self.lop_mmHg is not None:
            return self.lop_mmHg
        return self.transmission * (self.sbp_mmHg + self.hydrostatic_mmHg)

    @property
    def cuff_map_mmHg(self) -> float:
        """Cuff pressure at which the artery is unloaded on average: where pulsations peak.

        Scaled with the LOP so that a pinned LOP keeps MAP and LOP in their natural proportion.
        """
        local_sbp = self.sbp_mmHg + self.hydrostatic_mmHg
        return self.true_lop_mmHg * (self.map_mmHg + self.hydrostatic_mmHg) / local_sbp

    @property
    def cuff_dbp_mmHg(self) -> float:
        local_sbp = self.sbp_mmHg + self.hydrostatic_mmHg
        return self.true_lop_mmHg * (self.dbp_mmHg + self.hydrostatic_mmHg) / local_sbp

    @property
    def arterial_pulse_volume_mL(self) -> float:
        """Peak arterial volume swing under the cuff; grows with cuff width and pulse pressure."""
        if self.pulse_volume_mL is not None:
            return self.pulse_volume_mL
        pulse_pressure = self.sbp_mmHg - self.dbp_mmHg
        return (
            _PULSE_VOLUME_AT_REFERENCE_mL[self.limb]
            * (self.cuff_width_cm / REFERENCE_CUFF_WIDTH_cm)
            * (pulse_pressure / 40.0)
        )

    def pulse_envelope(self, cuff_mmHg: float) -> float:
        """Pulsation size at this cuff pressure as a fraction of the peak (the oscillogram).

        Below MAP the artery is stiff under low transmural pressure: a wide Lorentzian, about 0.7 at
        DBP like real oscillograms. Between MAP and LOP the artery closes for a growing part of each
        beat; above LOP only the proximal edge still knocks (domain page), fading slowly.
        """
        peak_at = self.cuff_map_mmHg
        lop = self.true_lop_mmHg
        residual = self.residual_fraction
        if cuff_mmHg <= peak_at:
            width = 1.6 * max(peak_at - self.cuff_dbp_mmHg, 5.0)
            x = (peak_at - cuff_mmHg) / width
            return 1.0 / (1.0 + x * x)
        if cuff_mmHg < lop:
            y = (cuff_mmHg - peak_at) / (lop - peak_at)
            return residual + (1.0 - residual) * (1.0 - y * y)
        return residual * math.exp(-(cuff_mmHg - lop) / _RESIDUAL_TAIL_mmHg)


def beat_waveform(samples: int) -> tuple[float, ...]:
    """One arterial volume pulse over a beat, 0 at both ends and 1 at its peak.

    Sharp systolic upstroke (first 12 % of the beat), slower run-off with a small dicrotic wave;
    zero at both ends so beats of different size and length join without steps.
    """
    upstroke = 0.12

    def raw(phase: float) -> float:
        if phase < upstroke:
            return 0.5 * (1.0 - math.cos(math.pi * phase / upstroke))
        decay = math.exp(-(phase - upstroke) / 0.22)
        dicrotic = 0.12 * math.exp(-(((phase - 0.42) / 0.05) ** 2))
        return decay + dicrotic

    end = raw(1.0)
    values = []
    for i in range(samples):
        phase = i / samples
        ramp = 0.0 if phase < upstroke else end * (phase - upstroke) / (1.0 - upstroke)
        values.append(raw(phase) - ramp)
    peak = max(values)
    return tuple(max(v, 0.0) / peak for v in values)


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not (lo <= value <= hi):
        raise ValueError(f"{name} must be within [{lo:g}, {hi:g}], got {value!r}")


def random_patient(
    rng_or_seed: random.Random | int,
    limb: Limb | None = None,
    posture: Posture | None = None,
    *,
    cuff_width_cm: float | None = None,
    max_lop_mmHg: float | None = None,
) -> Patient:
    """A plausible patient: arm or leg, any posture, HR 45-150 bpm, SBP 100-170 mmHg.

    `max_lop_mmHg` redraws until the LOP is at most that (a narrow cuff on a standing hypertensive
    thigh can need more than any cuff device may apply); after 200 tries it raises ValueError.
    """
    rng = rng_or_seed if isinstance(rng_or_seed, random.Random) else random.Random(rng_or_seed)
    for _ in range(200):
        patient = _draw_patient(rng, limb, posture, cuff_width_cm)
        if max_lop_mmHg is None or patient.true_lop_mmHg <= max_lop_mmHg:
            return patient
    raise ValueError(f"no patient with LOP <= {max_lop_mmHg} mmHg for these constraints")


def _draw_patient(
    rng: random.Random, limb: Limb | None, posture: Posture | None, cuff_width_cm: float | None
) -> Patient:
    chosen_limb: Limb = limb if limb is not None else rng.choice(LIMBS)
    chosen_posture: Posture = posture if posture is not None else rng.choice(POSTURES)
    if cuff_width_cm is None:
        # Commercial BFR cuffs: narrow arm bands to wide contoured thigh cuffs.
        lo, hi = (5.0, 12.0) if chosen_limb == "arm" else (7.0, 15.0)
        cuff_width_cm = round(rng.uniform(lo, hi), 1)
    sbp = rng.uniform(100.0, 170.0)
    dbp = min(max(sbp * rng.uniform(0.55, 0.72), 55.0), sbp - 25.0)
    return Patient(
        limb=chosen_limb,
        posture=chosen_posture,
        cuff_width_cm=cuff_width_cm,
        sbp_mmHg=round(sbp, 1),
        dbp_mmHg=round(dbp, 1),
        heart_rate_bpm=round(rng.uniform(45.0, 150.0), 1),
        hrv_fraction=rng.uniform(0.01, 0.05),
        respiratory_rate_per_min=rng.uniform(8.0, 22.0),
        residual_fraction=rng.uniform(0.05, 0.15),
        lop_scale=rng.uniform(0.92, 1.08),
    )
