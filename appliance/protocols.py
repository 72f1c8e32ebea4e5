"""Treatment protocols as data: versioned TOML files, validated strictly, packaged or custom.

A protocol file is strict like a Klipper config: every key is typed and ranged, an unknown key is
an error, and the error names the field (`exercises[0].sets[2].reps: ...`). The limits here are
the ones the session runner plans with; the controller enforces its own copy independently.
"""

from __future__ import annotations

import importlib.resources
import logging
import math
import os
import re
import tempfile
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from appliance.store import Store, audit
from appliance.store.records import LIMBS

log = logging.getLogger(__name__)

SCHEMA = 1
KINDS = ("resistance", "aerobic", "passive")

# % LOP (Patterson 2019: 40-80 % LOP; arm 40-50 %, leg 60-80 % typical).
TYPICAL_PCT_LOP = {"arm": (40.0, 50.0), "leg": (60.0, 80.0)}
DEFAULT_PCT_LOP = {"arm": 50.0, "leg": 80.0}
PCT_LOP_NEEDS_ALLOW = 80.0  # above this only with allow_above_80 and a written reason
PCT_LOP_CEILING = 100.0  # at 100 % the artery is shut: never more
# The evidence starts at 40 %; under 30 % a value is almost surely a fraction typed as percent.
PCT_LOP_FLOOR = 30.0
MIN_ABOVE_80_REASON_CHARS = 20

# Occlusion time (Patterson 2019; AIS/VALD guideline): 5-10 min per exercise, under 15 min arm /
# 20 min leg continuous, then at least 3 min of reperfusion.
DEFAULT_MAX_OCCLUSION_S = 600.0
MAX_CONTINUOUS_OCCLUSION_S = {"arm": 900.0, "leg": 1200.0}
MIN_OCCLUSION_LIMIT_S = 60.0
MIN_REPERFUSION_S = 180.0
# Appliance policy, not literature: a release between exercises shorter than a minute hardly
# lets the limb refill, so it is refused.
MIN_RELEASE_S = 60.0
MAX_PAUSE_S = 1800.0

# Sets and cadence (Patterson 2019; metronome at 1-2 s per rep, slower tempos allowed in rehab).
DEFAULT_CADENCE_S = 2.0
CADENCE_RANGE_S = (1.0, 4.0)
DEFAULT_REST_S = 30.0
INFLATED_REST_RANGE_S = (30.0, 60.0)
REPS_RANGE = (1, 100)
SET_DURATION_RANGE_S = (10.0, 1200.0)
AEROBIC_DURATION_RANGE_S = (300.0, 1200.0)  # walking or cycling 5-20 min
MAX_SETS = 10
MAX_EXERCISES = 10

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_REQUIRED: Any = object()


class ProtocolError(ValueError):
    """A protocol is invalid; `field` says where (`exercises[1].sets[0].reps`), `problem` what."""

    def __init__(self, field: str, problem: str, source: str | None = None) -> None:
        self.field = field
        self.problem = problem
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field}: {problem}")

    def located(self, source: str) -> ProtocolError:
        return ProtocolError(self.field, self.problem, source)


@dataclass(frozen=True)
class SetSpec:
    """One set: counted in `reps` (at the exercise's cadence) or timed in `duration_s`."""

    reps: int | None = None
    duration_s: float | None = None
    rest_after_s: float = 0.0

    def active_s(self, cadence_s: float | None) -> float:
        """How long the set itself is planned to take."""
        if self.duration_s is not None:
            return self.duration_s
        return (self.reps or 0) * (cadence_s or DEFAULT_CADENCE_S)


