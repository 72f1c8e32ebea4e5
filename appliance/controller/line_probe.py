"""The sensing line's probe: is the reading following the cuff, or lagging behind a pinched hose?

A partly pinched line (a hose under the leg, a kink at the manifold) leaves the reading alive,
noisy and in range, only late: the climb overshoots by its rate times the lag, and the hold then
vents and refills on an old picture of the cuff, every rep, for as long as the line stays
pinched. Nothing in the pressure alone tells late from true. The dump valve does: it acts within
milliseconds and has no inertia, so on a healthy line the reading falls while the valve is open
and stops when it shuts; behind a lag, it hardly moves while the valve is open and goes on
falling after it shut.

So, holding a still cuff (nothing actuated for `quiet_s`, the reading near the set point, just
after a heartbeat's peak), the probe opens the valve for a loop poll or two and keeps both
actuators still while it watches. It measures how long after the opening the reading took to
fall by half of what it has fallen 0.2 s after the shut, and calls the line lagging when that
is later than any healthy valve's own response allows, twice in a row (a second probe follows
a first slow one within seconds). An opening that took too little off to judge is made twice as
long next time (where it took plenty off before, only after two such), and the widest opening,
or one that took plenty off before, moving nothing is a blocked line. A cuff that leaves the
band while watched (a rep, a knock), or falls further than the valve's drop explains (a limb
relaxing), is handed straight back to the regulator, unjudged; and a probe opens only where
that drop leaves the cuff inside the band.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from itertools import takewhile

from appliance.controller.regulator import Actuation

STILL = Actuation(0.0, False)


class Verdict(StrEnum):
    HEALTHY = "healthy"
    LAGGING = "lagging"
    UNJUDGED = "unjudged"


@dataclass(frozen=True)
class LineProbeTuning:
    quiet_s: float = 0.4  # nothing actuated this long (a pump's coast is over) before a probe
    first_after_s: float = 0.5  # holding this long before the first probe of an inflation
    every_s: float = 30.0  # a line pinched later is found at the next still moment after this
    retry_s: float = 1.0  # after a probe too small to judge, or cut short
    # The still reading from just under the set point to this share over it: the probe's dip
    # starts from the top of the band, so it stays clear of its floor.
    under_frac: float = 0.025
    steady_frac: float = 0.02
    # ...and high enough that the valve's fastest judged drop at this opening leaves the cuff
    # above this share under the set point: one loop poll takes 5 % off a small arm cuff, and
    # a limb relaxing on top of it took the cuff to 91 %. Not once the line is suspected: the
    # probe that confirms it must come soon.
    land_frac: float = 0.04
    # The heartbeat's upstroke is the one fast thing in a still cuff (1-3 mmHg in 0.1 s): a
    # probe opens just after a beat's peak, in the slow run-off, so the next upstroke comes
    # after the watch. The peak is the highest 10 ms mean of the last `beat_rise_s`, 15-80 ms
    # ago, having risen at least `beat_min_mmHg` within it: a rep's slow relaxation or swell
    # has no such peak, and a probe there had judged a healthy line lagging. A cuff that
    # swings less than `beat_min_mmHg` in `beat_window_s` has no beat to spoil the watch (above
    # the LOP) and is probed at once.
    beat_min_mmHg: float = 0.4
    beat_peak_within_s: tuple[float, float] = (0.015, 0.08)
    beat_rise_s: float = 0.25  # shorter than a beat at 200 a minute
    beat_window_s: float = 1.5  # longer than a beat at 40 a minute
    # The first opening of a hold: one loop poll, for a small arm cuff behind a wide valve
    # loses 10 % of its pressure in 6 ms. Doubled until the drop can be judged.
    open_s: float = 0.002
    max_open_s: float = 0.064
    before_s: float = 0.01  # the reading before: its mean over this long before the valve opened
    smooth_s: float = 0.005  # the reading after: means over +-this
    # The whole drop, read this long after the valve shut: a healthy valve closes in 5-30 ms
    # and its drop is all in by then, while a lagging line has shown at most 86 % of it (0.1 s).
    whole_after_s: float = 0.2
    # A smaller whole drop is not judged, and the next opening doubles. Not at once where this
    # opening took `enough_drop_mmHg` off this cuff before, unless the line is suspected: a limb
    # rising under the watch also makes a drop small, and an opening doubled for one such drop
    # dumped an arm cuff 6 % at every probe after. There it takes two in a row.
    min_drop_mmHg: float = 1.5
    small_in_a_row: int = 2
    enough_drop_mmHg: float = 3.0
    # The opening whose last judged drop was `enough_drop_mmHg` or more now leaving every
    # reading of the watch within this of the one before: the reading is not the cuff's (a
    # blocked hose, a frozen transducer). A live reading moves with the valve, beat or limb.
    flat_mmHg: float = 0.5
    # A drop this many times the least judged halves the next opening (down to `open_s`).
    shrink_over: float = 3.0
    # Half the whole drop shows on a healthy line within the opening's middle plus the valve's
    # own response (at most about 25 ms; thighs 40 ms), behind a lag of 0.1 s some 40-70 ms
    # later. A limb relaxing under the watch can slow a healthy line's half to 84 ms once, not
    # twice in a row: through whole sessions on 24 project patients no healthy pair of probes
    # was over 62 ms.
    half_within_s: float = 0.065
    # A whole drop more than this many times the last judged one at the same opening was not
    # the valve's alone (the limb moved, a rep's swell went out): not judged.
    max_drop_growth: float = 2.0
    # Lagging judgements in a row before the verdict: a rep's relaxation or a beat falling in
    # the watch can make one probe of a healthy line slow; a pinched line is slow every time.
    confirm: int = 2
    confirm_within_s: float = 10.0
    leave_frac: float = 0.045  # the regulator's vent level: a rep or a knock, handed back
    low_leave_frac: float = 0.08  # under this the regulator gets the cuff back, unjudged
    # A reading that has fallen more than `fall_growth` times the valve's fastest judged drop
    # (scaled to this opening) is the limb falling as well: a lagging line shows less than the
    # valve's drop, never more. Handed back at once, so the pump meets a relaxing limb before
    # the floor.
    fall_growth: float = 1.5
    fall_margin_mmHg: float = 0.5


@dataclass(frozen=True)
class ProbeResult:
    """One probe, for events and benches: how far and how soon the reading fell."""

    t: float  # when the probe ended: the watch done, or the cuff handed back
    open_s: float
    whole_mmHg: float
    half_s: float | None  # from the valve opening to half the whole drop
    verdict: Verdict


class LineProbe:
    """Runs beside the regulator while holding; `step` may override its actuation."""

    def __init__(
        self,
        tuning: LineProbeTuning | None = None,
        on_result: Callable[[ProbeResult], None] | None = None,
    ) -> None:
        self.tuning = tuning or LineProbeTuning()
        self.on_result = on_result
        self.results: list[ProbeResult] = []
        self.reset()

    def reset(self) -> None:
        """A new inflation: a new cuff, maybe a new line; start over from the shortest opening."""
        self._due_t: float | None = None
        self._open_s = self.tuning.open_s
        self._recent: deque[tuple[float, float]] = deque()  # the readings of the last `quiet_s`
        # Running means of the readings over `_MEAN_S`, kept as they come, to find the beat.
        self._smoothing = _RunningMean(_MEAN_S)
        self._smoothed: deque[tuple[float, float]] = deque()
        self._lagging = 0  # lagging judgements in a row, within `confirm_within_s`
        self._suspected_t = 0.0  # when the first of them came
        self._still_since: float | None = None  # neither pump nor valve driven since
        self._opened_t: float | None = None
        self._watch: list[tuple[float, float]] = []
        self._before = 0.0
        self._last_drop: tuple[float, float] | None = None  # (opening, whole drop) last judged
        self._valve_rate: float | None = None  # the fastest judged drop, mmHg per s of opening
        self._small = 0  # drops too small to judge in a row at this opening
        self.verdict: Verdict | None = None

    @property
    def probing(self) -> bool:
        return self._opened_t is not None

    def step(self, now: float, raw: float | None, target: float, wanted: Actuation) -> Actuation:
        """This tick's actuation while holding: the regulator's `wanted`, or the probe's own."""
        tn = self.tuning
        if self._due_t is None:
            self._due_t = now + tn.first_after_s
        if raw is not None:
            self._recent.append((now, raw))
            while now - self._recent[0][0] > tn.quiet_s:
                self._recent.popleft()
            self._smoothed.append(self._smoothing.add(now, raw))
            while now - self._smoothed[0][0] > tn.beat_window_s:
                self._smoothed.popleft()
        if self._opened_t is not None:
            return self._probe(now, raw, target, wanted)
        if wanted != STILL:
            self._still_since = None
            return wanted
        if self._still_since is None:
            self._still_since = now
        if now >= self._due_t and self._may_open(now, target):
            self._opened_t = now
            self._before = statistics.fmean(
                r for t, r in self._still(now) if now - t <= tn.before_s
            )
            self._watch = []
            return Actuation(0.0, True)
        return wanted

    def _still(self, now: float) -> list[tuple[float, float]]:
        """The readings of the last `quiet_s` taken with neither pump nor valve driven."""
        assert self._still_since is not None
        since = max(self._still_since, now - self.tuning.quiet_s)
        return [(t, r) for t, r in self._recent if t >= since]

    def _may_open(self, now: float, target: float) -> bool:
        """Still for `quiet_s`, near the set point, and just past a heartbeat's peak."""
        tn = self.tuning
        assert self._still_since is not None
        if now - self._still_since < tn.quiet_s:
            return False
        still = self._still(now)
        if len(still) < 10:
            return False
        reading = still[-1][1]
        if not (1 - tn.under_frac) * target <= reading <= (1 + tn.steady_frac) * target:
            return False
        landing = reading - (self._valve_rate or 0.0) * self._open_s
        if not self._lagging and landing < (1 - tn.land_frac) * target:
            return False
        means = self._smoothed
        if max(m for _, m in means) - min(m for _, m in means) < tn.beat_min_mmHg:
            return True  # no beat to spoil the watch
        # The newest means only, read from the end: this runs on every still tick once due.
        recent = list(takewhile(lambda m: now - m[0] <= tn.beat_rise_s, reversed(means)))
        recent.reverse()
        if not recent:  # no reading for a while (the supervisor is on it): no probe
            return False
        peak_t, peak = max(recent, key=lambda m: m[1])
        lo, hi = tn.beat_peak_within_s
        if not lo <= now - peak_t <= hi:
            return False
        return peak - min(m for t, m in recent if t <= peak_t) >= tn.beat_min_mmHg

    def _probe(self, now: float, raw: float | None, target: float, wanted: Actuation) -> Actuation:
        tn = self.tuning
        assert self._opened_t is not None
        if raw is not None:
            self._watch.append((now, raw))
        if now - self._opened_t < self._open_s:
            return Actuation(0.0, True)
        shut_t = self._opened_t + self._open_s
        if raw is not None and (
            not (1 - tn.low_leave_frac) * target <= raw <= (1 + tn.leave_frac) * target
            or raw < self._lowest_from_the_valve()
        ):
            self._finish(now, None)
            return wanted
        if now - shut_t < tn.whole_after_s + tn.smooth_s:
            return STILL
        self._finish(now, shut_t)
        return wanted

    def _lowest_from_the_valve(self) -> float:
        """The lowest reading this opening's drop can explain, from the fastest one judged."""
        if self._valve_rate is None:
            return float("-inf")
        expected = self._valve_rate * self._open_s
        return self._before - self.tuning.fall_growth * expected - self.tuning.fall_margin_mmHg

    def _takes_enough_off(self) -> bool:
        """The fastest judged drop says this opening takes `enough_drop_mmHg` off this cuff."""
        rate = self._valve_rate
        return rate is not None and rate * self._open_s >= self.tuning.enough_drop_mmHg

    def _finish(self, now: float, shut_t: float | None) -> None:
        """Judge a completed watch (`shut_t` given) or drop one cut short."""
        tn = self.tuning
        opened = self._opened_t
        assert opened is not None
        self._opened_t = None
        self._still_since = None
        judged = None if shut_t is None else self._judge(now, opened, shut_t)
        result = judged or ProbeResult(now, self._open_s, float("nan"), None, Verdict.UNJUDGED)
        self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)
        if result.verdict == Verdict.UNJUDGED:
            if -tn.flat_mmHg <= result.whole_mmHg < tn.min_drop_mmHg:  # too little taken off
                self._small += 1
                # Open longer unless this opening took plenty off before (a limb's doing, once).
                if (
                    not self._takes_enough_off()
                    or self._small >= tn.small_in_a_row
                    or self._lagging
                ):
                    self._open_s = min(tn.max_open_s, 2 * self._open_s)
                    self._small = 0
            self._due_t = now + tn.retry_s
            return
        self._small = 0
        if result.whole_mmHg >= tn.min_drop_mmHg:  # not a blocked line's nothing
            self._last_drop = (result.open_s, result.whole_mmHg)
            rate = result.whole_mmHg / result.open_s
            self._valve_rate = max(rate, self._valve_rate or rate)
        if result.whole_mmHg > tn.shrink_over * tn.min_drop_mmHg:
            self._open_s = max(tn.open_s, 0.5 * self._open_s)
        if result.verdict != Verdict.LAGGING:
            self._lagging = 0
        elif self._lagging and now - self._suspected_t <= tn.confirm_within_s:
            self._lagging += 1
        else:  # a first slow probe, or one long after the last: suspected afresh
            self._lagging, self._suspected_t = 1, now
        if 0 < self._lagging < tn.confirm:
            self._due_t = now + tn.retry_s  # suspected: probe again soon before calling it
            return
        self.verdict = result.verdict
        self._due_t = now + tn.every_s

    def _judge(self, now: float, opened: float, shut_t: float) -> ProbeResult | None:
        tn = self.tuning
        means = _means(self._watch, 2 * tn.smooth_s)
        whole_t = shut_t + tn.whole_after_s
        whole = [m for t, m in means if abs(t - whole_t) <= tn.smooth_s]
        if not whole:
            return None
        drop = self._before - statistics.fmean(whole)
        last = self._last_drop
        if (abs(drop) < tn.min_drop_mmHg and self._open_s >= tn.max_open_s) or (
            last is not None
            and last[0] == self._open_s
            and last[1] >= tn.enough_drop_mmHg
            and all(abs(self._before - m) <= tn.flat_mmHg for _, m in means)
        ):
            # The widest opening, or one that took plenty off this cuff before, moved nothing:
            # the reading is not the cuff's (a hose blocked, a transducer frozen), or the valve
            # did not open. Either way: empty the cuff.
            return ProbeResult(now, self._open_s, drop, None, Verdict.LAGGING)
        if drop < tn.min_drop_mmHg or (
            last is not None and last[0] == self._open_s and drop > tn.max_drop_growth * last[1]
        ):
            return ProbeResult(now, self._open_s, drop, None, Verdict.UNJUDGED)
        half_t = next((t for t, m in means if self._before - m >= 0.5 * drop), None)
        half_s = None if half_t is None else half_t - opened
        lagging = half_s is None or half_s > tn.half_within_s
        verdict = Verdict.LAGGING if lagging else Verdict.HEALTHY
        return ProbeResult(now, self._open_s, drop, half_s, verdict)


_MEAN_S = 0.01  # the beat's peak is found on running means over this long


class _RunningMean:
    """The mean of the readings over the last `width_s`, dated at the middle of its window:
    the ADC's noise taken out."""

    def __init__(self, width_s: float) -> None:
        self.width_s = width_s
        self._window: deque[tuple[float, float]] = deque()

    def add(self, t: float, r: float) -> tuple[float, float]:
        window = self._window
        window.append((t, r))
        while t - window[0][0] > self.width_s:
            window.popleft()
        return t - 0.5 * (t - window[0][0]), statistics.fmean(v for _, v in window)


def _means(points: list[tuple[float, float]], width_s: float) -> list[tuple[float, float]]:
    """Running means over the `width_s` up to each point."""
    running = _RunningMean(width_s)
    return [running.add(t, r) for t, r in points]
