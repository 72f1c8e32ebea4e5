"""The supervisor's windows over the recent past: shares, binned pressure and what they judge.

Each watch answers one question about the last fraction of a second to a few seconds (how much
of it a condition held, whether a climb went flat, whether the reading stood still while the
pump was due to move it); the supervisor decides when each is asked and what a yes means.
"""

from __future__ import annotations

import math
from collections import deque

from appliance.pump_model import dead_zone_duty


class ShareWindow:
    """How much of the last `window_s` a condition held, over the samples seen in that time."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, bool]] = deque()
        self._true = 0

    def clear(self) -> None:
        self._samples.clear()
        self._true = 0

    def add(self, now: float, held: bool) -> None:
        self._samples.append((now, held))
        self._true += held
        while now - self._samples[0][0] > self.window_s:
            _, was = self._samples.popleft()
            self._true -= was

    def full(self) -> bool:
        """The samples span (nearly) the whole window: a verdict on less would be a guess."""
        return bool(self._samples) and (
            self._samples[-1][0] - self._samples[0][0] >= 0.95 * self.window_s
        )

    def share(self) -> float:
        return self._true / len(self._samples) if self._samples else 0.0

    def count(self) -> int:
        """How many samples in the window held the condition."""
        return self._true


class LeakWatch:
    """The pump's share of a vent-free hold, over the leak check's short window and twice it.

    Air the valve vented is not leaking, so the shares count only once the last vent is
    `SETTLE_S` older than the short window. A leak takes its air all the time, so its pump keeps
    coming back, where one refill after a rest's sag is a single run: a thigh whose cuff sank
    3.6 % in a rest was refilled in one 1.4 s run, 20 % of 7 s (10 % of 14 s). The long window
    is not waited for: from the hold's start it holds what the short one does.
    """

    SETTLE_S = 5.0
    SUSTAIN_WINDOWS = 2

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._short = ShareWindow(window_s)
        self._long = ShareWindow(self.SUSTAIN_WINDOWS * window_s)
        self._last_vent_t = -math.inf

    def clear(self) -> None:
        self._short.clear()
        self._long.clear()
        self._last_vent_t = -math.inf

    def add(self, now: float, pumping: bool, venting: bool) -> None:
        self._short.add(now, pumping)
        self._long.add(now, pumping)
        if venting:
            self._last_vent_t = now

    def full(self) -> bool:
        return self._short.full()

    def share(self) -> float:
        """The pump's share of the short window, vents or not (what clears a raised alarm)."""
        return self._short.share()

    def counted(self, now: float) -> float | None:
        """The lesser of the two windows' shares, or None while a vent is too recent to count."""
        if now - self._last_vent_t < self.window_s + self.SETTLE_S:
            return None
        return min(self._short.share(), self._long.share())


class Bins:
    """Pressure averaged over 50 ms bins, each tagged with whether a condition held throughout.

    Averaging takes out sensor noise and the pump's stroke ripple, not the heartbeat.
    """

    BIN_S = 0.05

    def __init__(self, count: int) -> None:
        self.closed: deque[tuple[float, bool]] = deque(maxlen=count)
        self.clear()

    @classmethod
    def per(cls, window_s: float) -> int:
        return round(window_s / cls.BIN_S)

    def clear(self) -> None:
        self.closed.clear()
        self.pause()

    def pause(self) -> None:
        """Keep the closed bins, but no bin may span the pause."""
        self._start: float | None = None
        self._sum = 0.0
        self._n = 0
        self._held = True

    def add(self, now: float, p: float, held: bool = True) -> bool:
        """Feed one sample; True when it closed a bin (before counting this sample)."""
        closed = False
        if self._start is None:
            self._start = now
        if now - self._start >= self.BIN_S and self._n:
            self.closed.append((self._sum / self._n, self._held))
            self._start = now
            self._sum = 0.0
            self._n = 0
            self._held = True
            closed = True
        self._sum += p
        self._n += 1
        self._held = self._held and held
        return closed