@dataclass(frozen=True)
class Exercise:
    name: str
    title: str
    sets: tuple[SetSpec, ...]
    cadence_s: float | None = DEFAULT_CADENCE_S  # seconds per rep; None for timed sets
    inflate_during_rest: bool = True
    reperfusion_after_s: float = 0.0  # cuff deflated before the next exercise
    max_occlusion_s: float = DEFAULT_MAX_OCCLUSION_S  # longest continuous inflation allowed

    def occlusion_bouts_s(self) -> list[float]:
        """Planned continuous inflations: the whole exercise, or one per set if rests deflate."""
        if not self.inflate_during_rest:
            return [s.active_s(self.cadence_s) for s in self.sets]
        active = sum(s.active_s(self.cadence_s) for s in self.sets)
        return [active + sum(s.rest_after_s for s in self.sets[:-1])]

    @property
    def planned_s(self) -> float:
        """Sets and the rests between them, without the reperfusion after the exercise."""
        return sum(s.active_s(self.cadence_s) for s in self.sets) + sum(
            s.rest_after_s for s in self.sets[:-1]
        )


@dataclass(frozen=True)
class PctLop:
    """Cuff pressure as % of LOP for each limb the protocol is for (None where it is not)."""

    arm: float | None = None
    leg: float | None = None

    def for_limb(self, limb: str) -> float:
        value = getattr(self, limb, None) if limb in LIMBS else None
        if value is None:
            raise ProtocolError("pct_lop", f"no % LOP for the {limb}: the protocol is not for it")
        return value


@dataclass(frozen=True)
class Protocol:
    name: str
    version: int
    title: str
    kind: str
    exercises: tuple[Exercise, ...]
    pct_lop: PctLop
    limbs: tuple[str, ...] = LIMBS
    allow_above_80: bool = False
    above_80_reason: str = ""
    description: str = ""
    source: str = ""
    origin: str = field(default="packaged", compare=False)  # "packaged" or "custom"

    @property
    def planned_s(self) -> float:
        """Planned session length: exercises and the reperfusions between them."""
        return sum(e.planned_s + e.reperfusion_after_s for e in self.exercises)

    def to_dict(self) -> dict[str, Any]:
        """The file's shape with every default spelled out; `validate_protocol_dict` reads it."""
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "name": self.name,
            "version": self.version,
            "title": self.title,
            "kind": self.kind,
        }
        if self.description:
            out["description"] = self.description
        if self.source:
            out["source"] = self.source
        out["limbs"] = list(self.limbs)
        out["allow_above_80"] = self.allow_above_80
        if self.above_80_reason:
            out["above_80_reason"] = self.above_80_reason
        out["pct_lop"] = {limb: self.pct_lop.for_limb(limb) for limb in self.limbs}
        out["exercises"] = [_exercise_dict(e) for e in self.exercises]
        return out


def _exercise_dict(exercise: Exercise) -> dict[str, Any]:
    out: dict[str, Any] = {"name": exercise.name, "title": exercise.title}
    if exercise.cadence_s is not None:
        out["cadence_s"] = exercise.cadence_s
    out["inflate_during_rest"] = exercise.inflate_during_rest
    out["max_occlusion_s"] = exercise.max_occlusion_s
    out["reperfusion_after_s"] = exercise.reperfusion_after_s
    sets = []
    for s in exercise.sets:
        item: dict[str, Any] = {"reps": s.reps} if s.reps is not None else {}
        if s.duration_s is not None:
            item["duration_s"] = s.duration_s
        item["rest_after_s"] = s.rest_after_s
        sets.append(item)
    out["sets"] = sets
    return out


# ---------------------------------------------------------------- validation


