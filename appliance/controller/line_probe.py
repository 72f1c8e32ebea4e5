"""The sensing line's probe: is the reading following the cuff, or lagging behind a pinched hose?

A partly pinched line (a hose under the leg, a kink at the manifold) leaves the reading alive,
noisy and in range, only late: the climb overshoots by its rate times the lag, and the hold then
vents and refills on an old picture of the cuff, every rep, for as long as the line stays
pinched. Nothing in the pressure alone tells late from true. The dump valve does: it acts within
milliseconds and has no inertia, so on a healthy line the reading falls while the valve is open
and stops when it shuts; behind a lag, it hardly moves while the valve is open and goes on
falling after it shut.

So, holding a still cuff (nothing actuated for `quiet_s` and no rep vented for `after_rep_s`,
the reading near the set point, just after a heartbeat's peak), the probe opens the valve for a
loop poll or two and keeps both actuators still while it watches. It measures how long after the
opening the reading took to fall by half of what it has fallen 0.2 s after the shut, and calls
the line lagging when that is later than any healthy valve's own response allows, twice in a row
(a second probe follows a first slow one within seconds). The heartbeat's run-off goes on under
the watch, and on a strong pulse it outweighs what a one-poll opening takes off; where the cuff
has been still long enough to find an earlier beat, that beat's same stretch is taken out of the
watch. A watch with the beat left in is held to a looser limit and teaches nothing about the
valve. An opening that took too little off to judge is made twice as long next time (where it
took plenty off before, only after two such), and the widest opening, or one that took plenty
off before, moving nothing is a blocked line. A cuff that leaves the band while watched (a rep,
a knock), or falls further than the valve's drop explains (a limb relaxing), is handed straight
back to the regulator, unjudged; so is one that goes on falling past the band's floor after a
drop that came at once, which needs no drop judged before. A probe opens only where that drop
leaves the cuff inside the band.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from itertools import chain, takewhile

import numpy as np

from appliance.controller.regulator import Actuation

STILL = Actuation(0.0, False)


class Verdict(StrEnum):
    HEALTHY = "healthy"
    LAGGING = "lagging"
    UNJUDGED = "unjudged"


@dataclass(frozen=True)
class LineProbeTuning:
    quiet_s: float = 0.4  # nothing actuated this long (a pump's coast is over) before a probe
    # ...and no rep vented this long: a rep's top, clipped, can sit as still as a rest, a beat's
    # peak on it, and its relaxation came 0.4-0.5 s after the vent and fell 7-10 mmHg through
    # the watch (twice in a row on two varied thighs with premature beats: emptied). By 0.6 s
    # the relaxation is under way, with no beat's peak to open on, or over. Waiting 1 s, or
    # for the reading to dip under the set point, found fewer lagging arms in a set (8 and 1
    # of 12, against 11): behind a lag the moments just after a rep are the ones to probe.
    after_rep_s: float = 0.6
    first_after_s: float = 0.5  # holding this long before the first probe of an inflation
    every_s: float = 30.0  # a line pinched later is found at the next still moment after this
    retry_s: float = 1.0  # after a probe too small to judge, or cut short
    # Probes cut short in a row wait twice as long each time, up to `every_s`, unless the line is
    # suspected: between a set's reps every probe met the next rep and was handed back, and
    # one a second clicked the valve 127 times through one session.
    cut_backoff: float = 2.0
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
    # The beat's run-off goes on under the watch: on a thigh at 150 a minute it fell 3 mmHg in
    # 0.1 s while a one-poll opening took 0.1 mmHg off, and a healthy line was judged lagging
    # twice in a row. So the same part of an earlier beat is taken out of what the watch
    # reads: the last `match_s` of still readings before the opening (this beat's upstroke
    # and peak) is matched against those before it, and the best match's continuation is the
    # beat's own run-off. It takes about 0.8 s of still cuff (a beat back and a watch) since
    # the regulator last acted; a probe does not wait for it, for between a set's reps the
    # cuff is seldom still that long, and a probe that waited there found a lagging line in
    # 4 of 12 arms through a set where one that did not found 11. (A single peak was too noisy
    # to align on: small beats on an arm were matched 0.1-0.2 s off.) A match is one that
    # leaves less than `match_residual` of the readings' variance, or misses by less than
    # `match_rms_mmHg` (a small beat behind a lag is mostly noise, and a miss that small
    # cannot fake a judged drop). A match whose continuation rises more than `beat_min_mmHg`
    # within the watch was a beat with another close behind it: that upstroke, taken out when
    # it did not come, read as a late fall (3 of 48 varied plants judged lagging once).
    match_s: float = 0.3
    match_residual: float = 0.25
    match_rms_mmHg: float = 0.3
    history_s: float = 2.0  # the means kept: a beat at 40 a minute and a watch
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
    # opening took `enough_drop_mmHg` off this cuff before: a limb rising under the watch also
    # makes a drop small, and an opening doubled for one such drop dumped an arm cuff 6 % at
    # every probe after. There it takes two in a row, on a suspected line too: a lag that took
    # a judged drop before shows one again, and the confirming probe skips the landing check
    # (a healthy arm's, widened for one small drop, dumped it to 91 %).
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
    # own response (at most about 25 ms; thighs 40 ms); behind a lag of 0.1 s, half of the 86 %
    # shown by then takes 56 ms more. With the beat taken out, healthy halves were 6-42 ms.
    # With it left in, a beat's run-off slows them (to 84 ms and more on large pulses), which
    # a single slow probe may be, not two in a row: through whole sessions on 24 project
    # patients no healthy pair of probes was over 62 ms.
    half_within_s: float = 0.048
    beat_left_half_within_s: float = 0.065
    # A whole drop more than this many times the last judged one at the same opening was not
    # the valve's alone (the limb moved, a rep's swell went out): not judged.
    max_drop_growth: float = 2.0
    # After the shut, a healthy reading settles and a lagging one goes on falling: neither
    # rises. One that rises more than `beat_min_mmHg` (and this share of the whole drop: the
    # air a fast dump cooled warms again) met the next beat's upstroke (a premature beat):
    # the fall after it is that beat's run-off, and a slow half-drop there is not judged.
    upstroke_share: float = 0.25
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
    # With no drop judged yet there is no valve rate to tell the limb's fall from the valve's,
    # and a probe that met a relaxing limb held the pump off until the 8 % floor: the hold's
    # lowest samples (91.4-92.7 % of the set point on arms) were all such dents. So a reading
    # `floor_frac` under the set point, `floor_after_s` after the shut, whose fall came early
    # (at least `early_share` of it by `early_s` after the shut: the valve's drop) and has
    # gone on by `going_on_mmHg` since is a limb falling, and handed back. Behind a lag of
    # 0.1 s the reading has shown at most 0.33 of its fall by then that early; the valve's
    # drop alone, however deep, is in by `settled_s` and is left to the watch. The drop at
    # `settled_s` is kept as the valve's for the next opening's landing (the first 20 ms alone
    # left a slow valve's probes on a small cuff blind, and each dented it 8 %). Once a rate is
    # known this runs beside the check above; whichever sees the fall first hands back.
    floor_frac: float = 0.05
    floor_after_s: float = 0.08
    early_s: float = 0.02
    early_share: float = 0.4
    going_on_mmHg: float = 1.5
    settled_s: float = 0.05  # the valve's drop, for the next landing, is read this long after


@dataclass(frozen=True)
class ProbeResult:
    """One probe, for events and benches: how far and how soon the reading fell."""

    t: float  # when the probe ended: the watch done, or the cuff handed back
    open_s: float
    whole_mmHg: float
    half_s: float | None  # from the valve opening to half the whole drop
    verdict: Verdict
    beat_out: bool = False  # an earlier beat's run-off was taken out of the watch


class LineProbe:
    """Runs beside the regulator while holding; `step` may override its actuation."""

    def __init__(
        self,
        tuning: LineProbeTuning | None = None,
        on_result: Callable[[ProbeResult], None] | None = None,
    ) -> None:
        self.tuning = tuning or LineProbeTuning()
        self.on_result = on_result
        self.results: list[ProbeResult] = []  # the newest KEPT_RESULTS, for benches and tests
        self.reset()

    def reset(self) -> None:
        """A new inflation: a new cuff, maybe a new line; start over from the shortest opening."""
        self._due_t: float | None = None
        self._open_s = self.tuning.open_s
        self._recent: deque[tuple[float, float]] = deque()  # the readings of the last `quiet_s`
        # Running means of the readings over `_MEAN_S`, kept as they come, to find the beat.
        self._smoothing = _RunningMean(_MEAN_S)
        self._smoothed: deque[tuple[float, float]] = deque()
        self._swing = _Swing(self.tuning.history_s)  # the extremes of those means
        self._beating = False  # the last opening was timed on a heartbeat's peak
        self._beat: _Beat | None = None  # the earlier beat taken out of this watch
        self._lagging = 0  # lagging judgements in a row, within `confirm_within_s`
        self._suspected_t = 0.0  # when the first of them came
        self._still_since: float | None = None  # neither pump nor valve driven since
        self._opened_t: float | None = None
        self._start_watch()
        self._before = 0.0
        self._last_drop: tuple[float, float] | None = None  # (opening, whole drop) last judged
        self._valve_rate: float | None = None  # the fastest judged drop, mmHg per s of opening
        self._small = 0  # drops too small to judge in a row at this opening
        self._cut = 0  # probes cut short in a row
        self.verdict: Verdict | None = None

    def _start_watch(self) -> None:
        """Empty the watch's readings for the next opening."""
        # Kept as running means as they come, the earlier beat taken out (the floor check reads
        # them on every tick under the floor, the judgement at the end)...
        self._watch_mean = _RunningMean(2 * self.tuning.smooth_s)
        self._watch_means: list[tuple[float, float]] = []
        self._raw_watch: list[tuple[float, float]] = []  # ...and the readings as read

    @property
    def probing(self) -> bool:
        return self._opened_t is not None

    @property
    def valve_rate(self) -> float | None:
        """The fastest drop judged with no beat left in the watch, or seen by `settled_s` after
        the shut of a probe that handed a limb's fall back, mmHg per s of opening."""
        return self._valve_rate

    def step(
        self,
        now: float,
        raw: float | None,
        target: float,
        wanted: Actuation,
        rep_vent_t: float = -math.inf,
    ) -> Actuation:
        """This tick's actuation while holding: the regulator's `wanted`, or the probe's own.

        `rep_vent_t` is when the regulator last vented a rep."""
        tn = self.tuning
        if self._due_t is None:
            self._due_t = now + tn.first_after_s
        if raw is not None:
            self._recent.append((now, raw))
            while now - self._recent[0][0] > tn.quiet_s:
                self._recent.popleft()
            mean = self._smoothing.add(now, raw)
            self._smoothed.append(mean)
            self._swing.add(mean)
            while now - self._smoothed[0][0] > tn.history_s:
                self._smoothed.popleft()
        if self._opened_t is not None:
            return self._probe(now, raw, target, wanted)
        if wanted != STILL:
            self._still_since = None
            return wanted
        if self._still_since is None:
            self._still_since = now
        if now >= self._due_t and self._may_open(now, target, rep_vent_t):
            beat = self._earlier_beat(now) if self._beating else None
            self._opened_t = now
            self._before = statistics.fmean(
                r for t, r in self._still(now) if now - t <= tn.before_s
            )
            self._start_watch()
            self._beat = beat
            return Actuation(0.0, True)
        return wanted

    def _still(self, now: float) -> list[tuple[float, float]]:
        """The readings of the last `quiet_s` taken with neither pump nor valve driven."""
        assert self._still_since is not None
        since = max(self._still_since, now - self.tuning.quiet_s)
        return [(t, r) for t, r in self._recent if t >= since]

    def _may_open(self, now: float, target: float, rep_vent_t: float) -> bool:
        """Still for `quiet_s`, no rep vented for `after_rep_s`, near the set point, and just
        past a heartbeat's peak."""
        tn = self.tuning
        assert self._still_since is not None
        if now - self._still_since < tn.quiet_s or now - rep_vent_t < tn.after_rep_s:
            return False
        # Ten still readings at least, counted from the end: this runs on every still tick
        # once due, and copying the last `quiet_s` each time cost up to 0.2 ms a tick.
        since = max(self._still_since, now - tn.quiet_s)
        if len(self._recent) < 10 or self._recent[-10][0] < since:
            return False
        reading = self._recent[-1][1]
        # Once suspected, from as low as a probe may land: the cuff a first probe left under the
        # band's middle waited 10 s there for the one that confirms the lag.
        under = tn.land_frac if self._lagging else tn.under_frac
        if not (1 - under) * target <= reading <= (1 + tn.steady_frac) * target:
            return False
        landing = reading - (self._valve_rate or 0.0) * self._open_s
        if not self._lagging and landing < (1 - tn.land_frac) * target:
            return False
        self._beating = False
        swing = self._swing.over(now, tn.beat_window_s)
        if swing is not None and swing < tn.beat_min_mmHg:
            return True  # no beat to spoil the watch
        # The newest means only, read from the end: this runs on every still tick once due.
        recent = list(takewhile(lambda m: now - m[0] <= tn.beat_rise_s, reversed(self._smoothed)))
        recent.reverse()
        if not recent:  # no reading for a while (the supervisor is on it): no probe
            return False
        peak_t, peak = max(recent, key=lambda m: m[1])
        lo, hi = tn.beat_peak_within_s
        if not lo <= now - peak_t <= hi:
            return False
        self._beating = peak - min(m for t, m in recent if t <= peak_t) >= tn.beat_min_mmHg
        return self._beating

    def _earlier_beat(self, now: float) -> _Beat | None:
        """The earlier stretch of still readings that best matches the one before this opening.

        Only readings since the regulator last acted: a pump's run or a vent is not the beat.
        """
        tn = self.tuning
        assert self._still_since is not None
        watch_s = self._open_s + tn.whole_after_s + 2 * tn.smooth_s
        # At least the shortest beat (220 a minute) of still readings before the matched ones.
        if now - self._still_since < tn.match_s + watch_s + 0.27:
            return None
        flat = np.fromiter(chain.from_iterable(self._smoothed), float, 2 * len(self._smoothed))
        ts, ms = flat[0::2], flat[1::2]
        first = int(np.searchsorted(ts, self._still_since))
        grid = np.arange(ts[first], ts[-1], _GRID_S)
        series = np.interp(grid, ts[first:], ms[first:])
        n = int(tn.match_s / _GRID_S)
        least = int(np.ceil(watch_s / _GRID_S))
        if len(series) < n + least + 1:
            return None
        here = series[-n:] - series[-n:].mean()
        # The misfit of `here` to every stretch as long, ending at least `least` steps back,
        # each taken about its own mean: sum(e^2) - n*mean(e)^2 - 2*sum(e*here) + sum(here^2).
        earlier = series[: len(series) - least]
        sums = np.concatenate(([0.0], np.cumsum(earlier)))
        squares = np.concatenate(([0.0], np.cumsum(earlier**2)))
        total, total2 = sums[n:] - sums[:-n], squares[n:] - squares[:-n]
        fit = float((here**2).sum())
        misfit = total2 - total**2 / n - 2 * np.correlate(earlier, here, "valid") + fit
        best = int(np.argmin(misfit))
        if misfit[best] > max(tn.match_residual * fit, n * tn.match_rms_mmHg**2):
            return None
        shift_s = (len(series) - n - best) * _GRID_S
        # The watch's reading before is the mean over `before_s` up to the opening: the beat's
        # movement is counted from the middle of that.
        beat = _Beat(shift_s, grid, series, now - 0.5 * tn.before_s)
        if beat.rise(now, watch_s) > tn.beat_min_mmHg:
            return None  # another beat close behind the matched one: not this beat's run-off
        return beat

    def _upstroke(self, shut_t: float) -> float:
        """The most the reading as read rose, after the valve shut, over its lowest since."""
        means = _means(self._raw_watch, 2 * self.tuning.smooth_s)
        return _rise_over_lowest(np.fromiter((m for t, m in means if t >= shut_t), float))

    @property
    def _beat_left_in(self) -> bool:
        """This watch was timed on a beat, but no earlier beat was found to take out of it."""
        return self._beating and self._beat is None

    def _probe(self, now: float, raw: float | None, target: float, wanted: Actuation) -> Actuation:
        tn = self.tuning
        assert self._opened_t is not None
        if raw is not None:
            reading = raw - (self._beat.moved(now) if self._beat else 0.0)
            self._watch_means.append(self._watch_mean.add(now, reading))
            self._raw_watch.append((now, raw))
        if now - self._opened_t < self._open_s:
            return Actuation(0.0, True)
        shut_t = self._opened_t + self._open_s
        if raw is not None:
            limb = self._limb_falling_under_floor(now, raw, target, shut_t)
            if limb is not None:
                # What fell at once was the valve's: the landing check needs it from now on,
                # or the next blind opening dents this cuff again.
                self._learn_valve_rate(limb / self._open_s)
            if (
                limb is not None
                or not (1 - tn.low_leave_frac) * target <= raw <= (1 + tn.leave_frac) * target
                or reading < self._lowest_from_the_valve()
            ):
                self._finish(now, None)
                return wanted
        if now - shut_t < tn.whole_after_s + tn.smooth_s:
            return STILL
        self._finish(now, shut_t)
        return wanted

    def _limb_falling_under_floor(
        self, now: float, raw: float, target: float, shut_t: float
    ) -> float | None:
        """Under the floor after a drop that came at once and a fall that goes on: a limb.

        The valve's drop, mmHg, if so."""
        tn = self.tuning
        if raw >= (1 - tn.floor_frac) * target or now - shut_t < tn.floor_after_s:
            return None
        means = self._watch_means
        early = next((m for t, m in reversed(means) if t <= shut_t + tn.early_s), None)
        if early is None:
            return None
        fall = self._before - means[-1][1]
        early_fall = self._before - early
        if early_fall < tn.early_share * fall or fall - early_fall < tn.going_on_mmHg:
            return None
        # A slow valve is still closing `early_s` after the shut: its drop is read later.
        return self._before - next(m for t, m in reversed(means) if t <= shut_t + tn.settled_s)

    def _learn_valve_rate(self, rate: float) -> None:
        """Keep the fastest drop seen: the landing and fall checks must not under-read the valve."""
        self._valve_rate = max(rate, self._valve_rate or rate)

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
        del self.results[:-KEPT_RESULTS]
        if self.on_result is not None:
            self.on_result(result)
        self._cut = self._cut + 1 if shut_t is None else 0
        if result.verdict == Verdict.UNJUDGED:
            if -tn.flat_mmHg <= result.whole_mmHg < tn.min_drop_mmHg:  # too little taken off
                self._small += 1
                # Open longer unless this opening took plenty off before (a limb's doing, once).
                if not self._takes_enough_off() or self._small >= tn.small_in_a_row:
                    self._open_s = min(tn.max_open_s, 2 * self._open_s)
                    self._small = 0
            wait = tn.retry_s
            if self._cut and not self._lagging:
                wait = min(tn.every_s, tn.retry_s * tn.cut_backoff ** (self._cut - 1))
            self._due_t = now + wait
            return
        self._small = 0
        if result.whole_mmHg >= tn.min_drop_mmHg:  # not a blocked line's nothing
            self._last_drop = (result.open_s, result.whole_mmHg)
            rate = result.whole_mmHg / result.open_s
            if not self._beat_left_in:  # a beat's run-off is not the valve's drop
                self._learn_valve_rate(rate)
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
        means = self._watch_means
        whole_t = shut_t + tn.whole_after_s
        whole = [m for t, m in means if abs(t - whole_t) <= tn.smooth_s]
        if not whole:
            return None
        drop = self._before - statistics.fmean(whole)
        out = self._beat is not None
        last = self._last_drop
        if (abs(drop) < tn.min_drop_mmHg and self._open_s >= tn.max_open_s) or (
            last is not None
            and last[0] == self._open_s
            and last[1] >= tn.enough_drop_mmHg
            # As read: with an earlier beat taken out, a live beating cuff can look flat.
            and all(
                abs(self._before - m) <= tn.flat_mmHg
                for _, m in _means(self._raw_watch, 2 * tn.smooth_s)
            )
        ):
            # The widest opening, or one that took plenty off this cuff before, moved nothing:
            # the reading is not the cuff's (a hose blocked, a transducer frozen), or the valve
            # did not open. Either way: empty the cuff.
            return ProbeResult(now, self._open_s, drop, None, Verdict.LAGGING, out)
        if drop < tn.min_drop_mmHg or (
            last is not None and last[0] == self._open_s and drop > tn.max_drop_growth * last[1]
        ):
            return ProbeResult(now, self._open_s, drop, None, Verdict.UNJUDGED, out)
        half_t = next((t for t, m in means if self._before - m >= 0.5 * drop), None)
        half_s = None if half_t is None else half_t - opened
        within = tn.beat_left_half_within_s if self._beat_left_in else tn.half_within_s
        lagging = half_s is None or half_s > within
        if lagging and self._upstroke(shut_t) > max(tn.beat_min_mmHg, tn.upstroke_share * drop):
            # A beat came within the watch (a premature one, a fast heart): its upstroke, not
            # the valve, set where the reading was at the end. Not judged.
            return ProbeResult(now, self._open_s, drop, half_s, Verdict.UNJUDGED, out)
        verdict = Verdict.LAGGING if lagging else Verdict.HEALTHY
        return ProbeResult(now, self._open_s, drop, half_s, verdict, out)


