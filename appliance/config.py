"""Strict appliance configuration (TOML): typed, ranged, unknown keys are errors naming the key.

Layers: built-in defaults, then the site file (`/etc/bfr/bfr.toml` on the device). Sections:
`[hardware]` (pins, I2C, ADC), `[transducer]`, `[calibration]`, `[limits]`, `[paths]`,
`[readiness]`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from appliance.controller.limits import SafetyLimits
from hardware.config import HardwareConfig
from hardware.transducer import Calibration, TransducerModel

DEFAULT_CONFIG_PATH = Path("/etc/bfr/bfr.toml")


class ConfigError(ValueError):
    """A configuration problem; the message names the file, section and key."""


@dataclass(frozen=True)
class Paths:
    socket: str = "/run/bfr/controller.sock"  # the clinic's: the web UI, group bfr
    technician_socket: str = "/run/bfr/technician.sock"  # root only: calibration, self-test
    data_dir: str = "/data/bfr"


@dataclass(frozen=True)
class ReadinessPolicy:
    """The clinic's own rules on top of a valid calibration and a passed self-test.

    Read by the controller (which enforces it on every inflation) and by the web server (which
    refuses a session before it starts), so the two cannot disagree.
    """

    selftest_max_age_h: float = 0.0  # 0: a passed self-test does not expire; 24: one a day

    def __post_init__(self) -> None:
        if not 0.0 <= self.selftest_max_age_h <= 8760.0:
            raise ValueError("selftest_max_age_h: must be 0 (no limit) to 8760 hours")

    @property
    def selftest_max_age_s(self) -> float | None:
        return self.selftest_max_age_h * 3600.0 if self.selftest_max_age_h > 0 else None


def technician_socket_beside(socket: str) -> str:
    """The technician socket of a controller started on another clinic socket (tests, desk demo)."""
    return str(Path(socket).with_suffix(".technician.sock"))


@dataclass(frozen=True)
class ApplianceConfig:
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    limits: SafetyLimits = field(default_factory=SafetyLimits)
    paths: Paths = field(default_factory=Paths)
    readiness: ReadinessPolicy = field(default_factory=ReadinessPolicy)


def _typed(section: str, key: str, value: Any, current: Any) -> Any:
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"[{section}] {key}: expected true/false, got {value!r}")
        return value
    if isinstance(current, int | float) and not isinstance(current, bool):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"[{section}] {key}: expected a number, got {value!r}")
        return type(current)(value) if isinstance(current, int) and value == int(value) else value
    if isinstance(current, str):
        if not isinstance(value, str):
            raise ConfigError(f"[{section}] {key}: expected text, got {value!r}")
        return value
    raise ConfigError(f"[{section}] {key}: cannot be set here")


def _apply(section: str, obj: Any, values: dict[str, Any]) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"[{section}] must be a table")
    known = {f.name for f in fields(obj)}
    changes = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"[{section}] {key}: unknown key (known: {', '.join(sorted(known))})")
        changes[key] = _typed(section, key, value, getattr(obj, key))
    try:
        return replace(obj, **changes)
    except ValueError as exc:
        raise ConfigError(f"[{section}] {exc}") from exc


def parse_config(data: dict[str, Any]) -> ApplianceConfig:
    """Apply a decoded TOML document over the defaults."""
    sections = {"hardware", "transducer", "calibration", "limits", "paths", "readiness"}
    unknown = set(data) - sections
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(sorted(unknown))}")
    hw = HardwareConfig()
    transducer = _apply("transducer", TransducerModel(), data.get("transducer", {}))
    calibration = _apply("calibration", Calibration(), data.get("calibration", {}))
    hw_values = dict(data.get("hardware", {}))
    hw = _apply("hardware", hw, {k: v for k, v in hw_values.items()})
    hw = replace(hw, transducer=transducer, calibration=calibration)
    return ApplianceConfig(
        hardware=hw,
        limits=_apply("limits", SafetyLimits(), data.get("limits", {})),
        paths=_apply("paths", Paths(), data.get("paths", {})),
        readiness=_apply("readiness", ReadinessPolicy(), data.get("readiness", {})),
    )


def load_config(path: Path | None) -> ApplianceConfig:
    """Defaults when `path` is None or absent on a development machine; errors otherwise."""
    if path is None:
        return ApplianceConfig()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        return parse_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
