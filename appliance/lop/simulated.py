"""One LOP measurement on the simulated appliance, in simulated time: for `bfr sim lop` and benches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.simulation import build_simulated
from hardware.sim.plant import Plant

# Longer than any measurement may take, empty cuff to deflated, with two readings and a rest.
TIMEOUT_S = 300.0


@dataclass(frozen=True)
class SimulatedMeasurement:
    """The controller's `last_lop` plus what only the simulation knows."""

    result: dict[str, Any]
    true_lop_mmHg: float | None
    # Highest true cuff pressure the plant saw, pulsations and knocks included.
    plant_max_mmHg: float
    final_state: str
    fault: str | None
    # Simulated time from the command until the controller was idle (or faulted) again.
    elapsed_s: float


def measure_on(
    plant: Plant,
    seed: int = 0,
    *,
    limb: str | None = None,
    posture: str | None = None,
    repeats: int = 1,
    rest_s: float | None = None,
) -> SimulatedMeasurement:
    """Run `measure_lop` against `plant` until the controller is idle again.

    `limb` and `posture` default to the plant's patient when it has one (arm/seated otherwise).
    """
    patient = getattr(plant, "patient", None)
    limb = limb or getattr(patient, "limb", None) or "arm"
    posture = posture or getattr(patient, "posture", None) or "seated"
    highest = [0.0]

    def watch(_: Any) -> None:
        highest[0] = max(highest[0], float(plant.pressure_mmHg))

    sim = build_simulated(plant, seed, on_tick=watch)
    try:
        controller = sim.controller
        sim.run(0.3)
        controller.handle({"cmd": "configure", "limb": limb})
        command: dict[str, Any] = {
            "cmd": "measure_lop",
            "limb": limb,
            "posture": posture,
            "repeats": repeats,
        }
        if rest_s is not None:
            command["rest_s"] = rest_s
        began = sim.clock.now()
        reply = controller.handle(command)
        if not reply["ok"]:
            raise ValueError(reply["error"])
        sim.run_until(lambda: controller.state.value in ("IDLE", "FAULT"), TIMEOUT_S)
        elapsed = sim.clock.now() - began
        state = controller.state.value
        fault = None if controller.fault is None else controller.fault.value
        result = controller.last_lop or {}
    finally:
        sim.close()
    true_lop = getattr(plant, "true_lop_mmHg", None)
    return SimulatedMeasurement(
        result=result,
        true_lop_mmHg=None if true_lop is None else float(true_lop),
        plant_max_mmHg=highest[0],
        final_state=state,
        fault=fault,
        elapsed_s=elapsed,
    )