KEPT_RESULTS = 500  # sessions make 4-29 probes; each is also handed on as it comes (`on_result`)
_MEAN_S = 0.01  # the beat's peak is found on running means over this long
_GRID_S = 0.004  # earlier beats are matched on the means resampled this often


def _rise_over_lowest(course: np.ndarray) -> float:
    """The most `course` rose over the lowest it had been before: a beat's upstroke, even one
    that starts from a fall and stays under where the course began."""
    if course.size == 0:
        return 0.0
    return float((course - np.minimum.accumulate(course)).max())


class _Beat:
    """The readings one or more beats back, shifted forward by `shift_s` onto this beat."""

    def __init__(
        self, shift_s: float, grid: np.ndarray, series: np.ndarray, origin_t: float
    ) -> None:
        self.shift_s = shift_s
        self._grid = grid
        self._series = series
        self._origin = self._at(origin_t)

    def moved(self, t: float) -> float:
        """How far the earlier beat had moved the cuff from `origin_t` by this moment."""
        return self._at(t) - self._origin

    def rise(self, now: float, watch_s: float) -> float:
        """The most the earlier beat rose in the `watch_s` after `now` over the lowest it had
        been since its origin: an upstroke after a fall is another beat as much as one over
        the origin (a normal beat matched where a premature one followed it)."""
        start, end = np.searchsorted(self._grid, (now - self.shift_s, now - self.shift_s + watch_s))
        return _rise_over_lowest(np.concatenate(([self._origin], self._series[start:end])))

    def _at(self, t: float) -> float:
        """The earlier beat's reading at the same point of its beat as `t` in this one."""
        return float(np.interp(t - self.shift_s, self._grid, self._series))


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
        # fsum over a list: what statistics.fmean gives, without its generator's cost.
        return t - 0.5 * (t - window[0][0]), math.fsum([v for _, v in window]) / len(window)


