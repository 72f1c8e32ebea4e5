"""The project's cuff plant: pump, dump valve, leak, cuff air and the limb and artery under it."""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, fields, replace
from typing import Any

from hardware.sim.patient import (
    Limb,
    Patient,
    REFERENCE_CUFF_WIDTH_cm,
    beat_waveform,
    random_patient,
)

ATMOSPHERE_mmHg = 760.0
_PA_PER_mmHg = 133.322
_AIR_DENSITY_kg_m3 = 1.204  # 20 degC, sea level
_MAX_SUBSTEP_s = 0.002  # longer steps are split: the explicit flow update stays accurate
_EXERCISE_WINDOW_s = 10.0  # after a rep the limb still counts as exercising for swelling
_WAVEFORM_SAMPLES = 1000
_WAVEFORM = beat_waveform(_WAVEFORM_SAMPLES)
# LOP a default patient may have: above ~260 mmHg a cuff device cannot measure it under the
# 300 mmHg ceiling (domain page: IEC 80601-2-30 convention), so the default bench stays below.
_DEFAULT_MAX_LOP_mmHg = 260.0


@dataclass(frozen=True)
class PlantParams:
    """Everything about the cuff, pump, valve and limb response; defaults are a thigh cuff.

    Units are in the names. Air amounts and flows are free air, i.e. at atmospheric pressure.
    """

    # Cuff: a slack bladder takes `bladder_fill_mL` at a few mmHg to grip the limb, then only
    # `cuff_compliance_mL_per_mmHg` more per mmHg, falling further as fabric and tissue stiffen.
    bladder_fill_mL: float = 350.0
    bladder_fill_mmHg: float = 12.0
    cuff_compliance_mL_per_mmHg: float = 1.6
    cuff_stiffening_mmHg: float = 300.0  # compliance halves at this pressure
    tubing_volume_mL: float = 15.0
    # Pump: the BOM's 12 V diaphragm pump (9 L/min free flow, sized so a thigh cuff can be
    # refilled while a leg-press rep relaxes: hardware/README.md); flow falls linearly with
    # back-pressure (DC motor model), nothing below `pump_min_duty` (static friction), check valve
    # so no backflow.
    pump_free_flow_mL_s: float = 150.0  # 9 L/min
    pump_stall_mmHg: float = 400.0
    pump_min_duty: float = 0.25
    pump_spinup_s: float = 0.05
    pump_ripple: float = 0.2  # flow modulation by the diaphragm strokes, fraction
    pump_stroke_hz: float = 40.0  # at full speed
    # Normally-open dump valve and a leak, both sharp-edged orifices.
    valve_orifice_mm: float = 2.0
    valve_response_s: float = 0.01
    leak_orifice_mm: float = 0.03
    discharge_coefficient: float = 0.6
    # Spring relief valve on the manifold (hardware/README.md): shut below `relief_crack_mmHg`,
    # opening in proportion to the full orifice at `relief_full_mmHg`. It needs no software,
    # transducer or power: the cap that holds when the reading is wrong. Above the software's
    # 300 mmHg cap, so the supervisor trips first whenever it can see the pressure.
    relief_crack_mmHg: float = 305.0
    relief_full_mmHg: float = 320.0
    relief_orifice_mm: float = 1.5
    # Limb under the cuff: muscle bulge per rep, cadence of a scheduled set, swelling under venous
    # occlusion (faster while exercising), motion artefacts (rate 0 turns them off).
    contraction_mL: float = 45.0
    rep_duration_s: float = 1.5
    rep_period_s: float = 2.5
    swelling_mL_per_min: float = 7.0
    swelling_max_mL: float = 60.0
    swelling_rest_fraction: float = 0.3
    swelling_recovery_s: float = 60.0
    venous_occlusion_mmHg: float = 30.0
    artefact_rate_per_min: float = 1.0
    artefact_mmHg: float = 3.0
    artefact_duration_s: float = 0.15

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{f.name} must be a finite number >= 0, got {value!r}")
        for name in (
            "bladder_fill_mmHg",
            "cuff_compliance_mL_per_mmHg",
            "cuff_stiffening_mmHg",
            "tubing_volume_mL",
            "pump_stall_mmHg",
            "discharge_coefficient",
            "rep_duration_s",
            "rep_period_s",
            "swelling_recovery_s",
            "artefact_duration_s",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.relief_full_mmHg <= self.relief_crack_mmHg:
            raise ValueError("relief_full_mmHg must be above relief_crack_mmHg")
        if self.pump_min_duty >= 1.0:
            raise ValueError(f"pump_min_duty must be < 1, got {self.pump_min_duty!r}")
        if self.pump_ripple >= 1.0:
            raise ValueError(f"pump_ripple must be < 1, got {self.pump_ripple!r}")

    @classmethod
    def for_cuff(
        cls, limb: Limb, cuff_width_cm: float = REFERENCE_CUFF_WIDTH_cm, **overrides: Any
    ) -> PlantParams:
        """Defaults for an arm or thigh cuff of this width; bladder and bulge scale with width."""
        scale = cuff_width_cm / REFERENCE_CUFF_WIDTH_cm
        if limb == "arm":
            # Smaller bladder on a thinner limb; a biceps curl bulges far less than a leg press.
            base = cls(
                bladder_fill_mL=120.0,
                bladder_fill_mmHg=10.0,
                cuff_compliance_mL_per_mmHg=0.6,
                contraction_mL=6.0,
                swelling_mL_per_min=1.6,
                swelling_max_mL=15.0,
                artefact_mmHg=2.0,
            )
        else:
            base = cls()
        scaled = replace(
            base,
            bladder_fill_mL=base.bladder_fill_mL * scale,
            cuff_compliance_mL_per_mmHg=base.cuff_compliance_mL_per_mmHg * scale,
            contraction_mL=base.contraction_mL * scale,
            swelling_mL_per_min=base.swelling_mL_per_min * scale,
            swelling_max_mL=base.swelling_max_mL * scale,
        )
        return replace(scaled, **overrides)


def _orifice_coefficient(diameter_mm: float, discharge_coefficient: float) -> float:
    """k such that free-air flow (mL/s) = k * sqrt(P * (Patm + P)), P gauge in mmHg.

    Subsonic orifice: mass flow Cd*A*sqrt(2*rho_up*dP) with rho_up = rho_atm*(Patm+P)/Patm,
    divided by rho_atm to give free-air volume flow.
    """
    area_m2 = math.pi * (diameter_mm * 1e-3) ** 2 / 4.0
    k_si = discharge_coefficient * area_m2 * math.sqrt(2.0 * _PA_PER_mmHg / _AIR_DENSITY_kg_m3)
    return k_si / math.sqrt(ATMOSPHERE_mmHg) * 1e6


class CuffPlant:
    """A cuff on a patient's limb, stepped at about 1 kHz in simulated time.

    State is the amount of air (free-air mL) and the limb volume pressing into the cuff; the gauge
    pressure solves isothermal ideal gas in a bladder whose volume depends on pressure:
        (Patm + P) * V_air(P, D) = Patm * N,
        V_air = (V_fill - D) * (1 - exp(-P / P_fill)) + C * P_k * ln(1 + P / P_k) + V_tubing,
    where D (mL) is what the limb pushes into the cuff: swelling, muscle bulge, arterial pulse and
    motion. Scaling D by the filling term keeps a slack cuff from feeling the limb.
    """

    __slots__ = (
        "params",
        "patient",
        "_rng",
        "_t",
        "_p",
        "_air",
        "_pump_speed",
        "_pump_phase",
        "_valve",
        "_fill",
        "_fill_p",
        "_compliance_pk",
        "_pk",
        "_tubing",
        "_k_valve",
        "_k_leak",
        "_k_relief",
        "_beat_phase",
        "_beat_rate",
        "_beat_volume",
        "_beats",
        "_ectopic_start",
        "_ectopic_s",
        "_ectopic_volume",
        "_ectopic_skip",
        "_swelling",
        "_exercise_until",
        "_contractions",
        "_scheduled",
        "_artefact_next",
        "_artefact_start",
        "_artefact_end",
        "_artefact_rate",
        "_artefact_volume",
    )

    def __init__(self, params: PlantParams, patient: Patient, seed: int = 0) -> None:
        self.params = params
        self.patient = patient
        self._rng = random.Random(f"cuff-plant:{seed}")
        self._t = 0.0
        self._p = 0.0
        self._fill = params.bladder_fill_mL
        self._fill_p = params.bladder_fill_mmHg
        self._pk = params.cuff_stiffening_mmHg
        self._compliance_pk = params.cuff_compliance_mL_per_mmHg * params.cuff_stiffening_mmHg
        self._tubing = params.tubing_volume_mL
        self._air = self._tubing  # empty cuff, tubing at atmospheric pressure
        self._pump_speed = 0.0
        self._pump_phase = 0.0
        self._valve = 1.0  # normally open and unpowered at start
        self._k_valve = _orifice_coefficient(params.valve_orifice_mm, params.discharge_coefficient)
        self._k_leak = _orifice_coefficient(params.leak_orifice_mm, params.discharge_coefficient)
        self._k_relief = _orifice_coefficient(
            params.relief_orifice_mm, params.discharge_coefficient
        )
        self._beat_phase = self._rng.random()
        self._beat_rate = 0.0
        self._beat_volume = 0.0
        self._beats = 0
        self._ectopic_start = math.inf
        self._ectopic_s = 1.0
        self._ectopic_volume = 0.0
        self._ectopic_skip = False
        self._new_beat()
        self._swelling = 0.0
        self._exercise_until = -math.inf
        self._contractions: list[tuple[float, float, float, float]] = []
        self._scheduled: deque[tuple[float, float, float]] = deque()
        self._artefact_rate = params.artefact_rate_per_min / 60.0
        self._artefact_start = 0.0
        self._artefact_end = -math.inf
        self._artefact_volume = 0.0
        self._artefact_next = self._next_artefact_time()

    @property
    def pressure_mmHg(self) -> float:
        """True cuff gauge pressure, pulsations included; never negative."""
        return self._p

    @property
    def true_lop_mmHg(self) -> float:
        return self.patient.true_lop_mmHg

    @property
    def time_s(self) -> float:
        """Simulated time this plant has been stepped through."""
        return self._t

    @property
    def free_air_mL(self) -> float:
        """Air in cuff and tubing as free-air volume: the pump adds to it, valve and leak remove."""
        return self._air

    @property
    def air_volume_mL(self) -> float:
        """Air volume in cuff and tubing now (not free air), at the present pressure."""
        return self._air * ATMOSPHERE_mmHg / (ATMOSPHERE_mmHg + self._p)

    def contract(self, duration_s: float = 1.5, strength: float = 1.0) -> None:
        """Start one rep now: the muscle under the cuff bulges and relaxes over `duration_s`."""
        if duration_s <= 0 or strength < 0:
            raise ValueError("contract needs duration_s > 0 and strength >= 0")
        # Reps are never identical: +-10 % in bulge.
        volume = self.params.contraction_mL * strength * self._rng.uniform(0.9, 1.1)
        self._contractions.append((self._t, self._t + duration_s, math.pi / duration_s, volume))
        self._exercise_until = max(self._exercise_until, self._t + duration_s + _EXERCISE_WINDOW_s)

    def start_set(
        self,
        reps: int,
        period_s: float | None = None,
        duration_s: float | None = None,
        strength: float = 1.0,
    ) -> None:
        """Schedule `reps` contractions from now at the cadence of the parameters (or given)."""
        period = self.params.rep_period_s if period_s is None else period_s
        duration = self.params.rep_duration_s if duration_s is None else duration_s
        if reps < 0 or period <= 0 or duration <= 0:
            raise ValueError("start_set needs reps >= 0, period_s > 0 and duration_s > 0")
        start = max(self._t, self._scheduled[-1][0] + period) if self._scheduled else self._t
        for i in range(reps):
            self._scheduled.append((start + i * period, duration, strength))

    @property
    def reps_pending(self) -> int:
        """Scheduled reps that have not started yet."""
        return len(self._scheduled)

    def step(self, dt_s: float, pump_duty: float, valve_open: bool) -> None:
        """Advance `dt_s` seconds with the pump at `pump_duty` (0..1) and the valve as given."""
        if dt_s <= 0.0:
            return
        if dt_s > _MAX_SUBSTEP_s:
            n = math.ceil(dt_s / _MAX_SUBSTEP_s)
            for _ in range(n):
                self.step(dt_s / n, pump_duty, valve_open)
            return
        params = self.params
        t = self._t
        p = self._p
        patm = ATMOSPHERE_mmHg

        # Pump: motor speed lags the duty; flow = free flow * (speed - P / stall).
        min_duty = params.pump_min_duty
        target = (pump_duty - min_duty) / (1.0 - min_duty) if pump_duty > min_duty else 0.0
        if target > 1.0:
            target = 1.0
        speed = self._pump_speed
        if speed != target:
            lag = params.pump_spinup_s
            speed = speed + (target - speed) * dt_s / lag if lag > dt_s else target
            if abs(speed - target) < 1e-6:
                speed = target
            self._pump_speed = speed
        flow_in = 0.0
        if speed > 0.0:
            flow_in = params.pump_free_flow_mL_s * (speed - p / params.pump_stall_mmHg)
            if flow_in > 0.0:
                phase = self._pump_phase + params.pump_stroke_hz * speed * dt_s
                if phase > 1.0:
                    phase -= 1.0
                self._pump_phase = phase
                flow_in *= 1.0 + params.pump_ripple * math.sin(2.0 * math.pi * phase)
            else:
                flow_in = 0.0

        # Valve and leak: orifice flow out.
        valve = self._valve
        goal = 1.0 if valve_open else 0.0
        if valve != goal:
            lag = params.valve_response_s
            valve = valve + (goal - valve) * dt_s / lag if lag > dt_s else goal
            if abs(valve - goal) < 1e-6:
                valve = goal
            self._valve = valve
        flow_out = 0.0
        if p > 0.0:
            k_out = self._k_valve * valve + self._k_leak
            if p > params.relief_crack_mmHg:
                lift = (p - params.relief_crack_mmHg) / (
                    params.relief_full_mmHg - params.relief_crack_mmHg
                )
                k_out += self._k_relief * min(lift, 1.0)
            flow_out = k_out * math.sqrt(p * (patm + p))
        air = self._air + (flow_in - flow_out) * dt_s
        if air < self._tubing:
            air = self._tubing  # the bladder is flat: no vacuum behind an open orifice
        self._air = air

        # Limb volume pressing into the cuff.
        swelling = self._swelling
        if p > params.venous_occlusion_mmHg:
            cap = params.swelling_max_mL
            if swelling < cap:
                rate = params.swelling_mL_per_min / 60.0
                if t >= self._exercise_until:
                    rate *= params.swelling_rest_fraction
                swelling += rate * (1.0 - swelling / cap) * dt_s
        elif swelling > 0.0:
            swelling -= swelling * dt_s / params.swelling_recovery_s
        self._swelling = swelling
        t += dt_s
        self._t = t
        displacement = swelling

        if self._scheduled and t >= self._scheduled[0][0]:
            _, duration, strength = self._scheduled.popleft()
            self.contract(duration, strength)
        if self._contractions:
            finished = False
            for start, end, omega, volume in self._contractions:
                if t >= end:
                    finished = True
                else:
                    s = math.sin(omega * (t - start))
                    displacement += volume * s * s
            if finished:
                self._contractions = [c for c in self._contractions if t < c[1]]

        phase = self._beat_phase + self._beat_rate * dt_s
        if phase >= 1.0:
            phase -= 1.0
            self._beat_phase = phase
            self._new_beat()
        else:
            self._beat_phase = phase
        displacement += self._beat_volume * _WAVEFORM[int(phase * _WAVEFORM_SAMPLES)]
        if t >= self._ectopic_start:
            into = (t - self._ectopic_start) / self._ectopic_s
            if into < 1.0:
                displacement += self._ectopic_volume * _WAVEFORM[int(into * _WAVEFORM_SAMPLES)]
            else:
                self._ectopic_start = math.inf

        if t >= self._artefact_next:
            self._start_artefact()
        if t < self._artefact_end:
            displacement += self._artefact_volume * math.sin(
                math.pi * (t - self._artefact_start) / (self._artefact_end - self._artefact_start)
            )

        # Gauge pressure: Newton on the gas law from the last pressure (changes per ms are small;
        # a second iteration only when the first moved far).
        fill = self._fill
        if displacement > 0.95 * fill:
            displacement = 0.95 * fill
        slack = fill - displacement
        fill_p = self._fill_p
        pk = self._pk
        cpk = self._compliance_pk
        target_pv = patm * air
        for _ in range(3):
            e = math.exp(-p / fill_p)
            volume = slack * (1.0 - e) + cpk * math.log1p(p / pk) + self._tubing
            absolute = patm + p
            slope = volume + absolute * (slack * e / fill_p + cpk / (pk + p))
            dp = (absolute * volume - target_pv) / slope
            p -= dp
            if p < 0.0:
                p = 0.0
                break
            if -0.2 < dp < 0.2:
                break
        self._p = p

    def _new_beat(self) -> None:
        """Draw the next beat: interval with HRV and sinus arrhythmia, size from the oscillogram."""
        patient = self.patient
        breath = math.sin(2.0 * math.pi * self._t * patient.respiratory_rate_per_min / 60.0)
        interval = (60.0 / patient.heart_rate_bpm) * (
            1.0 + patient.hrv_fraction * self._rng.gauss(0.0, 1.0) + 0.02 * breath
        )
        self._beat_rate = 1.0 / max(interval, 0.2)
        size = 1.0 + 0.05 * self._rng.gauss(0.0, 1.0) + 0.04 * breath
        self._beat_volume = (
            patient.arterial_pulse_volume_mL * patient.pulse_envelope(self._p) * max(size, 0.5)
        )
        self._beats += 1
        if self._ectopic_skip:  # the beat the premature one took the place of
            self._ectopic_skip = False
            self._beat_volume = 0.0
        elif patient.ectopic_every and self._beats % patient.ectopic_every == 0:
            # Over this beat's run-off, as a pulse of its own: no draw of the rng, so a patient
            # without ectopics has the same beats as before.
            self._ectopic_start = self._t + patient.ectopic_coupling * interval
            self._ectopic_s = interval
            self._ectopic_volume = patient.ectopic_size * self._beat_volume
            self._ectopic_skip = True

    def _next_artefact_time(self) -> float:
        if self._artefact_rate <= 0.0:
            return math.inf
        return self._t + self._rng.expovariate(self._artefact_rate)

    def _start_artefact(self) -> None:
        """A knock or shift of the limb: a short bump of about `artefact_mmHg`, mostly upward."""
        params = self.params
        size = params.artefact_mmHg * self._rng.uniform(0.5, 1.5)
        if self._rng.random() < 0.25:
            size = -size
        self._artefact_volume = size * self._compliance_for_displacement(self._p)
        self._artefact_start = self._t
        self._artefact_end = self._t + params.artefact_duration_s * self._rng.uniform(0.5, 1.5)
        self._artefact_next = self._next_artefact_time()

    def _compliance_for_displacement(self, p: float) -> float:
        """mL of limb displacement per mmHg of cuff pressure at this pressure (closed cuff)."""
        slack = self._fill - self._swelling
        e = math.exp(-p / self._fill_p)
        volume = slack * (1.0 - e) + self._compliance_pk * math.log1p(p / self._pk) + self._tubing
        absolute = ATMOSPHERE_mmHg + p
        slope = volume + absolute * (
            slack * e / self._fill_p + self._compliance_pk / (self._pk + p)
        )
        return slope / (absolute * max(1.0 - e, 0.05))


def default_plant(seed: int = 0, **overrides: Any) -> CuffPlant:
    """The default bench plant: a random patient from `seed` with the cuff for their limb.

    `overrides` may name any `PlantParams` or `Patient` field.
    """
    plant_fields = {f.name for f in fields(PlantParams)}
    patient_fields = {f.name for f in fields(Patient)}
    unknown = set(overrides) - plant_fields - patient_fields
    if unknown:
        raise ValueError(f"unknown plant or patient parameter(s): {', '.join(sorted(unknown))}")
    patient_overrides = {k: v for k, v in overrides.items() if k in patient_fields}
    patient = random_patient(
        random.Random(seed),
        limb=patient_overrides.pop("limb", None),
        posture=patient_overrides.pop("posture", None),
        cuff_width_cm=patient_overrides.pop("cuff_width_cm", None),
        max_lop_mmHg=None if "lop_mmHg" in patient_overrides else _DEFAULT_MAX_LOP_mmHg,
    )
    patient = replace(patient, **patient_overrides)
    params = PlantParams.for_cuff(
        patient.limb,
        patient.cuff_width_cm,
        **{k: v for k, v in overrides.items() if k in plant_fields},
    )
    return CuffPlant(params, patient, seed=seed)


# What a test cylinder takes away from a limb (PlantParams and Patient fields alike).
_CYLINDER_STILL = {"pulse_volume_mL": 0.0, "artefact_rate_per_min": 0.0, "swelling_mL_per_min": 0.0}


def cylinder_plant(seed: int = 0, **overrides: Any) -> CuffPlant:
    """The cuff wrapped around the technician's test cylinder: no pulse, no muscle, no swelling.

    Calibration and the self-test are done there (docs/technician.md), so their simulation has
    no heartbeat for a measurement to be confused by. The cuff, pump and valve are `seed`'s.
    """
    return default_plant(seed, **{**_CYLINDER_STILL, **overrides})


def cylinder_varied_plant(seed: int = 0) -> CuffPlant:
    """`varied_plant`'s cuff, pump and valve on the test cylinder: still, and without a leak."""
    plant = varied_plant(seed)
    still = {**_CYLINDER_STILL, "leak_orifice_mm": 0.0}
    names = {f.name for f in fields(PlantParams)}
    params = replace(plant.params, **{k: v for k, v in still.items() if k in names})
    patient = replace(plant.patient, **{k: v for k, v in still.items() if k not in names})
    return CuffPlant(params, patient, seed=seed)


def varied_plant(seed: int = 0, **patient_overrides: Any) -> CuffPlant:
    """A random patient and a cuff, pump, valve, leak and limb drawn over a wide range.

    For robustness tests and benches: a controller tuned on `default_plant` must still hold here.
    `patient_overrides` may name `Patient` fields that take no part in the draw (the ectopics).
    """
    rng = random.Random(f"varied-plant:{seed}")
    patient = random_patient(rng, max_lop_mmHg=_DEFAULT_MAX_LOP_mmHg)
    patient = replace(patient, **patient_overrides)
    base = PlantParams.for_cuff(patient.limb, patient.cuff_width_cm)

    def spread(value: float, lo: float, hi: float) -> float:
        return value * rng.uniform(lo, hi)

    params = replace(
        base,
        bladder_fill_mL=spread(base.bladder_fill_mL, 0.6, 1.6),
        bladder_fill_mmHg=spread(base.bladder_fill_mmHg, 0.6, 1.6),
        cuff_compliance_mL_per_mmHg=spread(base.cuff_compliance_mL_per_mmHg, 0.6, 1.6),
        cuff_stiffening_mmHg=rng.uniform(150.0, 600.0),
        tubing_volume_mL=rng.uniform(5.0, 40.0),
        pump_free_flow_mL_s=spread(base.pump_free_flow_mL_s, 0.3, 1.5),
        pump_stall_mmHg=rng.uniform(330.0, 480.0),
        pump_min_duty=rng.uniform(0.15, 0.35),
        pump_spinup_s=rng.uniform(0.02, 0.15),
        pump_ripple=rng.uniform(0.0, 0.4),
        pump_stroke_hz=rng.uniform(20.0, 60.0),
        valve_orifice_mm=rng.uniform(1.4, 3.0),
        valve_response_s=rng.uniform(0.005, 0.03),
        leak_orifice_mm=rng.choice((0.0, rng.uniform(0.0, 0.08))),
        contraction_mL=spread(base.contraction_mL, 0.5, 1.6),
        swelling_mL_per_min=spread(base.swelling_mL_per_min, 0.0, 2.0),
        swelling_max_mL=spread(base.swelling_max_mL, 0.5, 1.5),
        artefact_rate_per_min=rng.uniform(0.0, 6.0),
        artefact_mmHg=rng.uniform(1.0, 5.0),
    )
    # Cadence last, so the draws above keep their values: a brisk 1 s rep to a slow 2.2 s one,
    # with 0.5-1.5 s between the end of one rep and the start of the next.
    duration = rng.uniform(1.0, 2.2)
    params = replace(params, rep_duration_s=duration, rep_period_s=duration + rng.uniform(0.5, 1.5))
    return CuffPlant(params, patient, seed=seed)
