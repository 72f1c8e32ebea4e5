"""Validation of commands sent to the controller: strict types, ranges, no unknown fields.

Bad input gets a `CommandError` naming the field and changes nothing. Ranges that depend on the
controller's state (e.g. the target against % LOP) are checked again by the controller itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from appliance.controller.alarms import AlarmCode
from appliance.controller.limits import (
    ABSOLUTE_CAP_MMHG,
    HARD_OCCLUSION_S,
    LIMBS,
    MAX_REPERFUSION_S,
)

POSTURES = ("supine", "seated", "standing")
SIDES = ("left", "right")
MAX_MESSAGE_FIELDS = 12


class CommandError(ValueError):
    """A command that is malformed or out of range; the message says which field and why."""


@dataclass(frozen=True)
class Command:
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    therapy: bool = False  # came in on the clinic's socket: pressure on a patient's limb


def _number(d: dict[str, Any], key: str, lo: float, hi: float, *, optional: bool = False) -> Any:
    if key not in d:
        if optional:
            return None
        raise CommandError(f"{key}: required")
    value = d[key]
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CommandError(f"{key}: must be a number, got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:
        raise CommandError(f"{key}: outside {lo:g}..{hi:g}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise CommandError(f"{key}: {value} is outside {lo:g}..{hi:g}")
    return value


def _choice(
    d: dict[str, Any], key: str, choices: tuple[str, ...], default: str | None = None
) -> str:
    if key not in d:
        if default is not None:
            return default
        raise CommandError(f"{key}: required, one of {', '.join(choices)}")
    value = d[key]
    if value not in choices:
        raise CommandError(f"{key}: must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _text(d: dict[str, Any], key: str, max_len: int = 40, default: str = "") -> str:
    value = d.get(key, default)
    if not isinstance(value, str) or len(value) > max_len or not value.isprintable():
        raise CommandError(f"{key}: must be printable text of at most {max_len} characters")
    return value


def _configure(d: dict[str, Any]) -> dict[str, Any]:
    limb = _choice(d, "limb", LIMBS)
    max_pct = _number(d, "max_pct_lop", 10, 100, optional=True) or 80.0
    allow = d.get("allow_above_80", False)
    if not isinstance(allow, bool):
        raise CommandError("allow_above_80: must be true or false")
    if max_pct > 80 and not allow:
        raise CommandError("max_pct_lop: above 80 % needs allow_above_80 set by a clinician")
    occlusion = _number(d, "occlusion_limit_s", 60, HARD_OCCLUSION_S[limb], optional=True)
    return {
        "limb": limb,
        "lop_mmHg": _number(d, "lop_mmHg", 40, ABSOLUTE_CAP_MMHG, optional=True),
        "max_pct_lop": max_pct,
        "allow_above_80": allow,
        "occlusion_limit_s": occlusion,  # None: the controller's configured default
        "reperfusion_s": _number(d, "reperfusion_s", 60, MAX_REPERFUSION_S, optional=True),
    }


def _measure_lop(d: dict[str, Any]) -> dict[str, Any]:
    repeats = _number(d, "repeats", 1, 2, optional=True) or 1.0
    if repeats != int(repeats):
        raise CommandError("repeats: must be 1 or 2")
    return {
        "repeats": int(repeats),
        "rest_s": _number(d, "rest_s", 10, 300, optional=True) or 60.0,
        "limb": _choice(d, "limb", LIMBS),
        "side": _choice(d, "side", SIDES, default="left"),
        "posture": _choice(d, "posture", POSTURES, default="seated"),
        "cuff": _text(d, "cuff", default="standard"),
    }


def _silence(d: dict[str, Any]) -> dict[str, Any]:
    """`codes`: the alarms the screen showed when someone pressed SILENCE; only those are
    muted, not one raised in the moment the command took to arrive. Without it, every alarm
    active when the controller runs the command."""
    if "codes" not in d:
        return {}
    codes = d["codes"]
    known = {c.value for c in AlarmCode}
    if (
        not isinstance(codes, list)
        or len(codes) > len(known)
        or not all(isinstance(c, str) and c in known for c in codes)
    ):
        raise CommandError("codes: must be a list of alarm codes (as status reports them)")
    return {"codes": sorted(set(codes))}


_FIELDS: dict[str, set[str]] = {
    "heartbeat": set(),
    "status": set(),
    "deflate": set(),
    "stop": set(),
    "silence": {"codes"},
    "reset": set(),
    "inflate": {"target_mmHg"},
    "set_target": {"target_mmHg"},
    "configure": {
        "limb",
        "lop_mmHg",
        "max_pct_lop",
        "allow_above_80",
        "occlusion_limit_s",
        "reperfusion_s",
    },
    "measure_lop": {"limb", "side", "posture", "cuff", "repeats", "rest_s"},
    "selftest": {"leak_test_mmHg"},
    "set_calibration": {"zero_mmHg", "span"},
    "sound_test": set(),
}
COMMANDS = tuple(sorted(_FIELDS))


def parse_command(message: Any) -> Command:
    """Turn a decoded JSON message into a Command, or raise CommandError."""
    if not isinstance(message, dict):
        raise CommandError("a command must be a JSON object")
    if len(message) > MAX_MESSAGE_FIELDS:
        raise CommandError("too many fields")
    name = message.get("cmd")
    if not isinstance(name, str) or name not in _FIELDS:
        raise CommandError(f"cmd: must be one of {', '.join(COMMANDS)}")
    args = {k: v for k, v in message.items() if k not in ("cmd", "id")}
    unknown = set(args) - _FIELDS[name]
    if unknown:
        raise CommandError(f"{name}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    if name in ("inflate", "set_target"):
        return Command(name, {"target_mmHg": _number(args, "target_mmHg", 5, ABSOLUTE_CAP_MMHG)})
    if name == "configure":
        return Command(name, _configure(args))
    if name == "measure_lop":
        return Command(name, _measure_lop(args))
    if name == "selftest":
        return Command(
            name, {"leak_test_mmHg": _number(args, "leak_test_mmHg", 50, 250, optional=True)}
        )
    if name == "silence":
        return Command(name, _silence(args))
    if name == "set_calibration":
        return Command(
            name,
            {
                "zero_mmHg": _number(args, "zero_mmHg", -30, 30),
                "span": _number(args, "span", 0.8, 1.2),
            },
        )
    return Command(name)
