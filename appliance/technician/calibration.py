"""The transducer's calibration record: least-squares fit, storage in the data dir, validity.

The record lives in `calibration.toml` in the data directory (the root file system is
read-only, so `[calibration]` in /etc/bfr/bfr.toml is only the factory default). The controller
applies it at start (`load_calibration`), `bfr calibrate` applies a new one live, and the session
start refuses to inflate when it is missing or older than VALID_DAYS
(`require_valid_calibration`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from appliance import __version__
from appliance.technician.atomic_file import write_atomically
from appliance.technician.errors import DeviceNotReady, TechnicianError
from hardware.transducer import Calibration

CALIBRATION_FILE = "calibration.toml"
FORMAT = 1
# Recalibrate twice a year: the MPX5050's offset drifts with age and temperature cycling, and
# clinical tourniquet makers ask for a yearly check at least; half a year leaves margin.
VALID_DAYS = 180
# Cuff pressure accuracy of automated cuff devices (ISO 81060-2 / IEC 80601-2-30): +-3 mmHg.
ACCURACY_MMHG = 3.0
# Readings outside this cannot be a cuff on the appliance (0-300 mmHg, a gauge slightly below 0).
GAUGE_RANGE_MMHG = (-5.0, 300.0)
# A record dated further ahead than this means the clock is wrong, not a fresh calibration.
CLOCK_SLACK_S = 86400.0


class CalibrationUnreadable(TechnicianError):
    """The record exists but this process may not read it (permissions, I/O error)."""


@dataclass(frozen=True)
class CalibrationPoint:
    """One pressure held steady: what the transducer said (uncalibrated) and what the gauge said."""

    nominal_mmHg: float
    reference_mmHg: float


@dataclass(frozen=True)
class CalibrationRecord:
    calibration: Calibration
    calibrated_at: dt.datetime
    gauge_id: str
    technician: str
    points: tuple[CalibrationPoint, ...]
    software_version: str = __version__

    @property
    def residuals(self) -> list[float]:
        """Gauge minus calibrated reading at each point (0 for two points: the line passes)."""
        return [p.reference_mmHg - self.calibration.apply(p.nominal_mmHg) for p in self.points]

    def age_days(self, now: float) -> float:
        return (now - self.calibrated_at.timestamp()) / 86400.0

    @property
    def expires_at(self) -> dt.datetime:
        return self.calibrated_at + dt.timedelta(days=VALID_DAYS)

    def to_dict(self) -> dict[str, object]:
        return {
            "zero_mmHg": self.calibration.zero_mmHg,
            "span": self.calibration.span,
            "calibrated_at": _iso(self.calibrated_at),
            "expires_at": _iso(self.expires_at),
            "gauge_id": self.gauge_id,
            "technician": self.technician,
            "software_version": self.software_version,
            "points": [
                {"nominal_mmHg": p.nominal_mmHg, "reference_mmHg": p.reference_mmHg}
                for p in self.points
            ],
            "residuals_mmHg": [round(r, 2) for r in self.residuals],
        }


def check_reading(value: float, what: str = "gauge reading") -> float:
    low, high = GAUGE_RANGE_MMHG
    if not math.isfinite(value) or not low <= value <= high:
        raise TechnicianError(
            f"{what} {value:g} mmHg is outside {low:g}..{high:g} mmHg",
            "type the gauge value in mmHg (convert kPa: 1 kPa = 7.50 mmHg)",
        )
    return value


def fit_calibration(points: Sequence[CalibrationPoint]) -> Calibration:
    """Least-squares zero and span; refuses fits a real transducer and gauge cannot give."""
    for p in points:
        check_reading(p.reference_mmHg)
    try:
        calibration = Calibration.from_points([(p.nominal_mmHg, p.reference_mmHg) for p in points])
    except ValueError as exc:
        raise TechnicianError(
            f"calibration rejected: {exc}",
            "check the gauge is connected to the cuff line and re-read it; use points at least "
            "100 mmHg apart (e.g. --points 0,100,200)",
        ) from exc
    worst = max(
        (abs(p.reference_mmHg - calibration.apply(p.nominal_mmHg)) for p in points), default=0.0
    )
    if worst > ACCURACY_MMHG:
        raise TechnicianError(
            f"calibration rejected: the points do not lie on a line (worst residual "
            f"{worst:.1f} mmHg, limit {ACCURACY_MMHG:g})",
            "a gauge value was misread or the pressure moved while reading; calibrate again",
        )
    return calibration


def new_record(
    points: Sequence[CalibrationPoint], *, gauge_id: str, technician: str, now: float
) -> CalibrationRecord:
    if not gauge_id.strip():
        raise TechnicianError("the reference gauge ID is missing", "pass --gauge-id ID")
    return CalibrationRecord(
        calibration=fit_calibration(points),
        calibrated_at=dt.datetime.fromtimestamp(round(now), dt.UTC),
        gauge_id=gauge_id.strip(),
        technician=technician,
        points=tuple(points),
    )


def write_record(data_dir: Path, record: CalibrationRecord) -> Path:
    """Write `calibration.toml` atomically; the file is read back before it replaces the old one."""
    text = _to_toml(record)
    if _from_toml(tomllib.loads(text)) != record:
        raise AssertionError("calibration record does not survive its own round trip")
    path = data_dir / CALIBRATION_FILE
    try:
        write_atomically(path, text)
    except OSError as exc:
        raise TechnicianError(
            f"cannot write {path}: {exc}", "run with sudo and check the data partition"
        ) from exc
    return path


def read_record(data_dir: Path) -> CalibrationRecord | None:
    """The stored record, None when there is none; TechnicianError when it cannot be trusted."""
    path = data_dir / CALIBRATION_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CalibrationUnreadable(f"cannot read {path}: {exc}", "run with sudo") from exc
    try:
        return _from_toml(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise TechnicianError(
            f"{path} is damaged: {exc}", "calibrate again (`bfr calibrate`)"
        ) from exc


def load_calibration(data_dir: Path) -> Calibration | None:
    """For the controller at start: the stored zero and span, or None (missing or damaged).

    A damaged record is not fatal here: the controller must still run to deflate a cuff, and the
    session start refuses to inflate through `require_valid_calibration`.
    """
    try:
        record = read_record(data_dir)
    except TechnicianError:
        return None
    return None if record is None else record.calibration


@dataclass(frozen=True)
class CalibrationState:
    """What the session start and `bfr status` need to know."""

    state: str  # valid | missing | expired | damaged | unreadable | clock
    message: str
    record: CalibrationRecord | None = None
    age_days: float | None = None

    @property
    def valid(self) -> bool:
        return self.state == "valid"

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"state": self.state, "message": self.message}
        if self.age_days is not None:
            out["age_days"] = round(self.age_days, 1)
        if self.record is not None:
            out.update(self.record.to_dict())
        return out


def calibration_state(data_dir: Path, now: float) -> CalibrationState:
    try:
        record = read_record(data_dir)
    except CalibrationUnreadable as exc:
        return CalibrationState("unreadable", str(exc))
    except TechnicianError as exc:
        return CalibrationState("damaged", str(exc))
    if record is None:
        return CalibrationState("missing", "the transducer has never been calibrated")
    age = record.age_days(now)
    if age * 86400.0 < -CLOCK_SLACK_S:
        return CalibrationState(
            "clock",
            f"calibration dated {_iso(record.calibrated_at)} is in the future: the clock is "
            "wrong (check `timedatectl`)",
            record,
            age,
        )
    if age > VALID_DAYS:
        return CalibrationState(
            "expired",
            f"calibration of {_iso(record.calibrated_at)} expired {age - VALID_DAYS:.0f} days ago",
            record,
            age,
        )
    return CalibrationState(
        "valid",
        f"calibrated {age:.0f} days ago with gauge {record.gauge_id}; "
        f"{VALID_DAYS - age:.0f} days left",
        record,
        age,
    )


def require_valid_calibration(data_dir: Path | str, now: float) -> CalibrationRecord:
    """For the session start: the record, or DeviceNotReady when missing, expired or damaged.

    `now` is wall-clock seconds since the epoch (`time.time()`).
    """
    state = calibration_state(Path(data_dir), now)
    if not state.valid or state.record is None:
        raise DeviceNotReady(
            state.message,
            "a technician must calibrate the pressure sensor (`bfr calibrate`)",
        )
    return state.record


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _to_toml(record: CalibrationRecord) -> str:
    # json.dumps gives TOML-compatible basic strings (same escapes); floats in repr are TOML too.
    lines = [
        "# Transducer calibration of this appliance, written by `bfr calibrate`.",
        "# corrected mmHg = span * (nominal mmHg - zero_mmHg)",
        f"# valid for {VALID_DAYS} days from calibrated_at, until {_iso(record.expires_at)}",
        f"format = {FORMAT}",
        f"zero_mmHg = {record.calibration.zero_mmHg!r}",
        f"span = {record.calibration.span!r}",
        f"calibrated_at = {_iso(record.calibrated_at)}",
        f"gauge_id = {json.dumps(record.gauge_id)}",
        f"technician = {json.dumps(record.technician)}",
        f"software_version = {json.dumps(record.software_version)}",
    ]
    for p in record.points:
        lines += [
            "",
            "[[points]]",
            f"nominal_mmHg = {p.nominal_mmHg!r}",
            f"reference_mmHg = {p.reference_mmHg!r}",
        ]
    return "\n".join(lines) + "\n"


def _from_toml(data: dict[str, object]) -> CalibrationRecord:
    if data.get("format") != FORMAT:
        raise ValueError(f"unknown format {data.get('format')!r}")
    at = data["calibrated_at"]
    if not isinstance(at, dt.datetime) or at.tzinfo is None:
        raise ValueError("calibrated_at must be a date and time with a time zone")
    raw_points = data.get("points", [])
    if not isinstance(raw_points, list):
        raise TypeError("points must be an array of tables")
    points = tuple(
        CalibrationPoint(float(p["nominal_mmHg"]), float(p["reference_mmHg"])) for p in raw_points
    )
    return CalibrationRecord(
        calibration=Calibration(zero_mmHg=_number(data, "zero_mmHg"), span=_number(data, "span")),
        calibrated_at=at.astimezone(dt.UTC),
        gauge_id=str(data["gauge_id"]),
        technician=str(data["technician"]),
        points=points,
        software_version=str(data.get("software_version", "")),
    )


def _number(data: dict[str, object], key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number")
    return float(value)