class ClimbWatch:
    """A pumped climb that goes flat at once: the reading stopped following the cuff.

    A sensing line kinked (or a diaphragm stuck) mid-inflation freezes the reading while the
    electronics stay noisy, so the stuck check sees the code change and the no-rise check needs
    4 s, in which a fast cuff climbs to the relief valve. A real cuff at full duty slows
    gradually (the pump's flow falls with back-pressure); only a reading cut off from it, or a
    pump that died, goes from a brisk rise to flat within one bin. Pressure is averaged in bins
    so noise and heartbeat cannot fake flatness, and the rise before must exceed what a knock
    and a heartbeat together can fake (7.5 + 3 mmHg), so a slack cuff is never judged here.
    """

    WINDOW_S = 0.5
    MIN_RISE_mmHg = 15.0  # over WINDOW_S before the flat part: 30 mmHg/s
    FLAT_mmHg = 2.0  # range of the bins over the last WINDOW_S
    # An arm cuff climbs 150-200 mmHg/s: in WINDOW_S it passed its set point by 70-145 mmHg.
    # A climb this brisk is judged over a shorter window as well, at full duty only: a taper's
    # lower duty can leave a low-head pump near its stall moving no air.
    BRISK_WINDOW_S = 0.2
    BRISK_RISE_mmHg = 30.0  # 150 mmHg/s: far beyond what a knock and a heartbeat can fake
    FULL_DUTY = 0.95

    def __init__(self) -> None:
        self.bins = Bins(2 * Bins.per(self.WINDOW_S) + 1)
        self.since: float | None = None  # when the pump reached a pumping duty

    def clear(self) -> None:
        self.bins.clear()
        self.since = None

    def pause(self) -> None:
        """The pump stopped: the climb's bins are kept."""
        self.bins.pause()
        self.since = None

    def add(self, now: float, p: float, duty: float) -> bool:
        """Feed one sample of a pumped climb; True once it rose briskly and then went flat."""
        if not self.bins.add(now, p, duty >= self.FULL_DUTY):
            return False
        bins = list(self.bins.closed)
        return self._went_flat(bins, self.WINDOW_S, self.MIN_RISE_mmHg, False) or (
            self._went_flat(bins, self.BRISK_WINDOW_S, self.BRISK_RISE_mmHg, True)
        )

    def _went_flat(
        self, bins: list[tuple[float, bool]], window_s: float, min_rise: float, full: bool
    ) -> bool:
        """Over the last two windows: a rise of `min_rise`, then a range under FLAT_mmHg."""
        k = Bins.per(window_s)
        if len(bins) < 2 * k + 1:
            return False
        recent = bins[-k - 1 :]
        levels = [level for level, _ in recent]
        return (
            recent[0][0] - bins[-2 * k - 1][0] >= min_rise
            and max(levels) - min(levels) < self.FLAT_mmHg
            and (not full or all(at_full for _, at_full in recent[1:]))
        )


class FrozenWatch:
    """The pump drives air into a gripping cuff, yet the reading does not move at all.

    A sensing line kinked while holding (a rep's valley, or a set point the reading never
    reaches) left the hold pump running on a reading frozen under the set point: the no-rise
    check's 4 s, made long so a relaxing limb can outpace a refill, took arms to the relief
    valve and thighs 100-130 mmHg over. A cuff whose pump is driven hard moves: it rises, a
    heartbeat ripples it, or a rep swings it. A relaxing limb can cancel a modest pump's rise
    for a while, and the heartbeat is weak at low set points, so the supervisor judges only a
    pump at DRIVING_MIN_DUTY or more, and only a reading within FLAT_mmHg (the electronics'
    noise, averaged in bins) for WINDOW_S is called cut off.
    """

    # On slow (3 s) reps at 40-60 % of LOP, a hold pump at 0.5-0.75 duty left windows within
    # 0.46 mmHg; the simulated electronics' noise spans about 0.15.
    WINDOW_S = 0.5
    FLAT_mmHg = 0.3

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.bins = Bins(Bins.per(window_s) + 1)
        self.since: float | None = None  # when the pump reached a duty this watch judges

    def clear(self) -> None:
        self.bins.clear()
        self.since = None

    def add(self, now: float, p: float) -> bool:
        """Feed one sample while the pump drives hard; True once the bins span a flat window."""
        if not self.bins.add(now, p) or len(self.bins.closed) < self.bins.closed.maxlen:
            return False
        levels = [level for level, _ in self.bins.closed]
        return max(levels) - min(levels) < self.FLAT_mmHg


