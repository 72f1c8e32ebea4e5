"""Build inputs: parse `build.env`, validate every key, apply `BFR_<KEY>` environment overrides."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
_SNAPSHOT = re.compile(r"^\d{8}T\d{6}Z$")
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
# Accounts the image creates itself; a technician login must not collide with them.
RESERVED_USERS = frozenset({"root", "bfr-ctl", "bfr-web", "kiosk", "daemon", "nobody"})


class ConfigError(ValueError):
    """A build input is missing, unknown or out of range; the message names the key."""


def _text(max_len: int) -> Callable[[str, str], str]:
    def check(key: str, value: str) -> str:
        if not value or len(value) > max_len or any(ord(c) < 32 for c in value):
            raise ConfigError(f"{key}: expected 1-{max_len} printable characters")
        return value

    return check


def _pattern(regex: re.Pattern[str], what: str) -> Callable[[str, str], str]:
    def check(key: str, value: str) -> str:
        if not regex.match(value):
            raise ConfigError(f"{key}: {value!r} is not {what}")
        return value

    return check


def _url(key: str, value: str) -> str:
    if not re.match(r"^https?://[^\s]+$", value):
        raise ConfigError(f"{key}: {value!r} is not an http(s) URL")
    return value.rstrip("/")


def _snapshot(key: str, value: str) -> str:
    if value and not _SNAPSHOT.match(value):
        raise ConfigError(
            f"{key}: {value!r} is not a snapshot.debian.org time like 20250520T000000Z"
        )
    return value


def _integer(low: int, high: int) -> Callable[[str, str], int]:
    def check(key: str, value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{key}: {value!r} is not an integer") from None
        if not low <= number <= high:
            raise ConfigError(f"{key}: {number} is outside {low}..{high}")
        return number

    return check


def _user(key: str, value: str) -> str:
    _pattern(_USER, "a valid user name")(key, value)
    if value in RESERVED_USERS:
        raise ConfigError(f"{key}: {value!r} is reserved by the image")
    return value


def _optional_path(key: str, value: str) -> str:
    return value


def _timezone(key: str, value: str) -> str:
    if value != "UTC" and not re.match(r"^[A-Z][A-Za-z_+-]*(/[A-Za-z0-9_+-]+){1,2}$", value):
        raise ConfigError(f"{key}: {value!r} is not a time zone like Europe/Berlin")
    return value


# Every key the build understands, with its default ("" = none) and its check.
SCHEMA: dict[str, tuple[str, Callable[[str, str], object]]] = {
    "IMAGE_NAME": ("bfr-appliance", _pattern(re.compile(r"^[a-z0-9][a-z0-9-]*$"), "a file name")),
    "DEBIAN_SUITE": ("bookworm", _pattern(re.compile(r"^[a-z]+$"), "a Debian suite")),
    "DEBIAN_MIRROR": ("http://deb.debian.org/debian", _url),
    "DEBIAN_SECURITY_MIRROR": ("http://deb.debian.org/debian-security", _url),
    "DEBIAN_SNAPSHOT": ("", _snapshot),
    "SOURCE_DATE_EPOCH": ("", _integer(0, 2**32)),
    "HOSTNAME": ("bfr-01", _pattern(_HOSTNAME, "a host name (RFC 1123 label)")),
    "CLINIC_NAME": ("", _text(80)),
    "TIMEZONE": ("UTC", _timezone),
    "UI_LANGUAGE": ("en", _pattern(re.compile(r"^[a-z]{2}$"), "a two-letter language code")),
    "SELFTEST_MAX_AGE_H": ("0", _integer(0, 8760)),
    "TECH_USER": ("tech", _user),
    "SSH_AUTHORIZED_KEYS_FILE": ("", _optional_path),
    "BOOT_SIZE_MIB": ("256", _integer(64, 1024)),
    "ROOT_SIZE_MIB": ("2560", _integer(1024, 16384)),
    "DATA_SIZE_MIB": ("1024", _integer(128, 65536)),
}


@dataclass(frozen=True)
class BuildConfig:
    """Validated build inputs; `values` holds every key of SCHEMA."""

    values: Mapping[str, object]
    ssh_keys: tuple[str, ...]

    def __getitem__(self, key: str) -> object:
        return self.values[key]

    def shell_exports(self) -> str:
        """`export KEY=value` lines that build scripts source."""
        lines = [f"export {k}={shlex.quote(str(v))}" for k, v in sorted(self.values.items())]
        return "\n".join(lines) + "\n"


def parse_env_file(text: str) -> dict[str, str]:
    """KEY=value lines; blank lines and `#` comments ignored; values may be shell-quoted."""
    raw: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(stripped)
        if not match:
            raise ConfigError(f"line {number}: expected KEY=value, got {stripped!r}")
        key, value = match.groups()
        words = shlex.split(value, comments=True)
        if len(words) > 1:
            raise ConfigError(f"{key}: quote values that contain spaces")
        raw[key] = words[0] if words else ""
    return raw


def parse_authorized_keys(text: str, source: str) -> tuple[str, ...]:
    """One OpenSSH public key per line; options before the key type are not allowed."""
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if fields[0] not in _KEY_TYPES or len(fields) < 2:
            raise ConfigError(f"SSH_AUTHORIZED_KEYS_FILE: {source}:{number} is not a public key")
        keys.append(line)
    return tuple(keys)


def snapshot_epoch(snapshot: str) -> int:
    """The Unix time of a snapshot.debian.org timestamp."""
    moment = datetime.strptime(snapshot, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return int(moment.timestamp())


def load(
    text: str, environ: Mapping[str, str] | None = None, base_dir: Path | None = None
) -> BuildConfig:
    """Validate build.env text plus `BFR_<KEY>` overrides from `environ`."""
    raw = parse_env_file(text)
    for key in raw:
        if key not in SCHEMA:
            raise ConfigError(f"{key}: unknown build input (known: {', '.join(SCHEMA)})")
    for key, value in (environ or {}).items():
        if key.startswith("BFR_") and key[4:] in SCHEMA:
            raw[key[4:]] = value
    values: dict[str, object] = {}
    for key, (default, check) in SCHEMA.items():
        value = raw.get(key, default)
        if value == "" and key not in ("DEBIAN_SNAPSHOT", "SSH_AUTHORIZED_KEYS_FILE"):
            if key == "SOURCE_DATE_EPOCH" and raw.get("DEBIAN_SNAPSHOT"):
                continue
            raise ConfigError(f"{key}: required")
        values[key] = check(key, value) if value != "" else ""
    snapshot = values["DEBIAN_SNAPSHOT"]
    if snapshot:
        # A snapshot pins the whole archive: same inputs, same packages.
        base = "http://snapshot.debian.org/archive"
        values["DEBIAN_MIRROR"] = f"{base}/debian/{snapshot}"
        values["DEBIAN_SECURITY_MIRROR"] = f"{base}/debian-security/{snapshot}"
        if "SOURCE_DATE_EPOCH" not in values:
            values["SOURCE_DATE_EPOCH"] = snapshot_epoch(str(snapshot))
    keys: tuple[str, ...] = ()
    keys_file = str(values["SSH_AUTHORIZED_KEYS_FILE"])
    if keys_file:
        path = Path(keys_file)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise ConfigError(f"SSH_AUTHORIZED_KEYS_FILE: {keys_file} does not exist")
        keys = parse_authorized_keys(path.read_text(), keys_file)
        if not keys:
            raise ConfigError(f"SSH_AUTHORIZED_KEYS_FILE: {keys_file} holds no key")
        values["SSH_AUTHORIZED_KEYS_FILE"] = str(path.resolve())
    return BuildConfig(values=values, ssh_keys=keys)
