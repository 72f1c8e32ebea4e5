"""The whole appliance on the simulated bench, in simulated time: for tests, benches and `bfr sim`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from appliance.controller.core import Controller, ControllerHardware, TickRecord
from appliance.controller.limits import SafetyLimits
from appliance.controller.loop import ControlLoop
from appliance.controller.regulator import Regulator
from hardware.clock import SimClock
from hardware.config import HardwareConfig
from hardware.devices import Devices
from hardware.sim.plant import Plant, build_plant
from hardware.sim.rig import SimulatedRig


@dataclass
class SimulatedAppliance:
    clock: SimClock
    plant: Plant
    rig: SimulatedRig
    devices: Devices
    controller: Controller
    loop: ControlLoop
    ui_heartbeat: bool = True

    def run(self, seconds: float) -> None:
        """Advance everything by `seconds` of simulated time, playing the UI's heartbeat."""
        end = self.clock.now() + seconds
        while self.clock.now() < end - 1e-9:
            if self.ui_heartbeat:
                self.controller.handle({"cmd": "heartbeat"})
            self.loop.run(duration_s=min(0.5, end - self.clock.now()))

    def run_until(
        self, predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.1
    ) -> bool:
        end = self.clock.now() + timeout_s
        while self.clock.now() < end:
            if predicate():
                return True
            self.run(step_s)
        return predicate()

    def close(self) -> None:
        self.devices.close()


def default_procedures() -> dict:
    """Measurements the controller runs itself: LOP and the self-test."""
    from appliance.lop.procedure import lop_procedure_factory
    from appliance.technician.selftest import selftest_procedure_factory

    return {"lop": lop_procedure_factory, "selftest": selftest_procedure_factory}


def build_simulated(
    plant: Plant | str | None = None,
    seed: int = 0,
    *,
    regulator: Regulator | None = None,
    limits: SafetyLimits | None = None,
    config: HardwareConfig | None = None,
    on_tick: Callable[[TickRecord], None] | None = None,
    realtime: bool = False,
    procedures: dict | None = None,
) -> SimulatedAppliance:
    """Plant (object, `MODULE:CALLABLE` spec or the project's default), rig, drivers, controller."""
    clock = SimClock(realtime=realtime)
    if plant is None or isinstance(plant, str):
        plant = build_plant(plant, seed)
    rig = SimulatedRig(plant, clock, config, seed=seed)
    devices = rig.build_devices()
    hardware = ControllerHardware.of(devices)
    if procedures is None:
        procedures = default_procedures()
    controller = Controller(
        hardware,
        clock,
        limits=limits,
        transducer=rig.config.transducer,
        regulator=regulator,
        on_tick=on_tick,
        procedures=procedures,
    )
    loop = ControlLoop(controller, clock, rig.config.data_rate, deadman=devices.deadman)
    return SimulatedAppliance(clock, plant, rig, devices, controller, loop)