class DueRiseWatch:
    """A reading that stands still through the rise the pump must have given the cuff by now.

    A strong pump on a small arm cuff is run well under full duty, and FrozenWatch, which
    judges only a pump driven hard, left such arms kinked under the set point to the 4 s check
    (88-129 mmHg over). Each sample adds the rise the pump is due to give at its duty (see
    PumpRise); once the newest bins are due RISE_mmHg between them, over at least MIN_WINDOW_S,
    and their levels span under FrozenWatch.FLAT_mmHg, the reading is cut off from the cuff. A
    limb relaxing at just the pump's rate for that long, to a tenth of a millimetre, is not
    seen on arms, whose reps swing 6-8 % of the set point.
    """

    RISE_mmHg = 10.0
    MIN_WINDOW_S = 0.3
    MAX_WINDOW_S = 1.25

    def __init__(self) -> None:
        self.bins = Bins(Bins.per(self.MAX_WINDOW_S) + 1)
        self._due: deque[float] = deque(maxlen=self.bins.closed.maxlen)
        self.clear()

    def clear(self) -> None:
        self.bins.clear()
        self._due.clear()
        self._sum = 0.0
        self._last: float | None = None
        self.since: float | None = None

    def add(self, now: float, p: float, due_per_s: float) -> bool:
        """Feed one sample and the rise due per second now; True once a due rise stood still."""
        closed = self.bins.add(now, p)
        if closed:
            self._due.append(self._sum)
            self._sum = 0.0
        self._sum += due_per_s * (now - self._last if self._last is not None else 0.0)
        self._last = now
        if not closed:
            return False  # the verdict rests on closed bins alone: unchanged since the last
        due, levels = 0.0, []
        for (level, _), rise in zip(reversed(self.bins.closed), reversed(self._due), strict=True):
            due += rise
            levels.append(level)
            span = len(levels) * Bins.BIN_S
            if due >= self.RISE_mmHg and span >= self.MIN_WINDOW_S - 1e-9:
                return max(levels) - min(levels) < FrozenWatch.FLAT_mmHg
        return False


class RefillLedger:
    """Pump runs at the valleys of a set, no vent between them, and none of them lifts the cuff.

    In a set the regulator pumps at each rep's valley and stops as the next contraction lifts
    the reading, so no pump run lasts the no-rise window, and the swing reads as rise: a dead
    pump on a leak-free arm went unseen for 17-25 s while the cuff sat 5 % under. Here each
    pumping sample books the rise the pump was due to give (DueRiseWatch's) and the rise the
    reading showed since the sample before, over the last WINDOW_S; any opening of the valve
    clears the book (air let out is air the pump may put back). Once DUE_mmHg is booked, pump
    runs that showed under GAIN_SHARE of it moved no air: a working pump lifts the cuff by
    twice its due at the least, and a leak takes its air while the pump is off as well, so a
    leak the pump keeps up with still shows the pump's rise while it runs (the leak check's).
    A dead pump's runs show only the contraction that ends them: 1-3 mmHg a run.
    """

    WINDOW_S = 8.0
    DUE_mmHg = 40.0
    GAIN_SHARE = 0.25

    def __init__(self) -> None:
        self._book: deque[tuple[float, float, float]] = deque()  # (t, rise shown, rise due)
        self.clear()

    def clear(self) -> None:
        self._book.clear()
        self._due = 0.0
        self._shown = 0.0
        self._last: tuple[float, float] | None = None

    def add(self, now: float, p: float, due_per_s: float) -> bool:
        """Book one sample and the rise due per second now; True once the due rise never came."""
        last, self._last = self._last, (now, p)
        if last is None or due_per_s <= 0.0:
            return False
        due, shown = due_per_s * (now - last[0]), p - last[1]
        self._book.append((now, shown, due))
        self._due += due
        self._shown += shown
        while now - self._book[0][0] > self.WINDOW_S:
            _, old_shown, old_due = self._book.popleft()
            self._due -= old_due
            self._shown -= old_shown
        return self._due >= self.DUE_mmHg and self._shown < self.GAIN_SHARE * self._due


