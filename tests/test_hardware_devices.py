"""Real drivers (adafruit ADS1115, gpiozero) on the simulated rig: readings, pins, faults."""

from __future__ import annotations

import pytest

from hardware.clock import SimClock
from hardware.config import HardwareConfig
from hardware.ports import SensorError
from hardware.sim.rig import DEADMAN_HOLD_S, PIN_HISTORY, SimulatedRig
from hardware.transducer import Calibration, TransducerModel
from tests.conftest import HeldPressure


@pytest.fixture
def rig(clock: SimClock, held: HeldPressure) -> SimulatedRig:
    return SimulatedRig(held, clock, seed=1)


def collect(devices, clock: SimClock, seconds: float, poll_s: float = 0.0005):
    samples = []
    t_end = clock.now() + seconds
    while clock.now() < t_end:
        s = devices.sensor.read()
        if s is not None:
            samples.append(s)
        clock.sleep(poll_s)
    return samples


@pytest.mark.parametrize("mmHg", [0.0, 60.0, 150.0, 250.0, 300.0])
def test_reads_known_pressure_through_real_driver(rig, clock, held, mmHg) -> None:
    held.mmHg = mmHg
    devices = rig.build_devices()
    samples = collect(devices, clock, 0.2)
    mean = sum(s.mmHg for s in samples) / len(samples)
    assert mean == pytest.approx(mmHg, abs=0.2)


def test_no_duplicate_samples_when_polling_faster_than_conversion(rig, clock) -> None:
    devices = rig.build_devices()
    before = rig.adc.conversions
    samples = collect(devices, clock, 1.0, poll_s=0.0005)  # 8 polls per 250 SPS conversion
    made = rig.adc.conversions - before
    assert abs(len(samples) - made) <= 1
    assert len(samples) == pytest.approx(250, abs=2)
    times = [s.t for s in samples]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert devices.sensor.missed == 0


def test_slow_polling_counts_missed_conversions(rig, clock) -> None:
    devices = rig.build_devices()
    samples = collect(devices, clock, 1.0, poll_s=0.01)  # 100 Hz against 250 SPS
    assert len(samples) == pytest.approx(100, abs=2)
    assert devices.sensor.missed == pytest.approx(150, abs=4)


def test_a_long_simulated_run_keeps_no_pin_history(rig, clock, held) -> None:
    """The ready pin changes 500 times a second: a simulated appliance left on must not grow."""
    held.mmHg = 100.0
    devices = rig.build_devices()
    samples = collect(devices, clock, 10.0, poll_s=0.002)
    assert len(samples) == pytest.approx(2500, abs=5)  # the ready pin kept working throughout
    pins = (rig.pump_pin, rig.valve_pin, rig.stop_pin, rig.ready_pin)
    assert max(len(pin.states) for pin in pins) <= PIN_HISTORY + 1


def test_configured_rate_is_used(clock, held) -> None:
    rig = SimulatedRig(held, clock, HardwareConfig(data_rate=860))
    devices = rig.build_devices()
    assert len(collect(devices, clock, 0.5, poll_s=0.0002)) == pytest.approx(430, abs=3)


def test_slow_data_rate_refused() -> None:
    with pytest.raises(ValueError, match="data_rate"):
        HardwareConfig(data_rate=128)


def test_transfer_function_round_trip_and_documented_points() -> None:
    model = TransducerModel()
    assert model.adc_volts(0.0) == pytest.approx(0.2 * 2 / 3)
    assert model.adc_volts(375.0) == pytest.approx(4.7 * 2 / 3, abs=0.01)
    for p in (-10.0, 0.0, 123.4, 300.0):
        assert model.nominal_mmHg(model.adc_volts(p)) == pytest.approx(p)
    assert model.volts_in_range(model.adc_volts(200))
    assert not model.volts_in_range(0.0)
    assert not model.volts_in_range(3.3)


def test_calibration_from_reference_points() -> None:
    # A part reading 4 mmHg high at zero and 3 % low in span.
    truth = [0.0, 100.0, 250.0]
    nominal = [4.0 + p / 1.03 for p in truth]
    cal = Calibration.from_points(list(zip(nominal, truth, strict=True)))
    assert cal.span == pytest.approx(1.03)
    assert cal.zero_mmHg == pytest.approx(4.0)
    for n, p in zip(nominal, truth, strict=True):
        assert cal.apply(n) == pytest.approx(p)
    with pytest.raises(ValueError):
        Calibration.from_points([(10.0, 10.0)])
    with pytest.raises(ValueError, match="span"):
        Calibration(span=1.5)


def test_calibration_applied_by_sensor(clock, held) -> None:
    held.mmHg = 100.0
    rig = SimulatedRig(held, clock, HardwareConfig(calibration=Calibration(zero_mmHg=5, span=1.1)))
    devices = rig.build_devices()
    samples = collect(devices, clock, 0.1)
    mean = sum(s.mmHg for s in samples) / len(samples)
    assert mean == pytest.approx(1.1 * (100 - 5), abs=0.3)


