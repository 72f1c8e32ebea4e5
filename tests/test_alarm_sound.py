"""The controller's buzzer, read at its gpiozero mock pin: who is called, how urgently, and when
silencing holds. The patterns are counted in pulses over simulated time."""

from __future__ import annotations

from appliance.controller.alarm_sound import PATTERNS, START_BEEP
from appliance.controller.alarms import RAISED_KEPT, AlarmBoard, AlarmCode, Priority
from appliance.controller.supervisor import State
from appliance.simulation import SimulatedAppliance, build_simulated
from hardware.config import HardwareConfig
from hardware.sim.cuff import default_plant
from tests.test_controller_safety import ARM, hold, make, time_to_fault


def buzzer_pin(sim: SimulatedAppliance) -> bool:
    return bool(sim.rig.pin_factory.pin(HardwareConfig().buzzer_pin).state)


def listen(sim: SimulatedAppliance, seconds: float) -> list[tuple[float, bool]]:
    """The buzzer pin on every control tick for `seconds` of simulated time."""
    heard: list[tuple[float, bool]] = []
    previous = sim.controller.on_tick

    def record(rec) -> None:
        heard.append((rec.t, buzzer_pin(sim)))
        if previous is not None:
            previous(rec)

    sim.controller.on_tick = record
    try:
        sim.run(seconds)
    finally:
        sim.controller.on_tick = previous
    return heard


def pulses(heard: list[tuple[float, bool]]) -> list[float]:
    """When each pulse began (the pin going high; sounding at the first tick counts as one)."""
    before = [False] + [on for _, on in heard[:-1]]
    return [t for (t, on), was in zip(heard, before, strict=True) if on and not was]


def test_the_buzzer_sounds_once_at_start_so_the_clinic_hears_it_work() -> None:
    sim = build_simulated(default_plant(3, **ARM), 3)
    heard = listen(sim, 3.0)
    assert len(pulses(heard)) == 1
    sounding = [t for t, on in heard if on]
    assert sounding[0] < 0.01 and 0.28 < sounding[-1] < START_BEEP.burst_s
    assert sim.controller.alarms.active() == []  # a beep, not an alarm


def test_a_stuck_valve_calls_someone_now_and_silence_holds_only_30_s() -> None:
    """The cuff stays tight until a person releases it: high priority, five pulses every 2.5 s,
    from the fault on; silenced for 30 s, then again."""
    sim = make()
    hold(sim, 150.0)
    assert not buzzer_pin(sim)
    sim.rig.valve_stuck_closed = True
    sim.controller.handle({"cmd": "deflate"})
    time_to_fault(sim, "VALVE_STUCK", 3.0)
    heard = listen(sim, 5.0)
    starts = pulses(heard)
    assert len(starts) == 2 * PATTERNS[Priority.HIGH].pulses, starts
    assert starts[0] - heard[0][0] < 0.02  # at once, not at the next burst
    assert 2.45 < starts[5] - starts[0] < 2.55

    sim.controller.handle({"cmd": "silence"})
    muted = listen(sim, 29.0)
    assert not any(on for _, on in muted)
    assert sim.controller.state == State.FAULT  # silence is not a reset
    again = listen(sim, 3.5)
    assert len(pulses(again)) >= PATTERNS[Priority.HIGH].pulses


def test_silencing_again_does_not_lengthen_a_silence() -> None:
    """A stuck key, or a client re-sending SILENCE every 29 s, kept a stuck valve quiet for
    good; each alarm's silence is given once, and it sounds again when its 30 s are over."""
    sim = make()
    hold(sim, 150.0)
    sim.rig.valve_stuck_closed = True
    sim.controller.handle({"cmd": "deflate"})
    time_to_fault(sim, "VALVE_STUCK", 3.0)
    heard: list[tuple[float, bool]] = []
    for _ in range(4):
        sim.controller.handle({"cmd": "silence"})
        heard += listen(sim, 29.0)
    assert len(pulses(heard)) >= 10 * PATTERNS[Priority.HIGH].pulses  # most of each 58 s
    assert sim.plant.pressure_mmHg > 100


def test_a_silence_mutes_the_alarms_the_screen_showed_not_one_raised_since() -> None:
    sim = make(leak_orifice_mm=0.35)
    hold(sim, 120.0)
    c = sim.controller
    assert sim.run_until(lambda: c.alarms.is_active("LEAK"), 12.0)
    shown = [a["code"] for a in c.status()["alarms"]]
    sim.rig.pump_dead = True  # the pump dies while someone reaches for SILENCE
    time_to_fault(sim, "PUMP_NO_RISE", 30.0)
    assert c.handle({"cmd": "silence", "codes": shown})["ok"]
    assert not c.status()["silenced"]  # the screens sound the fault too
    assert len(pulses(listen(sim, 2.4))) == PATTERNS[Priority.HIGH].pulses
    refused = c.handle({"cmd": "silence", "codes": ["LEAK", "NOT_A_CODE"]})
    assert not refused["ok"] and "codes" in refused["error"]


