"""Plants for tests that need a condition the physics alone would not produce on cue."""

from __future__ import annotations

from hardware.sim.plant import Plant


class OffsetPlant:
    """Wraps a plant and adds an external pressure (someone leaning on the cuff)."""

    def __init__(self, inner: Plant) -> None:
        self.inner = inner
        self.offset_mmHg = 0.0

    def step(self, dt_s: float, pump_duty: float, valve_open: bool) -> None:
        self.inner.step(dt_s, pump_duty, valve_open)

    @property
    def pressure_mmHg(self) -> float:
        return self.inner.pressure_mmHg + self.offset_mmHg

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


class LowReadingPlant(OffsetPlant):
    """A transducer whose span has drifted: it reads `gain` times the cuff's true pressure."""

    def __init__(self, inner: Plant, gain: float) -> None:
        super().__init__(inner)
        self.gain = gain

    @property
    def pressure_mmHg(self) -> float:
        return self.inner.pressure_mmHg * self.gain


def cuff_off(seed: int = 0):
    """The project's plant with the cuff open to the air (a hose pulled off): for `--plant`."""
    from hardware.sim.cuff import default_plant

    return default_plant(seed, limb="arm", leak_orifice_mm=4.0)


def broken_plant(seed: int = 0):
    """A `--plant` whose factory fails, as someone else's plant code may."""
    raise RuntimeError(f"no parameters for seed {seed}")


class NanAfterPlant(OffsetPlant):
    """A plant whose model breaks down after `after_s` of simulated time (pressure NaN)."""

    def __init__(self, inner: Plant, after_s: float) -> None:
        super().__init__(inner)
        self.after_s = after_s
        self.t = 0.0

    def step(self, dt_s: float, pump_duty: float, valve_open: bool) -> None:
        self.t += dt_s
        self.inner.step(dt_s, pump_duty, valve_open)

    @property
    def pressure_mmHg(self) -> float:
        return float("nan") if self.t > self.after_s else self.inner.pressure_mmHg


def nan_after_a_second(seed: int = 0):
    """For `--plant`: the project's plant, until its model returns NaN after 1 s."""
    from hardware.sim.cuff import default_plant

    return NanAfterPlant(default_plant(seed, limb="arm"), 1.0)


class KinkedLinePlant(OffsetPlant):
    """The sensing line kinks once the cuff reaches `at_mmHg`: the transducer keeps the pressure
    trapped behind the kink while the cuff goes on filling (the rig still adds its noise)."""

    def __init__(self, inner: Plant, at_mmHg: float) -> None:
        super().__init__(inner)
        self.at_mmHg = at_mmHg
        self.kinked_at_s: float | None = None
        self._trapped: float | None = None

    def step(self, dt_s: float, pump_duty: float, valve_open: bool) -> None:
        self.inner.step(dt_s, pump_duty, valve_open)
        if self._trapped is None and self.inner.pressure_mmHg >= self.at_mmHg:
            self._trapped = self.inner.pressure_mmHg
            self.kinked_at_s = self.inner.time_s

    @property
    def pressure_mmHg(self) -> float:
        return self.inner.pressure_mmHg if self._trapped is None else self._trapped


class FrozenReadingPlant(OffsetPlant):
    """The sensing line kinks when `frozen_mmHg` is set: the transducer reads that from then on."""

    frozen_mmHg: float | None = None

    @property
    def pressure_mmHg(self) -> float:
        return self.inner.pressure_mmHg if self.frozen_mmHg is None else self.frozen_mmHg


class SensingLineOffPlant(OffsetPlant):
    """The transducer's line pulled off the manifold when `off` is set: it reads the room."""

    off = False

    @property
    def pressure_mmHg(self) -> float:
        return 0.0 if self.off else self.inner.pressure_mmHg


class RaisingAfterPlant(NanAfterPlant):
    """A plant whose own code fails after `after_s`: its step raises."""

    def step(self, dt_s: float, pump_duty: float, valve_open: bool) -> None:
        super().step(dt_s, pump_duty, valve_open)
        if self.t > self.after_s:
            raise RuntimeError("model diverged")

    @property
    def pressure_mmHg(self) -> float:
        return self.inner.pressure_mmHg


def raises_after_a_second(seed: int = 0):
    """For `--plant`: the project's plant, until its step raises after 1 s."""
    from hardware.sim.cuff import default_plant

    return RaisingAfterPlant(default_plant(seed, limb="arm"), 1.0)