def test_mock_pins_drive_the_plant(rig, clock, held) -> None:
    devices = rig.build_devices()
    clock.sleep(0.01)
    assert held.last_duty == 0.0 and held.last_valve_open  # safe at start: valve unpowered
    devices.deadman.kick()
    devices.pump.set_duty(0.6)
    devices.valve.close()
    clock.sleep(0.01)
    assert held.last_duty == pytest.approx(0.6)
    assert not held.last_valve_open
    devices.pump.set_duty(float("nan"))
    devices.pump.set_duty(3.0)
    assert devices.pump.duty == 1.0
    devices.safe()
    clock.sleep(0.01)
    assert held.last_duty == 0.0 and held.last_valve_open


def pumping_into_a_sealed_cuff(held: HeldPressure) -> bool:
    """What the plant received: the pump at full duty and the valve shut."""
    return held.last_duty == 1.0 and not held.last_valve_open


def vented(held: HeldPressure) -> bool:
    return held.last_duty == 0.0 and held.last_valve_open


def test_pump_and_valve_have_power_only_while_the_deadman_is_kicked(rig, clock, held) -> None:
    devices = rig.build_devices()
    devices.pump.set_duty(1.0)
    devices.valve.close()
    clock.sleep(0.05)
    assert vented(held)  # never kicked: no power at start-up
    for _ in range(30):  # a loop kicking every 10 ms for 0.3 s
        devices.deadman.kick()
        clock.sleep(0.01)
        assert pumping_into_a_sealed_cuff(held)
    clock.sleep(DEADMAN_HOLD_S - 0.02)
    assert pumping_into_a_sealed_cuff(held)  # a late tick is ridden out
    clock.sleep(0.03)
    assert vented(held)  # a stalled loop: power cut
    assert devices.pump.duty == 1.0 and not devices.valve.is_open  # whatever the pins say
    devices.deadman.kick()
    clock.sleep(0.01)
    assert pumping_into_a_sealed_cuff(held)


def test_the_stop_buttons_own_contact_cuts_pump_and_valve_power(rig, clock, held) -> None:
    devices = rig.build_devices()
    devices.pump.set_duty(1.0)
    devices.valve.close()
    for pressed in (False, True, False):
        (rig.press_stop if pressed else rig.release_stop)()
        devices.deadman.kick()
        clock.sleep(0.004)  # nobody reads the button here: the contact alone vents the cuff
        assert vented(held) if pressed else pumping_into_a_sealed_cuff(held)


def test_closing_devices_leaves_valve_open(rig, clock, held) -> None:
    devices = rig.build_devices()
    devices.pump.set_duty(1.0)
    devices.valve.close()
    devices.close()
    clock.sleep(0.01)
    assert held.last_duty == 0.0 and held.last_valve_open


def test_stop_button_press_is_latched(rig, clock) -> None:
    devices = rig.build_devices()
    assert not devices.stop_button.take_press()
    rig.press_stop()
    rig.release_stop()  # a tap shorter than a loop period
    assert devices.stop_button.take_press()
    assert not devices.stop_button.take_press()
    rig.press_stop()
    assert devices.stop_button.is_pressed and devices.stop_button.take_press()


def test_fault_pump_dead_and_valve_stuck(rig, clock, held) -> None:
    devices = rig.build_devices()
    rig.pump_dead = True
    rig.valve_stuck_closed = True
    devices.pump.set_duty(1.0)
    devices.valve.open()
    clock.sleep(0.01)
    assert held.last_duty == 0.0
    assert not held.last_valve_open


def test_fault_i2c_errors_raise_sensor_error(rig, clock) -> None:
    devices = rig.build_devices()
    clock.sleep(0.01)
    rig.adc.fail_transactions = 3
    with pytest.raises(SensorError, match="I2C"):
        devices.sensor.read()


def test_fault_absent_chip_fails_at_start(rig) -> None:
    rig.adc.absent = True
    with pytest.raises(SensorError, match="not responding"):
        rig.build_devices()


def test_fault_stuck_reading_has_no_noise(rig, clock, held) -> None:
    held.mmHg = 120.0
    devices = rig.build_devices()
    live = collect(devices, clock, 0.1)
    assert len({s.code for s in live}) > 3  # a live transducer is noisy
    rig.adc.stuck = True
    held.mmHg = 200.0
    frozen = collect(devices, clock, 0.1)
    assert len({s.code for s in frozen[1:]}) == 1


@pytest.mark.parametrize("rail", ["low", "high"])
def test_fault_disconnected_sensor_reads_out_of_range(rig, clock, rail) -> None:
    devices = rig.build_devices()
    rig.adc.rail = rail
    clock.sleep(0.01)
    samples = collect(devices, clock, 0.05)
    assert samples
    assert not any(rig.config.transducer.volts_in_range(s.volts) for s in samples)
