"""Alarm codes, what each tells the patient and clinician to do, and the board of active alarms."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import IntEnum, StrEnum


class AlarmCode(StrEnum):
    """Every alarm is an event with one of these codes (docs/safety.md maps them to hazards)."""

    OVERPRESSURE = "OVERPRESSURE"
    CEILING = "CEILING"
    PUMP_NO_RISE = "PUMP_NO_RISE"
    VALVE_STUCK = "VALVE_STUCK"
    SENSOR_RANGE = "SENSOR_RANGE"
    SENSOR_STUCK = "SENSOR_STUCK"
    SENSOR_READ = "SENSOR_READ"
    SENSOR_LAG = "SENSOR_LAG"
    OCCLUSION_TIME = "OCCLUSION_TIME"
    HEARTBEAT_LOST = "HEARTBEAT_LOST"
    STOP_BUTTON = "STOP_BUTTON"
    STOP_UI = "STOP_UI"
    PRESSURISED_AT_START = "PRESSURISED_AT_START"
    PRESSURE_HIGH = "PRESSURE_HIGH"
    PRESSURE_LOW = "PRESSURE_LOW"
    LEAK = "LEAK"
    REFILL_SLOW = "REFILL_SLOW"
    PRESSURE_UNSTEADY = "PRESSURE_UNSTEADY"
    INFLATE_TIMEOUT = "INFLATE_TIMEOUT"
    LOP_FAILED = "LOP_FAILED"
    OCCLUSION_RECORD = "OCCLUSION_RECORD"


# What to do, in plain words, for the screen and the log.
ADVICE: dict[AlarmCode, str] = {
    AlarmCode.OVERPRESSURE: "Cuff pressure exceeded 300 mmHg; the cuff was emptied. Check the cuff and call the technician.",
    AlarmCode.CEILING: "Cuff pressure exceeded this session's ceiling; the cuff was emptied.",
    AlarmCode.PUMP_NO_RISE: "Pressure does not rise while pumping: check the cuff is on and the hoses are connected and not kinked. If it happens again with all of that in order, call the technician: the pump may be worn.",
    AlarmCode.VALVE_STUCK: "The cuff does not empty: loosen or cut the cuff now and call the technician.",
    AlarmCode.SENSOR_RANGE: "Pressure sensor out of range: the cuff was emptied. Call the technician.",
    AlarmCode.SENSOR_STUCK: "Pressure sensor frozen: the cuff was emptied. Call the technician.",
    AlarmCode.SENSOR_READ: "Pressure sensor not answering: the cuff was emptied. Call the technician.",
    AlarmCode.SENSOR_LAG: "The pressure reading lags the cuff: the hose to the sensor may be pinched or kinked. The cuff was emptied. Free the hose along its whole length; call the technician if it happens again.",
    AlarmCode.OCCLUSION_TIME: "Occlusion time limit reached: the cuff was emptied. Rest before inflating again.",
    AlarmCode.HEARTBEAT_LOST: "The screen stopped responding: the cuff was emptied.",
    AlarmCode.STOP_BUTTON: "Stop button pressed: the cuff was emptied.",
    AlarmCode.STOP_UI: "STOP pressed: the cuff was emptied.",
    AlarmCode.PRESSURISED_AT_START: "The cuff was under pressure when the controller started; it was emptied.",
    AlarmCode.PRESSURE_HIGH: "Pressure more than 15 mmHg above target: venting.",
    AlarmCode.PRESSURE_LOW: "Pressure more than 15 mmHg below target: pumping. Check the cuff and hose.",
    AlarmCode.LEAK: "The cuff is leaking: check the hose connections and the cuff.",
    AlarmCode.REFILL_SLOW: "The pump cannot refill the cuff between reps: pressure dips more than 5 % under target. Exercise can go on; check that no hose is pinched or kinked (under the leg, at the connectors), and if none is, ask the technician to check the pump.",
    AlarmCode.PRESSURE_UNSTEADY: "The cuff pressure swings although the pump is not short of air: the hose to the sensor may be pinched or kinked. Free the hose along its whole length. If the swinging goes on, the cuff is emptied.",
    AlarmCode.INFLATE_TIMEOUT: "The cuff did not reach its pressure in time: check the cuff and hose.",
    AlarmCode.LOP_FAILED: "Limb occlusion pressure could not be measured.",
    AlarmCode.OCCLUSION_RECORD: "The occlusion time cannot be saved (storage error). This exercise may finish; the cuff will not inflate again until it can be saved. Ask the technician to check the SD card.",
}


class Priority(IntEnum):
    """How urgently the buzzer calls someone (after IEC 60601-1-8's high / medium / low)."""

    LOW = 1  # on the screen only: someone chose it, or it is over
    MEDIUM = 2  # attention soon: the controller keeps regulating, or has ended the occlusion
    HIGH = 3  # someone must come now: the cuff misbehaves or nobody is watching the screen


PRIORITY: dict[AlarmCode, Priority] = {
    AlarmCode.OVERPRESSURE: Priority.HIGH,
    AlarmCode.CEILING: Priority.HIGH,
    AlarmCode.PUMP_NO_RISE: Priority.HIGH,
    AlarmCode.VALVE_STUCK: Priority.HIGH,  # the cuff stays tight until a person releases it
    AlarmCode.SENSOR_RANGE: Priority.HIGH,
    AlarmCode.SENSOR_STUCK: Priority.HIGH,
    AlarmCode.SENSOR_READ: Priority.HIGH,
    AlarmCode.SENSOR_LAG: Priority.HIGH,
    AlarmCode.HEARTBEAT_LOST: Priority.HIGH,  # the screen cannot say it: only the buzzer can
    AlarmCode.PRESSURE_HIGH: Priority.MEDIUM,
    AlarmCode.PRESSURE_LOW: Priority.MEDIUM,
    AlarmCode.LEAK: Priority.MEDIUM,
    AlarmCode.REFILL_SLOW: Priority.MEDIUM,
    AlarmCode.PRESSURE_UNSTEADY: Priority.MEDIUM,
    AlarmCode.INFLATE_TIMEOUT: Priority.MEDIUM,
    AlarmCode.OCCLUSION_TIME: Priority.MEDIUM,
    AlarmCode.PRESSURISED_AT_START: Priority.MEDIUM,
    AlarmCode.OCCLUSION_RECORD: Priority.MEDIUM,
    AlarmCode.STOP_BUTTON: Priority.LOW,  # pressed by the person who would be called
    AlarmCode.STOP_UI: Priority.LOW,
    AlarmCode.LOP_FAILED: Priority.LOW,
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
            "priority": PRIORITY[self.code].name.lower(),
        }


RAISED_KEPT = 1000


class AlarmBoard:
    """Active alarms and their silences. A silence mutes an alarm for 30 s; it never clears it.

    Each alarm has its own silence, given once: asking again while it is muted does not make
    it longer, so repeated silences (a stuck key, a client that re-sends) cannot keep an alarm
    quiet for good; it sounds again when its 30 s are over. A silence names the alarms it
    means (what the screen showed); an alarm raised since sounds.
    """

    def __init__(self) -> None:
        self._active: dict[AlarmCode, Alarm] = {}
        self._muted_until: dict[AlarmCode, float] = {}
        # The latest events, for traces and simulated exercises; the journal and the session's
        # store keep them all. Bounded: a controller runs for months between restarts.
        self.raised: deque[tuple[float, AlarmCode]] = deque(maxlen=RAISED_KEPT)

    def raise_(self, code: AlarmCode, now: float, *, latched: bool) -> bool:
        """Activate `code`; True if it is a new event: not active, or escalating to a fault.

        An alarm that becomes a fault (PRESSURE_HIGH that lasted, a LEAK that grew) is news:
        the cuff is being emptied, so it sounds again even if the alarm had been silenced.
        """
        alarm = self._active.get(code)
        if alarm is not None:
            if alarm.latched or not latched:
                return False
            alarm.latched = True
            self._muted_until.pop(code, None)
            self.raised.append((now, code))
            return True
        self._active[code] = Alarm(code, now, latched)
        self.raised.append((now, code))
        return True

    def clear(self, code: AlarmCode) -> None:
        alarm = self._active.get(code)
        if alarm is not None and not alarm.latched:
            del self._active[code]
            self._muted_until.pop(code, None)  # if it comes back, that is a new event

    def reset_latched(self) -> None:
        self._active = {c: a for c, a in self._active.items() if not a.latched}
        self._muted_until = {c: t for c, t in self._muted_until.items() if c in self._active}

    def silence(self, now: float, codes: frozenset[AlarmCode] | None = None) -> list[AlarmCode]:
        """Mute for 30 s the active alarms among `codes` (all active ones if None) that are not
        muted already; returns the codes this silence muted."""
        muted = []
        for code in self._active:
            if codes is not None and code not in codes:
                continue
            if self._muted_until.get(code, float("-inf")) > now:
                continue  # silenced already: a second silence does not lengthen it
            self._muted_until[code] = now + SILENCE_S
            muted.append(code)
        return muted

    def silenced(self, now: float) -> bool:
        return any(until > now for until in self._muted_until.values())

    def _unmuted(self, now: float) -> list[Alarm]:
        """The alarms that sound: never silenced, raised since, or their 30 s are over."""
        return [
            a for a in self._active.values() if self._muted_until.get(a.code, float("-inf")) <= now
        ]

    def muted(self, now: float) -> bool:
        """Silenced, and nothing raised since: what the screens' own sound follows too."""
        return self.silenced(now) and not self._unmuted(now)

    def audible(self, now: float) -> Priority | None:
        """The highest priority to sound now, or None (low priority is shown, not sounded)."""
        if not self._active:  # every control tick asks: the usual answer costs nothing
            return None
        levels = [PRIORITY[a.code] for a in self._unmuted(now) if PRIORITY[a.code] > Priority.LOW]
        return max(levels, default=None)

    def active(self) -> list[Alarm]:
        return sorted(self._active.values(), key=lambda a: a.since)

    def is_active(self, code: AlarmCode | str) -> bool:
        return code in self._active

    def first_code(self) -> AlarmCode | None:
        """The most recent alarm code, for one-column traces."""
        alarms = self.active()
        return alarms[-1].code if alarms else None