def _means(points: list[tuple[float, float]], width_s: float) -> list[tuple[float, float]]:
    """Running means over the `width_s` up to each point."""
    running = _RunningMean(width_s)
    return [running.add(t, r) for t, r in points]


class _Swing:
    """The highest and lowest running means of the last while, in constant time per reading.

    Each deque keeps only the means that may yet be the extreme: a newer mean at least as high
    (low) makes every older one lower (higher) than it useless. Means older than `keep_s` go
    as new ones come, and those older than the asked window as it is asked: the loop's clock
    never goes back, and the probe always asks over the same window.
    """

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self._highs: deque[tuple[float, float]] = deque()
        self._lows: deque[tuple[float, float]] = deque()

    def add(self, mean: tuple[float, float]) -> None:
        t, m = mean
        while self._highs and self._highs[-1][1] <= m:
            self._highs.pop()
        self._highs.append(mean)
        while self._lows and self._lows[-1][1] >= m:
            self._lows.pop()
        self._lows.append(mean)
        self._drop(t, self.keep_s)

    def over(self, now: float, window_s: float) -> float | None:
        """Highest minus lowest of the means of the last `window_s`; None without one."""
        self._drop(now, window_s)
        if not self._highs:
            return None
        return self._highs[0][1] - self._lows[0][1]

    def _drop(self, now: float, window_s: float) -> None:
        for extremes in (self._highs, self._lows):
            while extremes and now - extremes[0][0] > window_s:
                extremes.popleft()