class PumpRise:
    """How fast the pump lifts this cuff at full duty, measured on the cuff's first climb.

    One stretch at full duty without a break, starting between half the set point (the
    bladder grips) and START_MAX_FRAC of it, ending at TO_FRAC or where the duty tapers
    (a strong pump on an arm cuff tapers early: 58 to 104 mmHg in 0.1 s), kept if it climbed
    MIN_RISE_FRAC of the set point: what the pump does to this cuff on this limb, so the
    supervisor can tell how far a running pump must move the reading, whatever the pump's and
    the cuff's make. Measured once until the cuff is emptied: a later stretch near the top,
    short and noisy, would only replace it with a worse figure.
    """

    FROM_FRAC = 0.5
    START_MAX_FRAC = 0.6
    TO_FRAC = 0.9
    MIN_RISE_FRAC = 0.2
    MIN_SPAN_S = 0.04
    # Real dead zones lie up to 0.12 above the nominal one (the varied plants' pumps at
    # 200-240 mmHg): a duty under the nominal dead zone plus this may move no air at all. At
    # 0.06 a still hold of such a pump against a leak, over the LOP, faulted; at 0.12 the
    # strongest arm pumps, run just over their dead zone, escaped when kinked.
    DEAD_ZONE_SPREAD = 0.09

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.per_s: float | None = None  # mmHg a second at full duty
        self.at_mmHg = 0.0  # the middle of the climb it was measured over
        self._start: tuple[float, float] | None = None
        self._end: tuple[float, float] | None = None
        self._target = 0.0

    def add(self, now: float, p: float, target: float, at_full: bool) -> None:
        """Feed one sample of an inflation's climb."""
        if self.per_s is not None:
            return
        if self._start is None:
            if at_full and self.FROM_FRAC * target <= p <= self.START_MAX_FRAC * target:
                self._start, self._target = (now, p), target
            return
        if at_full and p < self.TO_FRAC * target:
            self._end = (now, p)
            return
        self.stop()

    def stop(self) -> None:
        """The stretch at full duty is over: keep it if it was long enough to mean something."""
        start, end = self._start, self._end
        self._start = self._end = None
        if start is None or end is None:
            return
        rise, span = end[1] - start[1], end[0] - start[0]
        if rise >= self.MIN_RISE_FRAC * self._target and span >= self.MIN_SPAN_S:
            self.per_s = rise / span
            self.at_mmHg = 0.5 * (end[1] + start[1])

    def expected_per_s(self, duty: float, p: float) -> float:
        """The least rise a pump at `duty` gives at `p`, from this climb and the dead zone.

        Flow grows with the duty over the dead zone (appliance/pump_model.py), taken
        DEAD_ZONE_SPREAD above the nominal one; a cuff stiffens as it fills, so the same flow
        lifts it faster at `p` than on the climb: not counted either.
        """
        if self.per_s is None:
            return 0.0
        return counted_rise_per_s(self.per_s, self.at_mmHg, duty, p)


