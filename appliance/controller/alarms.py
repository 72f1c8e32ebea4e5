"""Alarm codes, what each tells the patient and clinician to do, and the board of active alarms."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AlarmCode(StrEnum):
    """Every alarm is an event with one of these codes (docs/safety.md maps them to hazards)."""

    OVERPRESSURE = "OVERPRESSURE"
    CEILING = "CEILING"
    PUMP_NO_RISE = "PUMP_NO_RISE"
    VALVE_STUCK = "VALVE_STUCK"
    SENSOR_RANGE = "SENSOR_RANGE"
    SENSOR_STUCK = "SENSOR_STUCK"
    SENSOR_READ = "SENSOR_READ"
    OCCLUSION_TIME = "OCCLUSION_TIME"
    HEARTBEAT_LOST = "HEARTBEAT_LOST"
    STOP_BUTTON = "STOP_BUTTON"
    STOP_UI = "STOP_UI"
    PRESSURISED_AT_START = "PRESSURISED_AT_START"
    PRESSURE_HIGH = "PRESSURE_HIGH"
    PRESSURE_LOW = "PRESSURE_LOW"
    LEAK = "LEAK"
    REFILL_SLOW = "REFILL_SLOW"
    INFLATE_TIMEOUT = "INFLATE_TIMEOUT"
    LOP_FAILED = "LOP_FAILED"


# What to do, in plain words, for the screen and the log.
ADVICE: dict[AlarmCode, str] = {
    AlarmCode.OVERPRESSURE: "Cuff pressure exceeded 300 mmHg; the cuff was emptied. Check the cuff and call the technician.",
    AlarmCode.CEILING: "Cuff pressure exceeded this session's ceiling; the cuff was emptied.",
    AlarmCode.PUMP_NO_RISE: "Pressure does not rise while pumping: check the cuff is on and the hose is connected.",
    AlarmCode.VALVE_STUCK: "The cuff does not empty: loosen or cut the cuff now and call the technician.",
    AlarmCode.SENSOR_RANGE: "Pressure sensor out of range: the cuff was emptied. Call the technician.",
    AlarmCode.SENSOR_STUCK: "Pressure sensor frozen: the cuff was emptied. Call the technician.",
    AlarmCode.SENSOR_READ: "Pressure sensor not answering: the cuff was emptied. Call the technician.",
    AlarmCode.OCCLUSION_TIME: "Occlusion time limit reached: the cuff was emptied. Rest before inflating again.",
    AlarmCode.HEARTBEAT_LOST: "The screen stopped responding: the cuff was emptied.",
    AlarmCode.STOP_BUTTON: "Stop button pressed: the cuff was emptied.",
    AlarmCode.STOP_UI: "STOP pressed: the cuff was emptied.",
    AlarmCode.PRESSURISED_AT_START: "The cuff was under pressure when the controller started; it was emptied.",
    AlarmCode.PRESSURE_HIGH: "Pressure more than 15 mmHg above target: venting.",
    AlarmCode.PRESSURE_LOW: "Pressure more than 15 mmHg below target: pumping. Check the cuff and hose.",
    AlarmCode.LEAK: "The cuff is leaking: check the hose connections and the cuff.",
    AlarmCode.REFILL_SLOW: "The pump cannot refill the cuff between reps: pressure dips more than 5 % under target. Exercise can go on; ask the technician to check the pump.",
    AlarmCode.INFLATE_TIMEOUT: "The cuff did not reach its pressure in time: check the cuff and hose.",
    AlarmCode.LOP_FAILED: "Limb occlusion pressure could not be measured.",
}

SILENCE_S = 30.0


@dataclass
class Alarm:
    """An active alarm; `latched` ones stay until the clinician resets the controller."""

    code: AlarmCode
    since: float
    latched: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code.value,
            "since": round(self.since, 3),
            "latched": self.latched,
            "message": ADVICE[self.code],
        }


class AlarmBoard:
    """Active alarms and the silence timer. Silencing mutes for 30 s; it never clears an alarm."""

    def __init__(self) -> None:
        self._active: dict[AlarmCode, Alarm] = {}
        self._silenced_until = float("-inf")
        self.raised: list[tuple[float, AlarmCode]] = []

    def raise_(self, code: AlarmCode, now: float, *, latched: bool) -> bool:
        """Activate `code`; True if it was not active (a new event)."""
        if code in self._active:
            self._active[code].latched |= latched
            return False
        self._active[code] = Alarm(code, now, latched)
        self.raised.append((now, code))
        return True

    def clear(self, code: AlarmCode) -> None:
        alarm = self._active.get(code)
        if alarm is not None and not alarm.latched:
            del self._active[code]

    def reset_latched(self) -> None:
        self._active = {c: a for c, a in self._active.items() if not a.latched}

    def silence(self, now: float) -> float:
        self._silenced_until = now + SILENCE_S
        return self._silenced_until

    def silenced(self, now: float) -> bool:
        return now < self._silenced_until

    def active(self) -> list[Alarm]:
        return sorted(self._active.values(), key=lambda a: a.since)

    def is_active(self, code: AlarmCode | str) -> bool:
        return code in self._active

    def first_code(self) -> AlarmCode | None:
        """The most recent alarm code, for one-column traces."""
        alarms = self.active()
        return alarms[-1].code if alarms else None
