"""The controller process: hardware (real or simulated in real time), loop, watchdog and IPC."""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from appliance.config import ApplianceConfig, technician_socket_beside
from appliance.controller.core import Controller, ControllerHardware
from appliance.controller.gate import ClinicGate, Problems
from appliance.controller.ipc import ControllerServer
from appliance.controller.loop import ControlLoop
from appliance.controller.memory import GcPauseLog, settle_heap
from appliance.controller.occlusion_record import RECORD_NAME, OcclusionRecord
from appliance.controller.watchdog import Watchdog
from hardware.clock import Clock, RealClock, SimClock

log = logging.getLogger("bfr.controller")


class Snapshots:
    """Status published by the loop thread at 50 Hz; readers never touch live controller state."""

    def __init__(self, controller: Controller, period_s: float = 0.02) -> None:
        self.controller = controller
        self.period_s = period_s
        self._latest: dict[str, Any] = controller.status()
        self._at = float("-inf")

    def publish(self, now: float) -> None:
        if now - self._at >= self.period_s:
            self._at = now
            self._latest = self.controller.status()

    def latest(self) -> dict[str, Any]:
        return self._latest


def build_hardware(config: ApplianceConfig, sim: bool, plant: str | None, seed: int) -> tuple:
    """Real drivers on the Pi's bus and pins, or the same drivers on the simulated rig."""
    if sim:
        from appliance.simulation import default_procedures
        from hardware.sim.plant import build_plant
        from hardware.sim.rig import SimulatedRig

        clock: Clock = SimClock(realtime=True)
        rig = SimulatedRig(build_plant(plant, seed), clock, config.hardware, seed=seed)
        devices = rig.build_devices()
        return clock, devices, rig, default_procedures()
    from appliance.simulation import default_procedures
    from hardware.devices import build_devices, make_i2c

    clock = RealClock()
    devices = build_devices(config.hardware, clock, make_i2c())
    return clock, devices, None, default_procedures()


def readiness(data_dir: Path, selftest_max_age_s: float | None = None) -> Problems:
    """Why the appliance may not inflate a cuff on a limb now, read from the records in
    `data_dir` on every ask (a session under way finishes: `treatment_problems`)."""
    from appliance.technician.readiness import treatment_problems

    def problems() -> list[str]:
        found = treatment_problems(data_dir, time.time(), selftest_max_age_s=selftest_max_age_s)
        return [str(p) for p in found]

    return problems


def run_controller(
    config: ApplianceConfig,
    *,
    sim: bool = False,
    plant: str | None = None,
    seed: int = 0,
    socket_path: str | None = None,
    technician_socket_path: str | None = None,
    data_dir: Path | None = None,
    check_readiness: bool = False,
) -> int:
    """Run until SIGTERM/SIGINT; the cuff is deflated on the way out whatever happens.

    On hardware the clinic's socket always checks readiness; the simulated rig only when asked
    (`check_readiness`), as it has no transducer to calibrate.
    """
    clock, devices, rig, procedures = build_hardware(config, sim, plant, seed)
    devices.safe()
    from appliance.technician.calibration import load_calibration

    records = data_dir or Path(config.paths.data_dir)
    stored = load_calibration(records)
    if stored is not None:
        devices.sensor.set_calibration(stored)  # `bfr calibrate` result survives restarts
        log.info("calibration zero %.2f mmHg span %.4f", stored.zero_mmHg, stored.span)

    def on_event(t: float, kind: str, data: dict[str, Any]) -> None:
        log.info("%s %s", kind, data)

    # A simulated rig keeps no occlusion record unless given a data directory, as calibrate does.
    record = OcclusionRecord(records / RECORD_NAME) if data_dir is not None or not sim else None
    resumed = None
    if record is not None:
        limits = config.limits
        resumed = record.load(
            limit_s=limits.default_occlusion_s, reperfusion_s=limits.reperfusion_s
        )
        owes = resumed.clock.occlusion_s > 0 or resumed.clock.owed_s is not None
        log.log(logging.WARNING if owes else logging.INFO, "occlusion: %s", resumed.reason)
    controller = Controller(
        ControllerHardware.of(devices),
        clock,
        limits=config.limits,
        transducer=config.hardware.transducer,
        procedures=procedures,
        on_event=on_event,
        occlusion=resumed.clock if resumed is not None else None,
        occlusion_record=record,
    )
    snapshots = Snapshots(controller)
    controller.published_status = snapshots.latest
    previous_tick = controller.on_tick
    controller.on_tick = lambda rec: (
        snapshots.publish(rec.t),
        previous_tick and previous_tick(rec),
    )
    path = socket_path or config.paths.socket
    technician_path = technician_socket_path or (
        technician_socket_beside(path) if socket_path else config.paths.technician_socket
    )
    gate = ClinicGate(
        functools.partial(controller.submit, therapy=True),
        readiness(records, config.readiness.selftest_max_age_s)
        if check_readiness or not sim
        else None,
    )
    servers: list[ControllerServer] = []
    pauses = GcPauseLog(log)
    try:  # one way out, also when a socket is already served: outputs safe, everything closed
        if record is not None:
            record.start()
        for where, handler, mode in (
            (path, gate, 0o660),
            (technician_path, controller.submit, 0o600),
        ):
            os.makedirs(os.path.dirname(where) or ".", exist_ok=True)
            servers.append(ControllerServer(where, handler, snapshots.latest, mode=mode))
            servers[-1].start()
        loop = ControlLoop(
            controller,
            clock,
            config.hardware.data_rate,
            Watchdog(),
            devices.deadman,
            serving=lambda: all(server.serving for server in servers),
        )
        stop = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            log.info("signal %s: deflating and stopping", signum)
            stop.set()
            loop.stop()

        # Every signal that would end the process by default deflates first and says so.
        for signum in (
            signal.SIGTERM,
            signal.SIGINT,
            signal.SIGHUP,
            signal.SIGQUIT,
            signal.SIGUSR1,
            signal.SIGUSR2,
        ):
            signal.signal(signum, on_signal)
        log.info(
            "controller on %s, technicians on %s (%s; readiness %s)",
            path,
            technician_path,
            "simulated cuff" if rig else "hardware",
            "checked" if gate.problems is not None else "not checked",
        )
        log.info("%d start-up objects frozen out of the garbage collector's scans", settle_heap())
        pauses.install()
        loop.run()
    finally:
        pauses.remove()
        devices.safe()
        for server in servers:
            server.close()
        devices.close()
        if record is not None:
            record.close()  # last: a card that hangs must not keep the rest from closing
    return 0
