"""The simulated bench: a plant wired to the emulated ADS1115 and gpiozero mock pins.

The real drivers run against it unchanged: the adafruit driver talks I2C to the emulator, and
gpiozero devices drive `MockFactory` PWM pins that the rig reads back to step the plant. Faults a
test can inject live here (pump dead, valve stuck closed, buzzer dead) or on the emulator (bus
errors, a stuck conversion, a rail). The bench also listens: it counts the sounds the alarm buzzer
makes, as the technician does during the self-test.

The rig is wired as hardware/README.md draws it: pump and valve take their power from +12V_SW,
which runs through the STOP button's normally-closed contact and the dead-man's monostable. So
pressing STOP, or a loop that stops toggling the dead-man's pin, stops the pump and vents the
cuff whatever the pins are driven to.
"""

from __future__ import annotations

import logging
import math
import random

from gpiozero.pins.mock import MockFactory, MockPWMPin

from hardware.ads1115_emulator import ADS1115Emulator
from hardware.clock import SimClock
from hardware.config import HardwareConfig
from hardware.devices import Devices, build_devices
from hardware.sim.plant import Plant

log = logging.getLogger(__name__)

# gpiozero's mock pins keep every change for test assertions; the ADC's ready pin changes 500
# times a second, so a simulated appliance left running would grow without bound. Nothing here
# reads the history: it is dropped once it is this long.
PIN_HISTORY = 1000
# The dead-man's retriggerable monostable (74HC123 with its RC): power stays on this long after
# the last rising edge on its pin.
DEADMAN_HOLD_S = 0.15


class SimulatedRig:
    """Plant + emulated chips + mock pins, advanced by a SimClock."""

    def __init__(
        self,
        plant: Plant,
        clock: SimClock,
        config: HardwareConfig | None = None,
        *,
        seed: int = 0,
        sensor_noise_mmHg: float = 0.15,
    ) -> None:
        self.plant = plant
        self.clock = clock
        self.config = config or HardwareConfig()
        self.pin_factory = MockFactory(pin_class=MockPWMPin)
        self._rng = random.Random(seed + 7919)
        self.sensor_noise_mmHg = sensor_noise_mmHg
        self.pump_pin = self.pin_factory.pin(self.config.pump_pin)
        self.valve_pin = self.pin_factory.pin(self.config.valve_pin)
        self.stop_pin = self.pin_factory.pin(self.config.stop_pin)
        self.ready_pin = self.pin_factory.pin(self.config.ready_pin)
        self.deadman_pin = self.pin_factory.pin(self.config.deadman_pin)
        self.buzzer_pin = self.pin_factory.pin(self.config.buzzer_pin)
        self.adc = ADS1115Emulator(
            clock,
            {self.config.adc_channel: self._transducer_volts},
            address=self.config.i2c_address,
            ready_pin=self.ready_pin,
            seed=seed,
        )
        self._pins = (
            self.pump_pin,
            self.valve_pin,
            self.stop_pin,
            self.ready_pin,
            self.deadman_pin,
            self.buzzer_pin,
        )
        self.pump_dead = False
        self.valve_stuck_closed = False
        self.buzzer_dead = False  # its transistor or the piezo open: the pin toggles, no sound
        self.buzzer_onsets = 0  # the bench's ear: how many sounds began
        # A plant that raised or gave a pressure that is not a number: the cuff is beyond the
        # model, so the transducer reads as one pulled off its connector (a rail), which is
        # what the controller must then catch. The plant is not stepped again.
        self.plant_error: str | None = None
        self._sounding = False
        self._deadman_level = bool(self.deadman_pin.state)
        self._deadman_edge = -float("inf")
        clock.on_advance(self._advance)

    def build_devices(self) -> Devices:
        """The same device classes the Pi uses, on the emulated bus and mock pins."""
        return build_devices(self.config, self.clock, self.adc, self.pin_factory)

    @property
    def pump_duty(self) -> float:
        """Duty the pump pin is driven at (0 when the pin is not yet an output).

        The pump runs at it only while `powered`."""
        state = self.pump_pin.state
        return float(state) if self.pump_pin.function == "output" else 0.0

    @property
    def valve_open(self) -> bool:
        """The valve's pin: normally open, only a driven-high output closes it.

        The valve shuts only while `powered` as well."""
        return not (self.valve_pin.function == "output" and self.valve_pin.state)

    @property
    def powered(self) -> bool:
        """+12V_SW is on: STOP not pressed and the dead-man toggled within its hold time."""
        return self._powered_at(self.clock.now())

    def _powered_at(self, t: float) -> bool:
        stop_pressed = not self.stop_pin.state  # the NO and NC contacts move together
        return t - self._deadman_edge <= DEADMAN_HOLD_S and not stop_pressed

    def press_stop(self) -> None:
        self.stop_pin.drive_low()

    def release_stop(self) -> None:
        self.stop_pin.drive_high()

    def _transducer_volts(self) -> float:
        # Looked up on the class: hasattr on the plant would run its property (user code) once more.
        line = hasattr(type(self.plant), "transducer_mmHg")
        seen = self._plant_mmHg("transducer_mmHg" if line else "pressure_mmHg")
        if seen is None:
            return 0.0  # the input pulled to ground, under the transducer's range
        mmHg = seen + self._rng.gauss(0.0, self.sensor_noise_mmHg)
        return self.config.transducer.adc_volts(mmHg)

    def _plant_mmHg(self, name: str = "pressure_mmHg") -> float | None:
        """The plant's pressure (or another of its readings), or None once the plant has failed
        (and why is recorded)."""
        if self.plant_error is not None:
            return None
        try:
            value = float(getattr(self.plant, name))
        except Exception as exc:  # the plant is user code: any failure ends the model
            self._plant_failed(f"{name} raised {type(exc).__name__}: {exc}")
            return None
        if not math.isfinite(value):
            self._plant_failed(f"{name} is {value}")
            return None
        return value

    def _plant_failed(self, why: str) -> None:
        if self.plant_error is None:
            self.plant_error = why
            log.error("the simulated plant failed: %s", why)

    def _advance(self, t: float, dt: float) -> None:
        level = bool(self.deadman_pin.state)
        if level and not self._deadman_level:  # the monostable triggers on rising edges
            self._deadman_edge = t
        self._deadman_level = level
        powered = self._powered_at(t)
        duty = self.pump_duty if powered and not self.pump_dead else 0.0
        valve_open = (self.valve_open or not powered) and not self.valve_stuck_closed
        if self.plant_error is None:
            try:
                self.plant.step(dt, duty, valve_open)
            except Exception as exc:  # the plant is user code: any failure ends the model
                self._plant_failed(f"step raised {type(exc).__name__}: {exc}")
        self.adc.tick(t + dt)
        sounding = bool(self.buzzer_pin.state) and not self.buzzer_dead
        self.buzzer_onsets += sounding and not self._sounding
        self._sounding = sounding
        for pin in self._pins:
            if len(pin.states) > PIN_HISTORY:
                pin.clear_states()
