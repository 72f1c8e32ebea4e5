"""Pressure regulation: inflate to a set point and hold it through reps, swelling and leaks.

Holding is a predictive two-sided band controller rather than a PID on the raw signal:
- both actuators act on the filtered pressure extrapolated over their latency (feed-forward of
  the trend), so a rep spike is vented as it starts and the pump restarts as the muscle relaxes;
- inside the band nothing moves: the heartbeat ripple and small drifts cause no clicks, which is
  what cuts valve openings and pump starts to a fraction of an on/off controller's;
- the pump never runs below its stall duty (dead band: PWM there only heats the motor) and its duty
  is proportional to the deficit with no integrator, so there is nothing to wind up; only a pump
  that shows no rise for a second at a set point near its stall pressure climbs in duty (by
  at most 0.4) until it stops;
- after a rep that had to be vented, the pump starts at full duty as soon as the relaxing muscle
  turns the pressure down near the set point (refill), and never starts while a rep is rising;
  the raw reading after the valve has shut tells the relaxation from a vent pulse's own dip;
- a pump too weak to refill a relaxing limb leaves every valley deeper than the peaks: then
  reps are clipped higher and refilled from their top, so peaks and valleys balance;
- the pump's strength is learned on every inflation: it decides whether a refill is needed and
  scales a strong pump on a small cuff down, so each start does not overshoot into a vent;
- the dump valve bleeds in single pulses sized from a dump rate learned on every pulse, so a small
  arm cuff and a large thigh cuff both come back to just above the set point in one opening; each
  inflation starts from a fixed valve-to-pump ratio (its fast end) times the pump rise just
  measured, so nothing of the last patient's session sizes this one's pulses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from appliance.controller.filters import PressureFilter
from appliance.pump_model import dead_zone_duty


@dataclass(frozen=True)
class Actuation:
    """What the regulator wants on the outputs for this tick."""

    pump_duty: float
    valve_open: bool


@dataclass(frozen=True)
class RegulatorTuning:
    """Bands are fractions of the set point, so one tuning fits arm and leg pressures."""

    vent_open_frac: float = 0.045
    vent_aim_frac: float = 0.01
    # A rep (pressure rising faster than spike_slope_frac of the set point per second) is only
    # clipped: every mmHg vented at its top must be pumped back while the muscle relaxes.
    spike_slope_frac: float = 0.08
    spike_open_frac: float = 0.05
    # A rep's pulses take it well inside the band: one aimed just under the opening level is
    # followed by another as soon as the rise goes on (more clicks, and the heartbeat rides
    # above +5 %), while the refill puts back what is vented.
    spike_aim_frac: float = 0.015
    spike_episode_s: float = 1.0
    # The first pulse of a rep takes this much of what the last rep needed: at 0.8 the project
    # cohort's rises took 1.58 openings each (a rep that rises a little more is clipped again);
    # 0.9 saves about 5 % of the actuations at the same time in band, while 1.0 dents more.
    spike_memory: float = 0.9
    # ...but never below this under the set point: a rep that starts slower than the last one
    # would otherwise be dumped a fifth under it before its rise arrives, and a patient who
    # shifts on the table between sets is not a rep (at 8 % under, that cost a thigh 91 %).
    spike_floor_frac: float = 0.05
    # A pump too weak to refill a relaxing limb leaves every rep's valley deeper than its peak is
    # high. Then each rep is clipped higher (by balance_gain of the difference, at most
    # max_clip_raise_frac more) and refilled from its top, so less air is vented and it comes
    # back sooner.
    balance_gain: float = 0.5
    balance_smoothing: float = 0.3  # per rep: one rep dumped too deep is not a weak pump
    max_clip_raise_frac: float = 0.05
    weak_refill_under_frac: float = 0.04
    pump_start_frac: float = 0.04
    pump_stop_frac: float = 0.01
    horizon_s: float = 0.06
    falling_horizon_s: float = 0.1
    # The next pulse may open as soon as the last one's dump rate is measured: waiting 80 ms let
    # a thigh's fastest rise climb from 104 to 108 % between two pulses.
    vent_refractory_s: float = 0.04
    pump_refractory_s: float = 0.25
    relax_slope_frac: float = 0.2  # falling this fast, a refill that stopped early restarts
    urgent_frac: float = 0.065
    min_band_mmHg: float = 2.0
    pump_min_duty: float = 0.6
    reference_pump_rate_per_s: float = 1.0  # full-duty rise (set points per s) duties assume
    pump_gain_per_frac: float = 8.0
    approach_frac: float = 0.03
    approach_min_duty: float = 0.7
    approach_min_rise_frac: float = 0.02  # per second: slower than this the taper has stalled
    # Holding, the pump's duty falls toward pump_min_duty as the gap closes; near its stall
    # pressure (a high set point, a low-head pump) that moves no air, and with a small leak the
    # cuff then sat under the stop level with the pump running until the supervisor called it
    # dead. A hold pump on for stall_after_s and rising slower than approach_min_rise_frac
    # climbs stall_boost_per_s of duty a second; sooner, it would also push the reps' refills.
    stall_after_s: float = 1.0
    stall_boost_per_s: float = 0.5
    # Only where the pump's minimum duty is near its dead zone at the set point, and never more
    # than max_stall_boost: a reading frozen under the set point also shows no rise, and a blind
    # pump boosted on a small arm cuff climbed higher before the supervisor saw it.
    stall_near_dead_zone: float = 0.05
    max_stall_boost: float = 0.4
    # Two loop polls: a small arm cuff behind a wide valve loses 10 % of its pressure in 6 ms.
    min_pulse_s: float = 0.004
    max_pulse_s: float = 0.25
    # Start high: a first pulse that is too short is followed by another; too long dents the limb.
    initial_vent_rate_per_s: float = 10.0
    # The dump valve and the pump are the appliance's own, so how much faster the valve empties
    # a cuff than the pump fills it varies far less between cuffs than the dump rate itself
    # (2.4-7.9 times on the BOM's parts, arm or thigh, against a tenfold spread of dump rates).
    # Each inflation sizes its first pulses from this and the pump's rise it has just measured:
    # a thigh cuff's dump rate carried over to an arm cuff would dent it.
    # The fast end (pulses too short rather than too long), and the same for every session: the
    # ratio the last patient's session ended with did worse on the next one (thighs 98.79 against
    # 98.96 % within +-5 %, the mixed cohort's lowest sample 92.6 against 93.6 %).
    vent_per_pump_rate: float = 6.0
    max_vent_rate_per_s: float = 20.0
    min_pump_on_s: float = 0.1
    # Refill: air vented at the top of a rep must come back while the muscle relaxes, and a
    # relaxing thigh lets pressure fall faster than the pump refills, so after a rep that needed
    # venting the pump starts at full duty as soon as the pressure turns down within
    # refill_start_frac of the set point, instead of waiting for the band. The usual stop rule
    # applies only once the pressure has dipped under the set point (a heartbeat must not stop
    # it early), and it never pumps past refill_ceiling_frac.
    refill_window_s: float = 1.5
    refill_slope_frac: float = 0.05
    # A vent pulse's own dip is not a relaxing muscle: the filtered slope is trusted only
    # refill_after_vent_s after a vent. The raw reading is trusted once the valve has shut
    # (valve_settle_s): falling for post_vent_fall_s, by more than sensor noise (0.2 mmHg
    # between readings here), it is a relaxing muscle and the refill need not wait.
    refill_after_vent_s: float = 0.15
    valve_settle_s: float = 0.02
    post_vent_fall_s: float = 0.03
    post_vent_fall_mmHg: float = 1.0
    vent_dip_s: float = 0.1  # nor is that dip a reason to start the pump while a rep rises
    # ...and the filtered slope holds the dip for its window: 0.1 s after a rep's pulse the
    # pump started on it while the rep went on rising (an arm: 37 of 75 reps), and its air was
    # vented again. Until this long after the pulse, only a raw reading that has kept falling
    # since the valve shut (the muscle relaxing) starts the pump.
    vent_dip_confirm_s: float = 0.15
    refill_start_frac: float = 0.02
    refill_ceiling_frac: float = 0.035
    refill_max_pump_rate_per_s: float = 0.5  # a pump this fast catches up from the band
    refill_min_frac: float = 0.06  # smaller vents come back within the band on their own


class PredictiveBandRegulator:
    """The appliance's regulator (see module docstring)."""

    name = "predictive-band"

    def __init__(self, tuning: RegulatorTuning | None = None) -> None:
        self.tuning = tuning or RegulatorTuning()
        # Dump rate as a fraction of pressure per second, learned from each pulse: it differs
        # tenfold between a small arm cuff and a large thigh cuff.
        self.vent_rate_per_s = self.tuning.initial_vent_rate_per_s
        self.pump_rate_per_s: float | None = None
        self.reset()

    def reset(self) -> None:
        # Measured afresh on each inflation: the next session may have another cuff, and
        # nothing of the last patient's session is carried into it.
        self.pump_rate_per_s = None
        self._vent_rate_due = True
        self._pumping = False
        self._refilling = False
        self._refilled_episode = float("-inf")
        self._refill_low = math.inf
        self._episode_start = float("-inf")
        self._pulse_end: float | None = None
        self._pulse: tuple[float, float, float, float] | None = None  # t0, p0, slope0, length
        self._vented_at = float("-inf")
        self._pump_changed_at = float("-inf")
        self._boost = 0.0
        self._last_hold_t: float | None = None
        self._episode_t = float("-inf")
        self._episode_total = 0.0
        self._last_episode = 0.0
        self._since_shut: tuple[float, float] | None = None  # t, raw once the valve has shut
        self._clip_raise = 0.0
        self._over = self._under = 0.0  # smoothed rep peak above, valley below the set point
        self._rep_peak = -math.inf
        self._rep_valley = math.inf

    def _band(self, target: float, frac: float) -> float:
        return max(self.tuning.min_band_mmHg * frac / self.tuning.vent_open_frac, target * frac)

    def inflate(self, now: float, f: PressureFilter, target: float) -> Actuation:
        """Full flow far from the target, tapering so the approach does not overshoot."""
        tn = self.tuning
        deficit = target - f.predict(tn.horizon_s)
        if deficit <= 0:
            return Actuation(0.0, False)
        frac = deficit / target
        if frac > tn.approach_frac:
            self._learn_pump_rate(f, target)
            return Actuation(1.0, False)
        if f.slope < tn.approach_min_rise_frac * target:
            # The taper has stalled: near its stall pressure a low-head pump moves no air at
            # the taper's duty, and would stop short of the set point until the supervisor
            # called it dead. Full duty near stall rises slowly, so it cannot overshoot.
            return Actuation(1.0, False)
        lo = tn.approach_min_duty
        return Actuation(lo + (1 - lo) * frac / tn.approach_frac, False)

    def _learn_pump_rate(self, f: PressureFilter, target: float) -> None:
        """Full-flow rise on the way up, as a fraction of the set point per second.

        Over the top half of the climb the bladder already grips, so this is how fast the pump
        can bring a relaxing limb's cuff back: a big pump on a small cuff needs no refill.
        """
        p = f.value or 0.0
        if 0.5 * target <= p <= 0.95 * target and f.slope > 0.0:
            rate = f.slope / target
            if self.pump_rate_per_s is None:
                self.pump_rate_per_s = rate
            else:
                self.pump_rate_per_s += 0.05 * (rate - self.pump_rate_per_s)

    def _learn_vent_rate(self, now: float, f: PressureFilter) -> None:
        """After a pulse has settled, compare the pressure with where the trend would have been."""
        assert self._pulse is not None
        t0, p0, slope0, length = self._pulse
        self._pulse = None
        expected = p0 + slope0 * (now - t0)
        observed = f.raw or 0.0
        if expected <= 5.0 or observed <= 1.0 or observed >= expected:
            return
        rate = math.log(expected / observed) / length
        self.vent_rate_per_s += 0.3 * (self._plausible_vent_rate(rate) - self.vent_rate_per_s)

    def _size_vents_for_this_cuff(self) -> None:
        """On the first hold tick of an inflation: the dump rate this cuff should have."""
        self._vent_rate_due = False
        if self.pump_rate_per_s is None:
            # Nothing measured on the way up: assume a fast dump, so pulses under-vent.
            self.vent_rate_per_s = self.tuning.initial_vent_rate_per_s
            return
        ratio = self.tuning.vent_per_pump_rate
        self.vent_rate_per_s = self._plausible_vent_rate(ratio * self.pump_rate_per_s)

    def _plausible_vent_rate(self, rate: float) -> float:
        """A dump rate the valve can have: one odd pulse must not size the next ten times off."""
        return min(self.tuning.max_vent_rate_per_s, max(0.05, rate))

    @property
    def last_rep_vent_t(self) -> float:
        """When a rep was last vented: its top may look still, but its relaxation is to come."""
        return self._episode_t

    def _in_rep(self, now: float) -> bool:
        """A rep's vent came within `spike_episode_s`: this is still that rep."""
        return now - self._episode_t <= self.tuning.spike_episode_s

    def _balance(self, target: float) -> None:
        """Raise the rep clip while valleys sink deeper than peaks rise, lower it otherwise.

        Peaks and valleys are smoothed over reps, and only valleys deeper than the clip level
        raise it: a pump that keeps up leaves the clip where it was tuned, and one rep dumped
        too deep is not a weak pump.
        """
        tn = self.tuning
        if self._rep_valley < math.inf:
            over = (self._rep_peak - target) / target
            under = (target - self._rep_valley) / target
            a = tn.balance_smoothing
            self._over += a * (over - self._over)
            self._under += a * (under - self._under)
            step = tn.balance_gain * (self._under - self._over) / 2.0
            if (step > 0.0 and self._under > tn.spike_open_frac + self._clip_raise) or step < 0.0:
                raised = self._clip_raise + step
                self._clip_raise = min(tn.max_clip_raise_frac, max(0.0, raised))
        self._rep_peak = -math.inf
        self._rep_valley = math.inf

    def _spike_excess(self, now: float, excess: float, target: float) -> float:
        """Vent a rep's whole excess in its first pulse, sized from the rep before.

        Reps repeat: clipping each one in small pulses would click several times per rep, so
        the first pulse of a rep takes most (`spike_memory`) of what the last rep needed.
        """
        if not self._in_rep(now):
            self._balance(target)
            self._last_episode = self._episode_total
            self._episode_total = 0.0
            self._episode_start = now
            excess = max(excess, self.tuning.spike_memory * self._last_episode)
        self._episode_t = now
        self._episode_total += max(0.0, excess)
        return excess

    def hold(self, now: float, f: PressureFilter, target: float) -> Actuation:
        tn = self.tuning
        p = f.value or 0.0
        if self._vent_rate_due:
            self._size_vents_for_this_cuff()
        if self._pulse_end is not None:
            if now < self._pulse_end:
                return Actuation(0.0, True)
            self._pulse_end = None
            self._vented_at = now
            self._since_shut = None
        self._track_since_shut(now, f)
        if self._episode_start > -math.inf:
            self._rep_peak = max(self._rep_peak, p)
            self._rep_valley = min(self._rep_valley, p)
        if self._pulse is not None and now - self._vented_at >= tn.vent_refractory_s:
            self._learn_vent_rate(now, f)
        # Look further ahead while pressure falls: a relaxing muscle must find the pump running.
        horizon = tn.falling_horizon_s if f.slope < 0 else tn.horizon_s
        predicted = f.predict(horizon)
        error = predicted - target
        urgent = abs(p - target) > target * tn.urgent_frac
        spike = f.slope > tn.spike_slope_frac * target
        open_frac, aim_frac = (
            (tn.spike_open_frac, tn.spike_aim_frac)
            if spike
            else (tn.vent_open_frac, tn.vent_aim_frac)
        )
        if spike or self._in_rep(now):
            # The top of a rep, too, is left higher while the pump cannot refill it.
            open_frac += self._clip_raise
            aim_frac += self._clip_raise
        if error > self._band(target, open_frac) and (
            now - self._vented_at >= tn.vent_refractory_s or urgent
        ):
            # One bleed pulse sized to bring the pressure back to the aim above the set point.
            self._pumping = self._refilling = False
            excess = max(p, predicted) - (target + self._band(target, aim_frac))
            if spike:
                excess = self._spike_excess(now, excess, target)
                excess = min(excess, p - target * (1.0 - tn.spike_floor_frac))
            elif self._in_rep(now):
                # A pulse's own dip slows the rise it clips: still this rep's air to put back.
                self._episode_total += max(0.0, excess)
            length = -math.log(max(0.05, 1.0 - excess / max(p, 1.0))) / self.vent_rate_per_s
            length = min(tn.max_pulse_s, max(tn.min_pulse_s, length))
            self._pulse_end = now + length
            self._pulse = (now, f.raw or p, max(0.0, f.slope), length)
            return Actuation(0.0, True)
        since_pump = now - self._pump_changed_at
        if self._pumping:
            stop = error >= self._band(target, tn.pump_stop_frac)
            if self._refilling:
                # Through the relaxation: not stopped by a heartbeat before it has dipped.
                self._refill_low = min(self._refill_low, p)
                ceiling = target + self._band(target, tn.refill_ceiling_frac) + self._lift(target)
                stop = (stop and self._refill_low < target) or p >= ceiling
            if stop and since_pump >= tn.min_pump_on_s:
                self._pumping = self._refilling = False
                self._pump_changed_at = now
        elif self._refill_due(now, f, target):
            self._pumping = self._refilling = True
            self._refilled_episode = self._episode_start
            self._refill_low = p
            self._pump_changed_at = now
        elif error < -self._band(target, tn.pump_start_frac) and (
            (
                (since_pump >= tn.pump_refractory_s or f.slope < -tn.relax_slope_frac * target)
                and not spike
                and not self._after_rep_vent(now, f, target)
            )
            or urgent
        ):
            self._pumping = True
            self._pump_changed_at = now
            self._boost = 0.0
        duty = 0.0
        if self._refilling:
            duty = 1.0
        elif self._pumping:
            deficit_frac = max(0.0, -error) / target
            duty = min(1.0, tn.pump_min_duty + tn.pump_gain_per_frac * deficit_frac)
            duty = min(1.0, self._tame(duty, p) + self._stall_boost(now, f, target))
        self._last_hold_t = now
        return Actuation(duty, False)

    def _stall_boost(self, now: float, f: PressureFilter, target: float) -> float:
        """Extra duty for a hold pump that has stalled short of its stop level.

        It grows only while the pump, on long enough to have shown a rise, shows none; it is kept
        for the rest of the run (dropping it as soon as the cuff rose would stall it again) and
        starts from nothing with the next: only the start of a hold-pump run sets it to 0.
        """
        tn = self.tuning
        if dead_zone_duty(target) < tn.pump_min_duty - tn.stall_near_dead_zone:
            return 0.0
        dt = 0.0 if self._last_hold_t is None else max(0.0, now - self._last_hold_t)
        on_for = now - self._pump_changed_at
        if on_for >= tn.stall_after_s and f.slope < tn.approach_min_rise_frac * target:
            self._boost = min(tn.max_stall_boost, self._boost + tn.stall_boost_per_s * dt)
        return self._boost

    def _tame(self, duty: float, p: float) -> float:
        """Scale a strong pump on a small cuff down to the reference pump's rise.

        The duties above are tuned for a pump that lifts the cuff by about its set point per
        second at full duty. One that does it several times faster would overshoot the band on
        every start and be vented back: the part of the duty above the dead zone shrinks in
        proportion, so the flow, not the duty, is what the tuning sets.
        """
        rate = self.pump_rate_per_s
        if rate is None or rate <= self.tuning.reference_pump_rate_per_s:
            return duty
        floor = dead_zone_duty(p)
        if duty <= floor:
            return duty
        return floor + (duty - floor) * self.tuning.reference_pump_rate_per_s / rate

    def _after_rep_vent(self, now: float, f: PressureFilter, target: float) -> bool:
        """Just after a rep's vent pulse: its dip is the valve's, the rep is still rising.

        Past `vent_dip_s` the raw reading decides: falling since the valve shut, the rep is over.
        """
        tn = self.tuning
        if not self._in_rep(now):
            return False
        since = now - self._vented_at
        if since < tn.vent_dip_s:
            return True
        return since < tn.vent_dip_confirm_s and not self._falling_since_shut(
            now, f, tn.refill_slope_frac * target
        )

    def _track_since_shut(self, now: float, f: PressureFilter) -> None:
        """Remember the raw pressure once the last vent pulse's valve has shut."""
        if self._since_shut is None and now - self._vented_at >= self.tuning.valve_settle_s:
            self._since_shut = (now, f.raw or 0.0)

    def _falling_since_shut(self, now: float, f: PressureFilter, slope: float) -> bool:
        """The raw pressure has kept falling since the valve shut: the muscle is relaxing.

        The filtered slope still holds the pulse's own drop for its window; the raw reading
        after the valve has shut does not, so the refill can start a tenth of a second sooner,
        which is what a thigh's relaxation needs.
        """
        if self._since_shut is None:
            return False
        t0, p0 = self._since_shut
        span = now - t0
        fall = p0 - (f.raw or 0.0)
        tn = self.tuning
        return span >= tn.post_vent_fall_s and fall > max(slope * span, tn.post_vent_fall_mmHg)

    def _refill_due(self, now: float, f: PressureFilter, target: float) -> bool:
        """A rep that needed venting has turned down: the muscle is relaxing, pump back now."""
        tn = self.tuning
        slope = tn.refill_slope_frac * target
        fast_pump = (
            self.pump_rate_per_s is not None
            and self.pump_rate_per_s > tn.refill_max_pump_rate_per_s
        )
        return (
            not fast_pump
            and self._episode_start > self._refilled_episode
            and self._episode_total >= tn.refill_min_frac * target - self._lift(target)
            and now - self._episode_t <= tn.refill_window_s
            and (
                (now - self._vented_at >= tn.refill_after_vent_s and f.slope < -slope)
                or self._falling_since_shut(now, f, slope)
            )
            and (f.value or 0.0)
            < target + self._band(target, tn.refill_start_frac) + self._lift(target)
        )

    def _lift(self, target: float) -> float:
        """How much sooner (mmHg) a refill starts, and higher it may go, for a weak pump.

        A pump that cannot keep up with a relaxing limb must start at the top of the rep, and
        after a rep clipped higher even a small vent is more than it puts back in time.
        """
        tn = self.tuning
        lift = 2.0 * self._clip_raise
        if self._under > tn.weak_refill_under_frac:
            lift = max(lift, tn.spike_open_frac + self._clip_raise - tn.refill_start_frac)
        return lift * target