def test_a_new_alarm_sounds_through_an_earlier_silence() -> None:
    sim = make(leak_orifice_mm=0.35)
    hold(sim, 120.0)
    c = sim.controller
    assert sim.run_until(lambda: c.alarms.is_active("LEAK"), 12.0)
    leak = listen(sim, 7.5)
    assert len(pulses(leak)) == PATTERNS[Priority.MEDIUM].pulses  # medium: 3 every 8 s
    assert c.handle({"cmd": "silence"})["status"]["silenced"]
    assert not any(on for _, on in listen(sim, 5.0))
    sim.rig.adc.stuck = True  # the sensor freezes while the leak alarm is silenced
    time_to_fault(sim, "SENSOR_STUCK", 1.0)
    assert not c.status()["silenced"]  # the screens sound it too
    assert len(pulses(listen(sim, 2.4))) == PATTERNS[Priority.HIGH].pulses


def test_a_silenced_alarm_that_escalates_to_a_fault_sounds_again() -> None:
    """PRESSURE_HIGH silenced, then lasting long enough to empty the cuff: that is news."""
    sim = make()
    hold(sim, 150.0)
    c = sim.controller
    sim.rig.valve_stuck_closed = True
    assert c.handle({"cmd": "set_target", "target_mmHg": 125})["ok"]
    assert sim.run_until(lambda: c.alarms.is_active("PRESSURE_HIGH"), 2.5, step_s=0.01)
    assert c.handle({"cmd": "silence"})["status"]["silenced"]
    events = len(c.alarms.raised)
    time_to_fault(sim, "PRESSURE_HIGH", 6.0)
    assert [code for _, code in list(c.alarms.raised)[events:]] == ["PRESSURE_HIGH"]  # an event
    assert not c.status()["silenced"]
    # Heard at once, before the stuck valve (2 s later) would raise an alarm of its own.
    assert len(pulses(listen(sim, 1.0))) == PATTERNS[Priority.MEDIUM].pulses
    assert not c.alarms.is_active("VALVE_STUCK")


def test_an_alarm_raised_in_the_tick_of_a_silence_is_not_muted_by_it() -> None:
    """Silencing mutes what was sounding when it was asked, not whatever that tick raised."""
    board = AlarmBoard()
    board.raise_(AlarmCode.LEAK, 10.0, latched=False)
    board.silence(10.004)  # the command is handled a little after the tick's own time...
    board.raise_(AlarmCode.VALVE_STUCK, 10.002, latched=True)  # ...whose findings come later
    assert board.audible(10.01) == Priority.HIGH
    board.clear(AlarmCode.LEAK)
    board.raise_(AlarmCode.LEAK, 12.0, latched=False)  # it came back: a new event
    assert not board.muted(12.0)


def test_a_stop_someone_pressed_is_shown_not_sounded() -> None:
    sim = make()
    hold(sim)
    sim.controller.handle({"cmd": "stop"})
    assert sim.controller.fault is not None and sim.controller.fault.value == "STOP_UI"
    assert not any(on for _, on in listen(sim, 3.0))


def test_a_dead_screen_is_called_out_by_the_buzzer() -> None:
    """HEARTBEAT_LOST: the cuff is emptied, and the only way left to tell anyone is the buzzer."""
    sim = make()
    hold(sim)
    sim.ui_heartbeat = False
    time_to_fault(sim, "HEARTBEAT_LOST", 5.0)
    assert len(pulses(listen(sim, 2.4))) == PATTERNS[Priority.HIGH].pulses


def test_the_self_tests_burst_is_one_high_priority_pattern_and_only_while_idle() -> None:
    sim = make()
    sim.run(1.0)  # past the start beep
    assert sim.controller.handle({"cmd": "sound_test"})["ok"]
    heard = listen(sim, 3.0)
    starts = pulses(heard)
    high = PATTERNS[Priority.HIGH]
    assert len(starts) == high.pulses  # once, not repeated every 2.5 s like an alarm
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(abs(g - (high.on_s + high.off_s)) < 0.01 for g in gaps)
    assert sim.controller.alarms.active() == []
    hold(sim)
    refused = sim.controller.handle({"cmd": "sound_test"})
    assert not refused["ok"] and "must be IDLE" in refused["error"]
    assert pulses(listen(sim, 2.0)) == []  # a patient on the cuff hears nothing


def test_the_alarm_history_is_bounded_and_keeps_the_latest() -> None:
    """A controller runs for months: its event list must not grow with every alarm."""
    board = AlarmBoard()
    for n in range(3 * RAISED_KEPT):
        assert board.raise_(AlarmCode.LEAK, float(n), latched=False)
        board.clear(AlarmCode.LEAK)
    assert len(board.raised) == RAISED_KEPT
    assert board.raised[0] == (2.0 * RAISED_KEPT, AlarmCode.LEAK)
    assert board.raised[-1] == (3.0 * RAISED_KEPT - 1, AlarmCode.LEAK)
