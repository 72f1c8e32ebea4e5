"""The controller a technician command talks to: the device's over IPC, or a simulated one.

Both answer the same requests; the simulated one also lets time pass on demand, reads the true
cuff pressure as a stand-in for a reference gauge and can press the stop button.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from appliance.technician.errors import TechnicianError

HEARTBEAT_PERIOD_S = 1.0  # the controller deflates after 3 s without one while pressurised
SIM_FAULTS = ("pump-dead", "valve-stuck", "leak", "slow-pump", "worn-pump", "buzzer-dead")
# Faults that are a property of the cuff or pump, so they build the plant themselves.
_PLANT_FAULTS = {
    "leak": {"leak_orifice_mm": 0.3},
    "slow-pump": {"pump_spinup_s": 0.2},
    # Moves no air below 35 % duty and stalls at 215 mmHg: at 150 mmHg it needs 80 % duty.
    "worn-pump": {"pump_min_duty": 0.35, "pump_stall_mmHg": 215.0},
}


class ControllerLink(Protocol):
    simulated: bool

    def request(self, message: dict[str, Any]) -> dict[str, Any]: ...

    def status(self) -> dict[str, Any]: ...

    def wait(self, seconds: float) -> None:
        """Let `seconds` pass while keeping the controller's heartbeat alive."""
        ...

    def keepalive(self) -> contextlib.AbstractContextManager[None]:
        """Heartbeats in the background while a person reads a gauge or presses a button."""
        ...

    def gauge_mmHg(self) -> float | None:
        """True cuff pressure where a simulator knows it; None on a real device."""
        ...

    def press_stop_button(self) -> bool:
        """Press and release the stop button where simulated; False on a real device."""
        ...

    def hear_buzzer(self, seconds: float) -> int | None:
        """Sounds the buzzer began over `seconds` where simulated; None on a real device, where
        a person listens."""
        ...

    def close(self) -> None: ...


class DeviceLink:
    """The running controller on this device, through its Unix socket."""

    simulated = False

    def __init__(
        self,
        socket_path: str,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if client is None:
            from appliance.controller.ipc import ControllerClient

            client = ControllerClient(socket_path)
        self.socket_path = socket_path
        self._client = client
        self._sleep = sleep

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        return self._client.request(message)

    def status(self) -> dict[str, Any]:
        reply = self.request({"cmd": "status"})
        if not reply.get("ok"):
            raise TechnicianError(
                f"the controller does not answer on {self.socket_path}: {reply.get('error')}",
                "check that it runs (`systemctl status bfr-controller`, `bfr logs --unit "
                "bfr-controller`) and that you run this with sudo",
            )
        return reply["status"]

    def wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.request({"cmd": "heartbeat"})
            self._sleep(min(HEARTBEAT_PERIOD_S / 2, left))

    @contextlib.contextmanager
    def keepalive(self) -> Iterator[None]:
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(HEARTBEAT_PERIOD_S):
                self.request({"cmd": "heartbeat"})

        self.request({"cmd": "heartbeat"})
        thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def gauge_mmHg(self) -> float | None:
        return None

    def press_stop_button(self) -> bool:
        return False

    def hear_buzzer(self, seconds: float) -> int | None:
        self.wait(seconds)
        return None

    def close(self) -> None:
        self._client.close()


class SimLink:
    """A whole simulated appliance in simulated time; time passes only in `wait`."""

    simulated = True

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        return self.app.controller.handle(message)

    def status(self) -> dict[str, Any]:
        return self.app.controller.status()

    def wait(self, seconds: float) -> None:
        self.app.run(seconds)  # plays the UI heartbeat itself

    def keepalive(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # simulated time stands still while someone types

    def gauge_mmHg(self) -> float | None:
        return float(self.app.plant.pressure_mmHg)

    def press_stop_button(self) -> bool:
        self.app.rig.press_stop()
        self.app.run(0.2)
        self.app.rig.release_stop()
        self.app.run(0.1)
        return True

    def hear_buzzer(self, seconds: float) -> int | None:
        before = self.app.rig.buzzer_onsets
        self.app.run(seconds)
        return self.app.rig.buzzer_onsets - before

    def close(self) -> None:
        self.app.close()


def simulated_link(
    plant: str | None = None, seed: int = 0, fault: str | None = None, settle_s: float = 1.0
) -> SimLink:
    """The simulated appliance (the cuff on the test cylinder unless `plant` is given) with the
    self-test offered, started and settled to IDLE."""
    from appliance.simulation import build_simulated, default_procedures
    from appliance.technician.selftest import selftest_procedure_factory

    if fault is not None and fault not in SIM_FAULTS:
        raise TechnicianError(f"unknown simulated fault {fault!r}", f"use one of {SIM_FAULTS}")
    plant_obj: Any = plant
    if plant is None or fault in _PLANT_FAULTS:
        if plant is not None:
            raise TechnicianError(f"--sim-fault {fault} builds its own plant", "drop --plant")
        from hardware.sim.cuff import cylinder_plant

        plant_obj = cylinder_plant(seed, **_PLANT_FAULTS.get(fault or "", {}))
    try:
        app = build_simulated(
            plant_obj,
            seed,
            procedures={**default_procedures(), "selftest": selftest_procedure_factory},
        )
    except ValueError as exc:
        raise TechnicianError(f"cannot build the simulated cuff: {exc}", "check --plant") from exc
    if fault == "pump-dead":
        app.rig.pump_dead = True
    elif fault == "valve-stuck":
        app.rig.valve_stuck_closed = True
    elif fault == "buzzer-dead":
        app.rig.buzzer_dead = True
    link = SimLink(app)
    link.wait(settle_s)
    return link