class OnOffRegulator:
    """Plain bang-bang on the raw reading with a +-band: the baseline consumer cuffs resemble.

    The pump starts under the band and stops `stop_inside` mmHg inside its lower edge; the
    valve opens over the band and shuts as far inside its upper edge. Stopping each actuator at
    the set point instead let the pump's momentum carry an arm cuff across the band into a
    vent, whose fast dump crossed it back: a 10 Hz cycle that never held +-3 mmHg and clicked
    ten times more than this one, and would flatter any controller compared with it.
    """

    def __init__(self, band_mmHg: float = 3.0, stop_inside: float = 1.0) -> None:
        self.band = band_mmHg
        self.stop_inside = stop_inside
        self.name = f"on-off +-{band_mmHg:g}"
        self._pumping = False
        self._venting = False

    def reset(self) -> None:
        self._pumping = False
        self._venting = False

    @property
    def last_rep_vent_t(self) -> float:
        """Never: a plain on/off knows no reps."""
        return -math.inf

    def inflate(self, now: float, f: PressureFilter, target: float) -> Actuation:
        return Actuation(1.0 if (f.raw or 0.0) < target else 0.0, False)

    def hold(self, now: float, f: PressureFilter, target: float) -> Actuation:
        p = f.raw or 0.0
        low, high = target - self.band, target + self.band
        if p < low:
            self._pumping = True
        elif p >= low + self.stop_inside:
            self._pumping = False
        if p > high:
            self._venting = True
        elif p <= high - self.stop_inside:
            self._venting = False
        return Actuation(1.0 if self._pumping else 0.0, self._venting)


Regulator = PredictiveBandRegulator | OnOffRegulator