class _Fields:
    """Typed getters over one table of the file; unknown keys are refused up front."""

    def __init__(self, data: object, path: str, known: Sequence[str]) -> None:
        if not isinstance(data, Mapping):
            raise ProtocolError(path or "(file)", f"must be a table, got {_kind(data)}")
        self.data = data
        self.path = path
        for key in data:
            if key not in known:
                raise ProtocolError(self.where(key), f"unknown key (known: {', '.join(known)})")

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            raise ProtocolError(self.where(key), "required")
        return default

    def text(
        self, key: str, default: Any = _REQUIRED, *, max_len: int = 80, multiline: bool = False
    ) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str):
            raise ProtocolError(self.where(key), f"must be a string, got {_kind(value)}")
        if len(value) > max_len:
            raise ProtocolError(self.where(key), f"at most {max_len} characters (got {len(value)})")
        if _CONTROL.search(value) or (not multiline and "\n" in value):
            raise ProtocolError(self.where(key), "must not contain control characters")
        return value

    def integer(self, key: str, default: Any = _REQUIRED, *, low: int, high: int) -> int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtocolError(self.where(key), f"must be a whole number, got {_kind(value)}")
        if not low <= value <= high:
            raise ProtocolError(self.where(key), f"must be {low}-{high}, got {value}")
        return value

    def number(
        self, key: str, default: Any = _REQUIRED, *, low: float, high: float, unit: str = ""
    ) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ProtocolError(self.where(key), f"must be a number, got {_kind(value)}")
        if not math.isfinite(value):
            raise ProtocolError(self.where(key), f"must be a finite number, got {value}")
        if not low <= value <= high:
            raise ProtocolError(
                self.where(key), f"must be {low:g}-{high:g}{unit}, got {value:g}{unit}"
            )
        return float(value)

    def flag(self, key: str, default: Any = _REQUIRED) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise ProtocolError(self.where(key), f"must be true or false, got {_kind(value)}")
        return value

    def items(self, key: str, default: Any = _REQUIRED, *, low: int, high: int) -> list[Any]:
        value = self.raw(key, default)
        if not isinstance(value, list):
            raise ProtocolError(self.where(key), f"must be a list, got {_kind(value)}")
        if not low <= len(value) <= high:
            raise ProtocolError(
                self.where(key), f"must have {low}-{high} entries, got {len(value)}"
            )
        return value


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a decimal number", str: "a string"}
    for typ, name in names.items():
        if type(value) is typ:
            return f"{name} ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__


_TOP_KEYS = (
    "schema",
    "name",
    "version",
    "title",
    "kind",
    "description",
    "source",
    "limbs",
    "allow_above_80",
    "above_80_reason",
    "pct_lop",
    "exercises",
)
_EXERCISE_KEYS = (
    "name",
    "title",
    "sets",
    "cadence_s",
    "inflate_during_rest",
    "max_occlusion_s",
    "reperfusion_after_s",
)
_SET_KEYS = ("reps", "duration_s", "rest_after_s")


def validate_protocol_dict(
    data: Mapping[str, Any], *, source: str | None = None, origin: str = "packaged"
) -> Protocol:
    """Check a parsed protocol file and build the Protocol, or raise `ProtocolError`."""
    try:
        return _validate(data, origin)
    except ProtocolError as exc:
        raise exc.located(source) if source else exc from None


