"""Pump, dump valve, stop button and alarm buzzer as gpiozero devices (real pins on the Pi, mock pins off it)."""

from __future__ import annotations

import threading

from gpiozero import Button, Buzzer, DigitalOutputDevice, PWMOutputDevice
from gpiozero.pins import Factory


class PumpDriver:
    """12 V diaphragm pump through a logic-level MOSFET, speed by PWM duty."""

    def __init__(self, pin: int, frequency_hz: int, pin_factory: Factory | None = None) -> None:
        self._device = PWMOutputDevice(
            pin, frequency=frequency_hz, initial_value=0.0, pin_factory=pin_factory
        )

    @property
    def duty(self) -> float:
        return float(self._device.value)

    def set_duty(self, duty: float) -> None:
        if duty != duty:  # NaN must never reach the pin
            duty = 0.0
        self._device.value = min(1.0, max(0.0, duty))

    def close(self) -> None:
        self._device.value = 0.0
        self._device.close()


class DumpValve:
    """Normally-open solenoid: energised closes it, so any loss of drive or power deflates."""

    def __init__(self, pin: int, pin_factory: Factory | None = None) -> None:
        self._device = DigitalOutputDevice(
            pin, active_high=True, initial_value=False, pin_factory=pin_factory
        )

    @property
    def is_open(self) -> bool:
        return not self._device.value

    def open(self) -> None:
        self._device.off()

    def close(self) -> None:
        self._device.on()

    def release(self) -> None:
        self._device.off()
        self._device.close()


class DeadmanOutput:
    """A GPIO the control loop toggles; a retriggerable monostable holds +12V_SW on its edges.

    When the loop stalls the edges stop, the monostable times out (about 150 ms) and the pump and
    valve lose power: the pump stops and the normally-open valve vents, whatever Linux is doing.
    """

    def __init__(self, pin: int, pin_factory: Factory | None = None) -> None:
        self._device = DigitalOutputDevice(pin, initial_value=False, pin_factory=pin_factory)

    def kick(self) -> None:
        self._device.toggle()

    def close(self) -> None:
        self._device.off()
        self._device.close()


class AlarmBuzzer:
    """An active piezo buzzer (its own oscillator) through a transistor: high sounds it.

    On the Pi's 5 V, not on +12V_SW: a stop or the dead-man cutting the pump's power must not
    silence the alarm that says why.
    """

    def __init__(self, pin: int, pin_factory: Factory | None = None) -> None:
        self._device = Buzzer(pin, active_high=True, initial_value=False, pin_factory=pin_factory)

    @property
    def is_sounding(self) -> bool:
        return bool(self._device.value)

    def sound(self, on: bool) -> None:
        if on:
            self._device.on()
        else:
            self._device.off()

    def close(self) -> None:
        self._device.off()
        self._device.close()


class StopButtonInput:
    """Stop button to ground with the internal pull-up; presses are latched by an edge callback."""

    def __init__(self, pin: int, pin_factory: Factory | None = None) -> None:
        self._button = Button(pin, pull_up=True, bounce_time=None, pin_factory=pin_factory)
        self._lock = threading.Lock()
        self._presses = 0
        self._button.when_pressed = self._on_press

    def _on_press(self) -> None:
        with self._lock:
            self._presses += 1

    @property
    def is_pressed(self) -> bool:
        return bool(self._button.is_pressed)

    def take_press(self) -> bool:
        with self._lock:
            pressed = self._presses > 0
            self._presses = 0
        return pressed or self.is_pressed

    def close(self) -> None:
        self._button.close()
