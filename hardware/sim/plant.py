"""The plant contract: anything that turns pump duty and valve state into a cuff pressure."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class Plant(Protocol):
    """A cuff on a limb, as the simulator sees it.

    `pressure_mmHg` is the true gauge pressure in the cuff, pulsations included. A plant may also
    offer `true_lop_mmHg` (float) and `contract(duration_s, strength)` to start one muscle
    contraction (a rep) now; callers check with `getattr` because other plants may not. A plant
    whose transducer does not see the cuff's pressure as it is (a fault on the sensing line) offers
    `transducer_mmHg`, which the rig's transducer then reads instead.
    """

    def step(self, dt_s: float, pump_duty: float, valve_open: bool) -> None: ...

    @property
    def pressure_mmHg(self) -> float: ...


PlantFactory = Callable[..., Plant]

DEFAULT_PLANT = "hardware.sim.cuff:default_plant"


def load_plant_factory(spec: str) -> PlantFactory:
    """Resolve `MODULE:CALLABLE` (importable from PYTHONPATH) to a factory taking `seed=`."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"plant must be MODULE:CALLABLE, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any module's failure to load, said plainly
        raise ValueError(f"cannot import plant module {module_name!r}: {exc}") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ValueError(f"{module_name!r} has no callable {attr!r}")
    return factory


def build_plant(spec: str | None, seed: int) -> Plant:
    """Build the plant named by `spec` (or the project's own) for `seed`, checking the contract."""
    factory = load_plant_factory(spec or DEFAULT_PLANT)
    try:
        plant = factory(seed=seed)
    except Exception as exc:  # noqa: BLE001 - someone else's plant code, reported plainly
        raise ValueError(f"{spec}: building the plant failed: {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(plant, "step", None)) or not hasattr(plant, "pressure_mmHg"):
        raise ValueError(f"{spec} did not build a plant (needs step() and pressure_mmHg)")
    return plant
