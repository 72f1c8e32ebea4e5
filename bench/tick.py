"""Control tick cost and garbage-collector pauses, against the loop's 2 ms poll period.

Runs the real controller (real adafruit ADS1115 driver on the register-level emulator, gpiozero
mock pins) through a leg-press set on a simulated cuff and times every `Controller.tick` with
the wall clock and with its thread's CPU clock (which a busy host taking the core away does not
advance), and within it the sensor read (driver plus the emulator answering its register
reads; on the device that part is the I2C transfer instead). The plant and the emulator's own
conversions run between ticks and are not counted.

Then the garbage collector: every collection during the set is timed, and a full collection
after it (the longest pause it can make). Both cases run, each in a fresh interpreter: as the
process starts, and with what start-up made frozen out of the collector's scans before the set
(`appliance.controller.memory.settle_heap`, as the controller process does).
Then the longest gap between ticks as an LOP measurement starts its estimating process (the fork
server's first start imports numpy; it runs off the loop's thread). Last, what an estimate
running beside the loop does to it: a loop waking every 2 ms measures how
late it wakes while the LOP estimator works without pause on a 30 s trace, with nothing beside
it, in a thread of the same process, and in a process of its own (as the controller runs it).

A Raspberry Pi 4 core runs Python several times slower than a desktop's, so the margin against
the poll period (half the ADC's conversion period) is what matters.

    python bench/tick.py [--reps 15] [--seed 0] [--limb leg] [--seconds 8]
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.controller.memory import GcPauseLog, settle_heap  # noqa: E402
from appliance.controller.supervisor import State  # noqa: E402
from appliance.lop.live_estimate import judge  # noqa: E402
from appliance.simulation import SimulatedAppliance, build_simulated  # noqa: E402
from hardware.sim.cuff import default_plant  # noqa: E402


class _Stopwatch:
    """Wall time of every controller tick, and of the sensor reads made inside it.

    Also the tick's CPU time on its own thread: on a shared machine the wall clock's tail is
    mostly the host taking the core away, which says nothing about the code.
    """

    def __init__(self) -> None:
        self.ticks: list[float] = []
        self.cpu: list[float] = []  # thread CPU time per tick
        self.reads: list[float] = []  # read time per tick
        self._reading = 0.0

    def tick(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        def call() -> Any:
            self._reading = 0.0
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn()
            finally:
                self.cpu.append(time.thread_time() - cpu)
                self.ticks.append(time.perf_counter() - start)
                self.reads.append(self._reading)

        return call

    def read(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        def call() -> Any:
            start = time.perf_counter()
            try:
                return fn()
            finally:
                self._reading += time.perf_counter() - start

        return call


class _Quiet:
    """A logger stand-in: the bench prints its own summary."""

    def warning(self, *args: Any) -> None:
        pass


def _row(name: str, seconds: list[float], period_s: float, counted: str = "over the period") -> str:
    us = sorted(s * 1e6 for s in seconds)

    def at(q: float) -> float:
        return us[min(len(us) - 1, int(q * len(us)))]

    over = sum(1 for v in us if v > period_s * 1e6)
    return (
        f"  {name:14s} n={len(us):6d}  p50 {at(0.5):6.0f}  p99 {at(0.99):6.0f}  "
        f"p99.9 {at(0.999):6.0f}  max {us[-1]:7.0f} us  {counted}: {over}"
    )


def _one_set(sim: SimulatedAppliance, reps: int) -> None:
    """Inflate to 80 % of the true LOP, hold through one set, deflate (nothing recorded)."""
    c = sim.controller
    plant = sim.plant
    lop = plant.true_lop_mmHg
    c.handle({"cmd": "configure", "limb": plant.patient.limb, "lop_mmHg": lop})
    reply = c.handle({"cmd": "inflate", "target_mmHg": 0.8 * lop})
    if not reply["ok"]:
        raise SystemExit(reply["error"])
    if not sim.run_until(lambda: c.state == State.HOLDING, 60.0):
        raise SystemExit(f"never held: {c.state.value}")
    sim.run(2.0)
    plant.start_set(reps)
    while plant.reps_pending and c.state == State.HOLDING:
        sim.run(1.0)
    sim.run(plant.params.rep_duration_s)
    c.handle({"cmd": "deflate"})
    sim.run_until(lambda: c.state == State.IDLE, 30.0)


def _full_collection() -> tuple[float, int]:
    """How long a full collection takes now: the longest pause the collector can make."""
    tracked = len(gc.get_objects())
    start = time.perf_counter()
    gc.collect()
    return time.perf_counter() - start, tracked


def measure(reps: int, seed: int, limb: str, freeze: bool) -> None:
    plant = default_plant(seed, limb=limb)
    sim = build_simulated(plant, seed)
    watch = _Stopwatch()
    sensor = sim.devices.sensor
    sensor.read = watch.read(sensor.read)  # type: ignore[method-assign]
    sim.controller.tick = watch.tick(sim.controller.tick)  # type: ignore[method-assign]
    sim.run(0.3)
    frozen = settle_heap() if freeze else 0
    pauses: list[float] = []
    timer = GcPauseLog(_Quiet(), threshold_s=float("inf"))  # type: ignore[arg-type]

    def timed_pause(phase: str, info: dict[str, Any]) -> None:
        timer(phase, info)
        if phase == "stop":
            pauses.append(timer.last_s)

    gc.callbacks.append(timed_pause)
    try:
        _one_set(sim, reps)
    finally:
        gc.callbacks.remove(timed_pause)
    period = sim.loop.period_s
    how = f"{frozen} start-up objects frozen" if freeze else "nothing frozen"
    print(
        f"{limb} seed {seed}: inflate, one set of {reps}, deflate ({sim.clock.now():.0f} s "
        f"simulated), {how}; poll period {period * 1e6:.0f} us"
    )
    print(_row("whole tick", watch.ticks, period))
    print(_row("  its CPU time", watch.cpu, period))
    print(_row("sensor read", watch.reads, period))
    rest = [t - r for t, r in zip(watch.ticks, watch.reads, strict=True)]
    print(_row("all but read", rest, period))
    if pauses:
        print(_row("gc pause", pauses, period))
    full, tracked = _full_collection()
    print(f"  a full collection after the set: {full * 1e3:.1f} ms over {tracked} tracked objects")


LATE = "later than a period"


def _estimate_forever(stop: Any) -> None:
    """The estimator on a 30 s inflation trace, again and again until told to stop."""
    t = np.arange(0.0, 30.0, 0.004)
    p = 20.0 + 5.0 * t + 2.0 * np.sin(2.0 * np.pi * 1.2 * t)
    while not stop.is_set():
        judge(t, p, 0.2)


def _wake_lateness(seconds: float, period_s: float = 0.002) -> list[float]:
    late = []
    due = time.perf_counter()
    end = due + seconds
    while due < end:
        due += period_s
        time.sleep(max(0.0, due - time.perf_counter()))
        late.append(time.perf_counter() - due)
    return late


def estimator_beside_the_loop(seconds: float) -> None:
    print(f"a loop waking every 2 ms, {seconds:g} s each, while the LOP estimator works:")
    print(_row("nothing beside", _wake_lateness(seconds), 0.002, LATE))
    stop_thread = threading.Event()
    thread = threading.Thread(target=_estimate_forever, args=(stop_thread,))
    thread.start()
    try:
        late = _wake_lateness(seconds)
    finally:
        stop_thread.set()
        thread.join()
    print(_row("in a thread", late, 0.002, LATE))
    context = multiprocessing.get_context("forkserver")
    stop_process = context.Event()
    process = context.Process(target=_estimate_forever, args=(stop_process,))
    process.start()
    try:
        time.sleep(2.0)  # its imports
        late = _wake_lateness(seconds)
    finally:
        stop_process.set()
        process.join()
    print(_row("in a process", late, 0.002, LATE))


def measurement_start(seconds: float = 3.0) -> None:
    """The longest gap between ticks as an LOP measurement starts, its worker process with it.

    Run before anything else here has started the fork server: its first start imports numpy.
    """
    from appliance.lop.procedure import lop_procedure_factory

    sim = build_simulated(
        default_plant(2, limb="arm"), 2, procedures={"lop": lop_procedure_factory}
    )
    sim.clock.realtime = True
    stamps: list[float] = []
    sim.controller.on_tick = lambda rec: stamps.append(time.perf_counter())
    loop = threading.Thread(target=sim.loop.run, daemon=True)
    loop.start()
    time.sleep(1.5)  # the power-up deflation
    first = len(stamps)
    reply = sim.controller.submit({"cmd": "measure_lop", "limb": "arm"})
    time.sleep(seconds)
    sim.loop.stop()
    loop.join(5)
    gaps = np.diff(stamps[first:])
    print(
        f"an LOP measurement starting (ok={reply.get('ok')}): longest gap between ticks "
        f"{gaps.max() * 1e3:.1f} ms over {len(gaps)} ticks in {seconds:g} s (poll period 2 ms)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15, help="reps in the set (default 15)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limb", choices=("arm", "leg"), default="leg")
    parser.add_argument(
        "--freeze", choices=("yes", "no"), help="one case only (default: both, each afresh)"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="per estimator case (default 8)")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    if args.freeze:
        measure(args.reps, args.seed, args.limb, args.freeze == "yes")
        return 0
    # Each case in a fresh interpreter: freezing is for the life of the process.
    common = ["--reps", str(args.reps), "--seed", str(args.seed), "--limb", args.limb]
    for freeze in ("no", "yes"):
        done = subprocess.run([sys.executable, __file__, *common, "--freeze", freeze])
        if done.returncode:
            return done.returncode
    measurement_start()
    estimator_beside_the_loop(args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