def _validate(data: Mapping[str, Any], origin: str) -> Protocol:
    top = _Fields(data, "", _TOP_KEYS)
    schema = top.raw("schema", _REQUIRED)
    if schema != SCHEMA or isinstance(schema, bool):
        raise ProtocolError("schema", f"unsupported schema {schema!r} (this software reads 1)")
    name = top.text("name", max_len=64)
    if not _NAME.match(name):
        raise ProtocolError(
            "name", f"{name!r} must be lower-case letters, digits and '-' (like a file name)"
        )
    version = top.integer("version", low=1, high=1_000_000)
    title = top.text("title")
    if not title.strip():
        raise ProtocolError("title", "must not be empty")
    kind = top.text("kind")
    if kind not in KINDS:
        raise ProtocolError("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    description = top.text("description", "", max_len=2000, multiline=True)
    source = top.text("source", "", max_len=200)
    limbs = _limbs(top)
    allow_above_80 = top.flag("allow_above_80", False)
    above_80_reason = top.text("above_80_reason", "", max_len=500).strip()
    if allow_above_80 and len(above_80_reason) < MIN_ABOVE_80_REASON_CHARS:
        raise ProtocolError(
            "above_80_reason",
            f"allow_above_80 needs a clinician's reason of at least {MIN_ABOVE_80_REASON_CHARS}"
            " characters",
        )
    if above_80_reason and not allow_above_80:
        raise ProtocolError("above_80_reason", "only with allow_above_80 = true")
    pct_lop = _pct_lop(top, limbs, allow_above_80)
    raw_exercises = top.items("exercises", low=1, high=MAX_EXERCISES)
    exercises: list[Exercise] = []
    for i, raw in enumerate(raw_exercises):
        last = i == len(raw_exercises) - 1
        exercises.append(_exercise(raw, f"exercises[{i}]", kind, limbs, last))
    seen: set[str] = set()
    for i, exercise in enumerate(exercises):
        if exercise.name in seen:
            raise ProtocolError(f"exercises[{i}].name", f"{exercise.name!r} is used twice")
        seen.add(exercise.name)
    return Protocol(
        name=name,
        version=version,
        title=title,
        kind=kind,
        exercises=tuple(exercises),
        pct_lop=pct_lop,
        limbs=limbs,
        allow_above_80=allow_above_80,
        above_80_reason=above_80_reason,
        description=description,
        source=source,
        origin=origin,
    )


def _limbs(top: _Fields) -> tuple[str, ...]:
    raw = top.items("limbs", list(LIMBS), low=1, high=len(LIMBS))
    for i, limb in enumerate(raw):
        if limb not in LIMBS:
            raise ProtocolError(f"limbs[{i}]", f"must be one of {', '.join(LIMBS)}, got {limb!r}")
    if len(set(raw)) != len(raw):
        raise ProtocolError("limbs", "lists a limb twice")
    return tuple(limb for limb in LIMBS if limb in raw)


def _pct_lop(top: _Fields, limbs: tuple[str, ...], allow_above_80: bool) -> PctLop:
    table = _Fields(top.raw("pct_lop", {}), "pct_lop", LIMBS)
    values: dict[str, float] = {}
    for limb in LIMBS:
        if limb not in limbs:
            if table.has(limb):
                raise ProtocolError(
                    f"pct_lop.{limb}",
                    f"the protocol is not for the {limb} (limbs: {', '.join(limbs)})",
                )
            continue
        pct = table.number(limb, DEFAULT_PCT_LOP[limb], low=-math.inf, high=math.inf)
        values[limb] = check_pct_lop(
            limb, pct, allow_above_80=allow_above_80, field=f"pct_lop.{limb}"
        )
    return PctLop(**values)


def check_pct_lop(
    limb: str,
    pct: float,
    *,
    allow_above_80: bool = False,
    reason: str | None = None,
    field: str = "pct_lop",
) -> float:
    """Check a % LOP for a limb against the hard limits; the session runner and UI use it too.

    When `reason` is given (a setting made at the table rather than in a file), going above 80 %
    needs that reason to be written out as well.
    """
    if limb not in LIMBS:
        raise ProtocolError("limb", f"must be one of {', '.join(LIMBS)}, got {limb!r}")
    if isinstance(pct, bool) or not isinstance(pct, int | float) or not math.isfinite(pct):
        raise ProtocolError(field, f"must be a number, got {pct!r}")
    if pct > PCT_LOP_CEILING:
        raise ProtocolError(field, f"{pct:g} % LOP: never above {PCT_LOP_CEILING:g} %")
    if pct < PCT_LOP_FLOOR:
        raise ProtocolError(
            field,
            f"{pct:g} % LOP is below {PCT_LOP_FLOOR:g} %; give a percentage (80), not a"
            " fraction (0.8)",
        )
    if pct > PCT_LOP_NEEDS_ALLOW:
        if not allow_above_80:
            raise ProtocolError(
                field,
                f"{pct:g} % LOP is above {PCT_LOP_NEEDS_ALLOW:g} %: only with"
                " allow_above_80 = true and a clinician's above_80_reason",
            )
        if reason is not None and len(reason.strip()) < MIN_ABOVE_80_REASON_CHARS:
            raise ProtocolError(
                "above_80_reason",
                f"above {PCT_LOP_NEEDS_ALLOW:g} % LOP needs a reason of at least"
                f" {MIN_ABOVE_80_REASON_CHARS} characters",
            )
    return float(pct)


def _exercise(raw: object, path: str, kind: str, limbs: tuple[str, ...], last: bool) -> Exercise:
    ex = _Fields(raw, path, _EXERCISE_KEYS)
    name = ex.text("name", max_len=64)
    if not _NAME.match(name):
        raise ProtocolError(ex.where("name"), f"{name!r} must be lower-case letters, digits, '-'")
    title = ex.text("title", name)
    raw_sets = ex.items("sets", low=1, high=MAX_SETS)
    inflate_during_rest = ex.flag("inflate_during_rest", kind != "passive")
    sets = [
        _set(item, f"{path}.sets[{j}]", j == len(raw_sets) - 1) for j, item in enumerate(raw_sets)
    ]

    counted = any(s.reps is not None for s in sets)
    if counted:
        low, high = CADENCE_RANGE_S
        cadence_s: float | None = ex.number(
            "cadence_s", DEFAULT_CADENCE_S, low=low, high=high, unit=" s"
        )
    elif ex.has("cadence_s"):
        raise ProtocolError(ex.where("cadence_s"), "only for sets counted in reps")
    else:
        cadence_s = None

    limit = min(MAX_CONTINUOUS_OCCLUSION_S[limb] for limb in limbs)
    max_occlusion_s = ex.number(
        "max_occlusion_s", DEFAULT_MAX_OCCLUSION_S, low=-math.inf, high=math.inf
    )
    if max_occlusion_s < MIN_OCCLUSION_LIMIT_S:
        raise ProtocolError(
            ex.where("max_occlusion_s"), f"must be at least {MIN_OCCLUSION_LIMIT_S:g} s"
        )
    tightest = min(limbs, key=lambda limb: MAX_CONTINUOUS_OCCLUSION_S[limb])
    if max_occlusion_s > limit:
        raise ProtocolError(
            ex.where("max_occlusion_s"),
            f"{max_occlusion_s:g} s is above the {limit:g} s continuous occlusion limit for the"
            f" {tightest}",
        )

    if last:
        reperfusion_after_s = ex.number("reperfusion_after_s", 0.0, low=-math.inf, high=math.inf)
        if reperfusion_after_s != 0:
            raise ProtocolError(
                ex.where("reperfusion_after_s"),
                "the last exercise has no reperfusion: the session ends with the cuff deflated",
            )
    else:
        reperfusion_after_s = ex.number(
            "reperfusion_after_s", MIN_REPERFUSION_S, low=0, high=MAX_PAUSE_S, unit=" s"
        )
        floor = MIN_REPERFUSION_S if max_occlusion_s >= limit else MIN_RELEASE_S
        if reperfusion_after_s < floor:
            why = (
                f"occlusion may reach the {limit:g} s limit, so reperfusion must be at least"
                if floor == MIN_REPERFUSION_S
                else "the cuff must be released between exercises for at least"
            )
            raise ProtocolError(
                ex.where("reperfusion_after_s"),
                f"{reperfusion_after_s:g} s: {why} {floor:g} s",
            )

    _check_kind(ex, kind, sets, inflate_during_rest)
    exercise = Exercise(
        name=name,
        title=title,
        sets=tuple(sets),
        cadence_s=cadence_s,
        inflate_during_rest=inflate_during_rest,
        reperfusion_after_s=reperfusion_after_s,
        max_occlusion_s=max_occlusion_s,
    )
    longest = max(exercise.occlusion_bouts_s())
    at_cadence = f" (reps at {cadence_s:g} s)" if cadence_s is not None else ""
    if longest > max_occlusion_s:
        raise ProtocolError(
            path,
            f"planned continuous occlusion {longest:g} s{at_cadence} exceeds max_occlusion_s"
            f" {max_occlusion_s:g} s",
        )
    return exercise


def _set(raw: object, path: str, last: bool) -> SetSpec:
    item = _Fields(raw, path, _SET_KEYS)
    if item.has("reps") == item.has("duration_s"):
        raise ProtocolError(path, "give exactly one of reps or duration_s")
    reps = item.integer("reps", low=REPS_RANGE[0], high=REPS_RANGE[1]) if item.has("reps") else None
    duration_s = None
    if item.has("duration_s"):
        low, high = SET_DURATION_RANGE_S
        duration_s = item.number("duration_s", low=low, high=high, unit=" s")
    if last:
        rest = item.number("rest_after_s", 0.0, low=-math.inf, high=math.inf)
        if rest != 0:
            raise ProtocolError(
                item.where("rest_after_s"),
                "the last set has no rest: the exercise's reperfusion_after_s follows it",
            )
    else:
        rest = item.number("rest_after_s", DEFAULT_REST_S, low=0, high=MAX_PAUSE_S, unit=" s")
    return SetSpec(reps=reps, duration_s=duration_s, rest_after_s=rest)


def _check_kind(ex: _Fields, kind: str, sets: list[SetSpec], inflate_during_rest: bool) -> None:
    if kind == "resistance":
        for j, s in enumerate(sets):
            if s.reps is None:
                raise ProtocolError(f"{ex.path}.sets[{j}]", "a resistance set is counted in reps")
        if inflate_during_rest:
            low, high = INFLATED_REST_RANGE_S
            for j, s in enumerate(sets[:-1]):
                if not low <= s.rest_after_s <= high:
                    raise ProtocolError(
                        f"{ex.path}.sets[{j}].rest_after_s",
                        f"{s.rest_after_s:g} s with the cuff inflated is outside {low:g}-{high:g} s",
                    )
    elif kind == "aerobic":
        low, high = AEROBIC_DURATION_RANGE_S
        if len(sets) != 1 or sets[0].duration_s is None:
            raise ProtocolError(
                ex.where("sets"), "an aerobic exercise is one continuous bout: one set, duration_s"
            )
        if not low <= sets[0].duration_s <= high:
            raise ProtocolError(
                f"{ex.path}.sets[0].duration_s",
                f"aerobic BFR lasts {low / 60:g}-{high / 60:g} min, got {sets[0].duration_s:g} s",
            )
    elif kind == "passive":
        if inflate_during_rest:
            raise ProtocolError(
                ex.where("inflate_during_rest"), "passive cycles deflate between bouts"
            )
        for j, s in enumerate(sets):
            if s.duration_s is None:
                raise ProtocolError(f"{ex.path}.sets[{j}]", "a passive bout is timed: duration_s")
        for j, s in enumerate(sets[:-1]):
            if s.rest_after_s < MIN_REPERFUSION_S:
                raise ProtocolError(
                    f"{ex.path}.sets[{j}].rest_after_s",
                    f"{s.rest_after_s:g} s: reperfusion between bouts is at least"
                    f" {MIN_REPERFUSION_S:g} s",
                )


def protocol_warnings(protocol: Protocol) -> list[str]:
    """Valid but unusual settings a clinician should look at twice."""
    warnings = []
    for limb in protocol.limbs:
        pct = protocol.pct_lop.for_limb(limb)
        low, high = TYPICAL_PCT_LOP[limb]
        if not low <= pct <= high:
            warnings.append(f"{limb}: {pct:g} % LOP is outside the typical {low:g}-{high:g} %")
    return warnings


# ---------------------------------------------------------------- files


def loads_protocol(text: str, *, source: str, origin: str = "packaged") -> Protocol:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError("(file)", f"not valid TOML: {exc}", source) from None
    return validate_protocol_dict(data, source=source, origin=origin)


def load_protocol(path: Path | str, *, origin: str = "packaged") -> Protocol:
    """Read and validate one protocol file; its `name` must match the file name."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtocolError("(file)", f"cannot read: {exc}", str(path)) from None
    protocol = loads_protocol(text, source=str(path), origin=origin)
    _check_file_name(protocol, path.name, str(path))
    return protocol


def _check_file_name(protocol: Protocol, file_name: str, source: str) -> None:
    if file_name != f"{protocol.name}.toml":
        raise ProtocolError(
            "name", f"{protocol.name!r} does not match the file name {file_name!r}", source
        )


def packaged_protocols() -> dict[str, Protocol]:
    """The protocols shipped with the software. An invalid one is a release bug: it raises."""
    folder = importlib.resources.files("appliance").joinpath("protocols")
    found: dict[str, Protocol] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        source = f"appliance/protocols/{entry.name}"
        protocol = loads_protocol(entry.read_text(encoding="utf-8"), source=source)
        _check_file_name(protocol, entry.name, source)
        found[protocol.name] = protocol
    return found


def custom_dir(data_dir: Path | str) -> Path:
    return Path(data_dir) / "protocols"


def load_custom_protocols(
    data_dir: Path | str, *, packaged: Iterable[str] | None = None
) -> tuple[dict[str, Protocol], list[ProtocolError]]:
    """Clinicians' protocols under `data_dir/protocols`, and the files that failed to load.

    One bad file must not hide the others, so problems are returned rather than raised.
    """
    reserved = set(packaged_protocols() if packaged is None else packaged)
    folder = custom_dir(data_dir)
    found: dict[str, Protocol] = {}
    problems: list[ProtocolError] = []
    if not folder.is_dir():
        return found, problems
    for path in sorted(folder.glob("*.toml")):
        try:
            protocol = load_protocol(path, origin="custom")
        except ProtocolError as exc:
            problems.append(exc)
            continue
        if protocol.name in reserved:
            problems.append(
                ProtocolError("name", f"{protocol.name!r} is a packaged protocol", str(path))
            )
            continue
        found[protocol.name] = protocol
    return found, problems


def installed_protocols(data_dir: Path | str | None = None) -> dict[str, Protocol]:
    """Packaged protocols plus, with a data directory, the valid custom ones (by name)."""
    protocols = packaged_protocols()
    if data_dir is not None:
        custom, problems = load_custom_protocols(data_dir, packaged=protocols)
        for problem in problems:
            log.warning("custom protocol skipped: %s", problem)
        protocols.update(custom)
    return protocols


def save_custom_protocol(
    store: Store, protocol: Protocol, *, by: str, reason: str = ""
) -> Protocol:
    """Write a clinician's protocol to the data directory; logged in the audit trail.

    Saving again under the same name needs a higher version. Sessions keep a snapshot of the
    protocol they ran, so older versions stay readable in the records.
    """
    checked = validate_protocol_dict(protocol.to_dict(), origin="custom")
    if checked.name in packaged_protocols():
        raise ProtocolError("name", f"{checked.name!r} is a packaged protocol: choose a new name")
    if not by.strip():
        raise ProtocolError("by", "the clinician saving the protocol must be named")
    folder = custom_dir(store.data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{checked.name}.toml"
    previous = None
    if path.exists():
        previous = load_protocol(path, origin="custom")
        if checked.version <= previous.version:
            raise ProtocolError(
                "version",
                f"must be above the saved version {previous.version}, got {checked.version}",
            )
    text = protocol_to_toml(checked)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{checked.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        # The file and its audit entry land together: the rename happens inside the transaction.
        with store.transaction():
            audit.record_audit(
                store,
                actor=by,
                action=audit.PROTOCOL_SAVE,
                subject=f"protocol:{checked.name}",
                reason=reason.strip(),
                detail={
                    "version": checked.version,
                    "previous_version": previous.version if previous else None,
                    "protocol": checked.to_dict(),
                },
            )
            os.replace(tmp, path)
        _fsync_dir(folder)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return replace(checked, origin="custom")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def protocol_to_toml(protocol: Protocol) -> str:
    """The protocol as a file `load_protocol` reads back to an equal Protocol."""
    data = protocol.to_dict()
    lines = []
    for key, value in data.items():
        if key not in ("pct_lop", "exercises"):
            lines.append(f"{key} = {_toml_value(value)}")
    lines += ["", "[pct_lop]"]
    lines += [f"{limb} = {_toml_value(pct)}" for limb, pct in data["pct_lop"].items()]
    for exercise in data["exercises"]:
        lines += ["", "[[exercises]]"]
        for key, value in exercise.items():
            if key != "sets":
                lines.append(f"{key} = {_toml_value(value)}")
        lines.append("sets = [")
        for item in exercise["sets"]:
            pairs = ", ".join(f"{k} = {_toml_value(v)}" for k, v in item.items())
            lines.append(f"    {{ {pairs} }},")
        lines.append("]")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        # Validation already refused control characters other than newlines, so escaping the
        # quote, the backslash and the newline is all a TOML basic string needs.
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")