def counted_rise_per_s(per_s: float, at_mmHg: float, duty: float, p: float) -> float:
    """The rise the supervisor counts on from a pump at `duty` and `p` (PumpRise).

    `per_s` is the pump's full-duty rise measured around `at_mmHg`. The self-test holds a pump
    to it (`pump_low_duty`), so a pump whose dead zone lies beyond DEAD_ZONE_SPREAD is refused
    before a session rather than faulted in one.
    """
    spare = duty - dead_zone_duty(p) - PumpRise.DEAD_ZONE_SPREAD
    return max(0.0, per_s * spare / (1.0 - dead_zone_duty(at_mmHg)))


class GripWatch:
    """How long the pump at full duty takes to make this cuff grip, from empty.

    A sensing line kinked while the cuff was empty leaves the reading at zero, with its noise,
    while the pump fills the cuff: nothing has climbed yet for a climb check to see go flat,
    and arm cuffs passed 250 mmHg 1.4-2.6 s into the 4 s no-rise window, up to the relief
    valve. From empty the same cuff on the same limb grips (the reading reaches GRIP_mmHg and
    stays there for HOLD_S or until the pump eases off; a knock on a slack cuff falls back)
    after no longer than its slowest fill so far (air left in the bladder only makes it
    sooner), so a fill that takes FACTOR times that, plus SPARE_S, is not reaching the
    transducer. One fill per inflation or LOP reading (a knock that takes the reading back
    under EMPTY_mmHg does not start another). Forgotten when it fires, so a cuff wrapped looser
    costs one false alarm at most, and when the cuff may be another: named on another limb,
    another patient's LOP typed in, a new LOP measurement (whose own fills teach it again).
    """

    EMPTY_mmHg = 5.0
    FULL_DUTY = 0.95
    HOLD_S = 0.3
    FACTOR = 1.5
    SPARE_S = 0.5

    def __init__(self, grip_mmHg: float) -> None:
        self.grip_mmHg = grip_mmHg
        self.learned_s: float | None = None
        self.clear()

    def forget(self) -> None:
        """Another cuff, or another limb, may grip later: judge nothing until it is learned."""
        self.learned_s = None
        self.clear()

    def end(self) -> None:
        """The fill is over (valve opened, inflation ended): learn a grip it was holding, and let
        the next fill start."""
        if self._full_s is None and not self._done:
            return  # no fill running: nothing to learn or clear (every tick while holding)
        self._learn_held()
        self.clear()

    def clear(self) -> None:
        """Drop this fill, learned or not."""
        self._full_s: float | None = None  # time at full duty in this fill; None: none running
        self._last_t = 0.0
        self._above_at: float | None = None  # _full_s when the reading reached the grip
        self._done = False  # this fill gripped, tapered or fired

    def add(self, now: float, p: float, duty: float) -> bool:
        """Feed one sample of an inflation; True when this fill outlasts the learned grip."""
        if self._done:
            return False
        full = duty >= self.FULL_DUTY
        if self._full_s is None:
            if full and p < self.EMPTY_mmHg:
                self._full_s, self._last_t = 0.0, now
            return False
        if not full:  # tapered near the set point (gripped long since), or paused: not judged on
            self._learn_held()
            self._done = True
            return False
        self._full_s += now - self._last_t
        self._last_t = now
        if p < self.grip_mmHg:
            self._above_at = None
        elif self._above_at is None:
            self._above_at = self._full_s
        if self._above_at is not None:
            if self._full_s - self._above_at >= self.HOLD_S:
                self._learn_held()
                self._done = True
            return False
        if self.learned_s is not None and self._full_s > self.FACTOR * self.learned_s + (
            self.SPARE_S
        ):
            self.forget()
            self._done = True
            return True
        return False

    def _learn_held(self) -> None:
        """The reading is at the grip level, not on its way back down from a knock."""
        if not self._done and self._above_at is not None:
            # The slowest fill since the cuff was named: air left in the bladder (a fill soon
            # after the last, an LOP measurement's next reading) makes one grip sooner, up to
            # three times sooner on a varied arm, and a fill that slow must not fault.
            self.learned_s = max(self.learned_s or 0.0, self._above_at)
