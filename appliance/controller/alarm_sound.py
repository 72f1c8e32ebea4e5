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

    @property
    def burst_s(self) -> float:
        """One burst, played once: the pulses and the gaps after them."""
        return self.pulses * (self.on_s + self.off_s)

    def sounding(self, elapsed_s: float) -> bool:
        t = elapsed_s % self.repeat_s
        k = int(t // (self.on_s + self.off_s))
        return k < self.pulses and t - k * (self.on_s + self.off_s) < self.on_s


PATTERNS: dict[Priority, Pattern] = {
    Priority.HIGH: Pattern(pulses=5, on_s=0.12, off_s=0.08, repeat_s=2.5),
    Priority.MEDIUM: Pattern(pulses=3, on_s=0.2, off_s=0.2, repeat_s=8.0),
}
START_BEEP = Pattern(pulses=1, on_s=0.3, off_s=0.0, repeat_s=0.3)
TEST = PATTERNS[Priority.HIGH]


class AlarmSounder:
    """Turns the priority to sound into the buzzer's on/off, written only when it changes.

    Besides the alarms' repeating patterns it plays single bursts (`cue`): the start beep and
    the self-test's burst.
    """

    def __init__(self, buzzer: Buzzer | None, now: float) -> None:
        self.buzzer = buzzer
        self._level: Priority | None = None
        self._since = now
        self._cues: list[tuple[Pattern, float]] = []
        self._on = False
        self.cue(START_BEEP, now)

    def cue(self, pattern: Pattern, now: float) -> None:
        """Play one burst of `pattern` from now, over whatever else is sounding."""
        self._cues.append((pattern, now))

    def test(self, now: float) -> None:
        """The self-test's burst: one high-priority pattern."""
        self.cue(TEST, now)

    def update(self, now: float, level: Priority | None) -> None:
        if level != self._level:
            self._level, self._since = level, now
        pattern = PATTERNS.get(level) if level is not None else None
        on = pattern is not None and pattern.sounding(now - self._since)
        if self._cues:  # only around a start or a self-test: the tick's usual path skips it
            self._cues = [(p, t) for p, t in self._cues if now - t < p.burst_s]
            on = on or any(p.sounding(now - t) for p, t in self._cues)
        if on != self._on and self.buzzer is not None:
            self.buzzer.sound(on)
        self._on = on

    @property
    def sounding(self) -> bool:
        return self._on
