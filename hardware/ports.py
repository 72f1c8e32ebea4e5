"""Ports: the small protocols the domain uses to read the cuff and drive the pump, valve and button."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class SensorError(Exception):
    """The pressure sensor could not be read (bus error, device missing)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One fresh conversion: when it was taken, the pressure, and the raw evidence behind it."""

    t: float
    mmHg: float
    volts: float
    code: int
    nominal_mmHg: float


class PressureSensor(Protocol):
    """Cuff pressure, one new sample per conversion, never the same conversion twice."""

    def read(self) -> Sample | None:
        """Return the newest conversion not yet handed on, or None if none is ready.

        Raises SensorError when the bus or the chip fails.
        """
        ...

    @property
    def missed(self) -> int:
        """Conversions that completed but were overwritten before they could be read."""
        ...


class Pump(Protocol):
    """Air pump driven by PWM; duty 0 is off."""

    @property
    def duty(self) -> float: ...

    def set_duty(self, duty: float) -> None: ...


class Valve(Protocol):
    """Normally-open dump valve: unpowered means open, so power loss deflates the cuff."""

    @property
    def is_open(self) -> bool: ...

    def open(self) -> None: ...

    def close(self) -> None: ...


class Deadman(Protocol):
    """The hardware dead-man: pump and valve have power only while it keeps being kicked."""

    def kick(self) -> None: ...


class Buzzer(Protocol):
    """The controller's own alarm sounder: on or off, the pattern is the controller's."""

    @property
    def is_sounding(self) -> bool: ...

    def sound(self, on: bool) -> None: ...


class StopButton(Protocol):
    """Physical stop button; a press is latched so a short tap between polls is never lost."""

    @property
    def is_pressed(self) -> bool: ...

    def take_press(self) -> bool:
        """Return True once for each press since the last call (and if it is held now)."""
        ...
