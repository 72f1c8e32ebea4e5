"""The alarm buzzer's patterns: the controller calls for a person on its own, not only the screen.

The screen's alarm sound needs the browser, the web server and the kiosk's audio. A controller
alarm must be heard when those are what failed (HEARTBEAT_LOST) and when nobody is looking
(VALVE_STUCK: the cuff must be released by hand). So the controller drives a buzzer on a GPIO of
its own in patterns after IEC 60601-1-8: high priority is a burst of five short pulses every
2.5 s, medium three longer ones every 8 s; low priority is shown, not sounded. A priority that
rises starts its pattern at once; silencing is the alarm board's (30 s, new alarms still sound).
At start the buzzer sounds once briefly, so whoever switches the appliance on hears it work; the
technician's self-test asks for one high-priority burst (`test`) and whether it was heard.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.controller.alarms import Priority
from hardware.ports import Buzzer


@dataclass(frozen=True)
class Pattern:
    """`pulses` of `on_s` sound and `off_s` quiet, the whole starting again every `repeat_s`."""

    pulses: int
    on_s: float
    off_s: float
    repeat_s: float

    def sounding(self, elapsed_s: float) -> bool:
        t = elapsed_s % self.repeat_s
        k = int(t // (self.on_s + self.off_s))
        return k < self.pulses and t - k * (self.on_s + self.off_s) < self.on_s


PATTERNS: dict[Priority, Pattern] = {
    Priority.HIGH: Pattern(pulses=5, on_s=0.12, off_s=0.08, repeat_s=2.5),
    Priority.MEDIUM: Pattern(pulses=3, on_s=0.2, off_s=0.2, repeat_s=8.0),
}
START_BEEP_S = 0.3
TEST = PATTERNS[Priority.HIGH]
TEST_S = TEST.pulses * (TEST.on_s + TEST.off_s)  # one burst: five pulses, 1 s


class AlarmSounder:
    """Turns the priority to sound into the buzzer's on/off, written only when it changes."""

    def __init__(self, buzzer: Buzzer | None, now: float) -> None:
        self.buzzer = buzzer
        self._level: Priority | None = None
        self._since = now
        self._beep_until = now + START_BEEP_S
        self._test_since = float("-inf")
        self._on = False

    def test(self, now: float) -> None:
        """Sound one high-priority burst from now, whatever is sounding."""
        self._test_since = now

    def update(self, now: float, level: Priority | None) -> None:
        if level != self._level:
            self._level, self._since = level, now
        pattern = PATTERNS.get(level) if level is not None else None
        on = (
            now < self._beep_until
            or (pattern is not None and pattern.sounding(now - self._since))
            or now - self._test_since < TEST_S
            and TEST.sounding(now - self._test_since)
        )
        if on != self._on and self.buzzer is not None:
            self.buzzer.sound(on)
        self._on = on

    @property
    def sounding(self) -> bool:
        return self._on
