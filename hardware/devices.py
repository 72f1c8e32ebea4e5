"""Builds the device set once, from config, on an injected I2C bus and GPIO pin factory."""

from __future__ import annotations

from dataclasses import dataclass

from gpiozero import DigitalInputDevice
from gpiozero.pins import Factory

from hardware.actuators import AlarmBuzzer, DeadmanOutput, DumpValve, PumpDriver, StopButtonInput
from hardware.clock import Clock
from hardware.config import HardwareConfig
from hardware.pressure_sensor import ADS1115PressureSensor


def make_i2c() -> object:
    """The Pi's I2C1 bus. The only place a real bus is created; everything else takes it injected."""
    import board  # imported here: on a non-Pi machine `board` cannot find pins
    import busio

    return busio.I2C(board.SCL, board.SDA, frequency=400_000)


@dataclass
class Devices:
    """The controller's hardware: it alone owns these."""

    sensor: ADS1115PressureSensor
    pump: PumpDriver
    valve: DumpValve
    stop_button: StopButtonInput
    ready: DigitalInputDevice
    deadman: DeadmanOutput
    buzzer: AlarmBuzzer

    def safe(self) -> None:
        """Pump off, valve open: the state every fault and every exit ends in."""
        self.pump.set_duty(0.0)
        self.valve.open()

    def close(self) -> None:
        self.safe()
        self.sensor.close()
        self.pump.close()
        self.valve.release()
        self.stop_button.close()
        self.ready.close()
        self.deadman.close()
        self.buzzer.close()


def build_devices(
    config: HardwareConfig, clock: Clock, i2c: object, pin_factory: Factory | None = None
) -> Devices:
    """Outputs first and in their safe state, so a failing sensor cannot leave the pump running."""
    pump = PumpDriver(config.pump_pin, config.pump_pwm_hz, pin_factory)
    valve = DumpValve(config.valve_pin, pin_factory)
    deadman = DeadmanOutput(config.deadman_pin, pin_factory)  # not kicked: no power yet
    buzzer = AlarmBuzzer(config.buzzer_pin, pin_factory)
    stop = StopButtonInput(config.stop_pin, pin_factory)
    ready = DigitalInputDevice(config.ready_pin, pull_up=True, pin_factory=pin_factory)
    try:
        sensor = ADS1115PressureSensor(i2c, ready, config, clock)
    except Exception:
        pump.close()
        valve.release()
        deadman.close()
        buzzer.close()
        stop.close()
        ready.close()
        raise
    return Devices(
        sensor=sensor,
        pump=pump,
        valve=valve,
        stop_button=stop,
        ready=ready,
        deadman=deadman,
        buzzer=buzzer,
    )
