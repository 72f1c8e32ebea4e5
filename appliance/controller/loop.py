"""The fixed-rate control loop: poll at twice the ADC rate, act on each fresh sample, feed systemd
and the hardware dead-man."""

from __future__ import annotations

import threading
from collections.abc import Callable

from appliance.controller.core import Controller
from appliance.controller.supervisor import State
from appliance.controller.watchdog import Watchdog
from hardware.clock import Clock
from hardware.ports import Deadman

# The dead-man's monostable holds pump and valve power for about 150 ms after an edge: an edge
# every 10 ms keeps it on through a late tick or two, and costs nothing next to the loop.
DEADMAN_KICK_S = 0.01


class ControlLoop:
    """Runs `Controller.tick` on a fixed schedule against any clock (real or simulated)."""

    def __init__(
        self,
        controller: Controller,
        clock: Clock,
        data_rate_sps: int,
        watchdog: Watchdog | None = None,
        deadman: Deadman | None = None,
        serving: Callable[[], bool] | None = None,
    ) -> None:
        self.controller = controller
        self.clock = clock
        # Polling at twice the conversion rate hands on every conversion with at most half a
        # conversion period of added latency (2 ms at 250 SPS): the stop path's budget is 20 ms.
        self.period_s = 1.0 / (2 * data_rate_sps)
        self.watchdog = watchdog
        self.deadman = deadman
        # The controller's sockets: a loop that ticks on while nobody can reach it is of no use
        # to the clinic (the UI's heartbeat stops, so it deflates), and a restart mends it.
        self.serving = serving
        self._kicked = -float("inf")
        self.overruns = 0
        self._stop = threading.Event()
        self._ready_sent = False

    def stop(self) -> None:
        self._stop.set()

    def run(self, duration_s: float | None = None) -> None:
        """Loop until `stop()` or an error, which end deflated; or for `duration_s` of clock time
        (simulation runs in chunks and keeps its state between them)."""
        start = self.clock.now()
        next_t = start
        if self.watchdog is not None and not self._ready_sent:
            self._ready_sent = True
            self.watchdog.ready(self._status_text())
        try:
            while not self._stop.is_set():
                now = self.clock.now()
                if duration_s is not None and now - start >= duration_s:
                    break
                self.controller.tick()
                if self.watchdog is not None:
                    done = self.clock.now()  # a tick that blocked (wedged bus) shows here
                    healthy = (
                        self.controller.healthy
                        and self.on_schedule(done, next_t)
                        and (self.serving is None or self.serving())
                    )
                    self.watchdog.feed(done, healthy, self._status_text())
                self._feed_deadman(now)
                next_t += self.period_s
                delay = next_t - self.clock.now()
                if delay < -self.period_s * 5:
                    next_t = self.clock.now()  # fell behind: resynchronise, do not burst
                    self.overruns += 1
                self.clock.sleep(max(0.0, delay))
        except BaseException:
            self._shutdown()
            raise
        if self._stop.is_set():
            self._shutdown()

    def _feed_deadman(self, now: float) -> None:
        """Only a loop that keeps ticking keeps pump and valve powered, and not in FAULT: there
        the outputs must be pump off and valve open, and without power they are, whatever drives
        the pins."""
        if self.deadman is None or now - self._kicked < DEADMAN_KICK_S:
            return
        if self.controller.state == State.FAULT:
            return
        self.deadman.kick()
        self._kicked = now

    def _shutdown(self) -> None:
        self.controller.safe_shutdown()
        if self.watchdog is not None:
            self.watchdog.stopping()

    def on_schedule(self, now: float, scheduled: float) -> bool:
        """Healthy timing: this tick finished within 100 ms of its schedule."""
        return now - scheduled < 0.1

    def _status_text(self) -> str:
        c = self.controller
        p = "--" if c.pressure is None else f"{c.pressure:.0f}"
        return f"{c.state.value} {p} mmHg" + (f" fault {c.fault.value}" if c.fault else "")
