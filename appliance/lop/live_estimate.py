"""The estimator run on a growing inflation trace, inline or in a worker process.

The control tick only appends a sample and, twice a second, hands a copy of the trace to
the estimator; on the device the estimate (and the decision whether to stop) runs in a worker
process so the tick never waits for it. Not a thread: numpy holds the interpreter's lock through
many of its calls, and an estimator working in a thread beside the loop made the loop's 2 ms
wake-ups late by 2.8-2.9 ms at p99, against 0.5 ms with it in a process of its own (`python
bench/tick.py`, desktop cores); a Pi's slower core would stretch that toward the stop path's
20 ms. The worker is started by a fork server, not forked from the controller, whose other
threads may hold locks, and on a thread of its own: the fork server's first start imports
numpy, which froze the calling loop for 0.3-0.5 s on a desktop. In simulated time that does
not follow the wall clock it runs inline: simulated time does not pass while it computes, so
the outcome is that of a device whose estimate is instant.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from array import array
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor

import numpy as np

from appliance.lop.confirmation import Verdict, may_stop
from appliance.lop.estimator import estimate_lop

log = logging.getLogger(__name__)
# A worker not answering by then is not coming: a Pi's fork server imports numpy in seconds.
START_TIMEOUT_S = 15.0


def judge(t_s: np.ndarray, pressure_mmHg: np.ndarray, arterial_fraction: float) -> Verdict:
    estimate = estimate_lop(t_s, pressure_mmHg, arterial_fraction=arterial_fraction)
    return Verdict(estimate, may_stop(estimate, arterial_fraction))


def worker() -> Executor:
    """One estimating process beside the controller's.

    The fork server imports the estimator once, so each measurement's worker starts with numpy
    loaded rather than spending its first seconds on imports (a Pi's are slow).
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return ProcessPoolExecutor(1, mp_context=context)


class LiveEstimate:
    """Collects (t, mmHg) samples and keeps the newest verdict on the trace so far."""

    def __init__(
        self,
        every_s: float,
        inline: bool,
        arterial_fraction: float,
        start_worker: Callable[[], Executor] | None = None,
    ) -> None:
        self.every_s = every_s
        self.arterial_fraction = arterial_fraction
        self.inline = inline
        self._pool: Executor | None = None
        self._closed = False
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._t = array("d")
        self._p = array("d")
        self._pending: Future[Verdict] | None = None
        self._last_submit = float("-inf")
        self.latest: Verdict | None = None
        if not inline:
            # Starting a worker process waits for the fork server, which imports numpy and
            # the estimator the first time: 0.3-0.5 s on a desktop, seconds on a Pi, with the
            # loop that calls this frozen and the pump as it was. So it starts on a thread of
            # its own, and estimates are handed over once it is up.
            threading.Thread(
                target=self._start,
                args=(start_worker or worker,),
                name="lop-worker-start",
                daemon=True,
            ).start()

    def _start(self, start_worker: Callable[[], Executor]) -> None:
        pool: Executor | None = None
        try:
            pool = start_worker()
            pool.submit(int).result(timeout=START_TIMEOUT_S)  # the process exists and answers
        except Exception as exc:
            # Without estimates the ramp would climb blind to its highest search pressure:
            # the next poll raises, and the measurement fails and vents.
            log.exception("the LOP estimator's worker process did not start")
            self._error = exc
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            return
        with self._lock:
            if not self._closed:
                self._pool, pool = pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    @property
    def ready(self) -> bool:
        """Estimates can be made: inline, or the worker process is up."""
        return self.inline or self._pool is not None

    def restart(self) -> None:
        """Forget the trace (next reading); a late verdict on the old one is dropped."""
        self._t = array("d")
        self._p = array("d")
        if self._pending is not None:
            self._pending.cancel()
        self._pending = None
        self._last_submit = float("-inf")
        self.latest = None

    def add(self, t: float, mmHg: float) -> None:
        self._t.append(t)
        self._p.append(mmHg)

    def poll(self, now: float) -> Verdict | None:
        """A verdict that is new since the last poll, if any; starts the next one when due."""
        fresh = None
        if self._pending is not None and self._pending.done():
            if not self._pending.cancelled():
                fresh = self.latest = self._pending.result()
            self._pending = None
        if self._error is not None:
            raise RuntimeError("its worker process did not start") from self._error
        due = now - self._last_submit >= self.every_s and len(self._t) > 1
        pool = self._pool  # once: the starting thread may hand it over meanwhile
        if self._pending is None and due and (self.inline or pool is not None):
            self._last_submit = now
            t = np.frombuffer(self._t, dtype=float).copy()
            p = np.frombuffer(self._p, dtype=float).copy()
            if pool is None:
                fresh = self.latest = judge(t, p, self.arterial_fraction)
            else:
                self._pending = pool.submit(judge, t, p, self.arterial_fraction)
        return fresh

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
