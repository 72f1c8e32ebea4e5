"""The clinician console's PIN: a salted scrypt hash in the data directory, and a failure limit."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PIN_FILE = "console-pin.json"
_PIN = re.compile(r"^[0-9]{4,8}$")
# scrypt cost: about 16 MiB and some tens of milliseconds per try on a Pi 4, which is nothing
# for one clinician and a wall against anyone who copies the file off the data partition.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
KEY_BYTES = 32


class PinError(ValueError):
    """The PIN cannot be used; the message says why."""


def check_pin_format(pin: object) -> str:
    if not isinstance(pin, str) or not _PIN.match(pin):
        raise PinError("pin: must be 4 to 8 digits")
    return pin


def _derive(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES, maxmem=64 << 20)


class PinVault:
    """Stores and checks the PIN; only the hash and its salt ever touch the disk."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / PIN_FILE

    def is_set(self) -> bool:
        return self.path.is_file()

    def set_pin(self, pin: str) -> None:
        check_pin_format(pin)
        salt = secrets.token_bytes(16)
        record = {
            "scheme": "scrypt",
            "n": SCRYPT_N,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "salt": salt.hex(),
            "hash": _derive(pin, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P).hex(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".pin.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(record, out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def verify(self, pin: str) -> bool:
        try:
            record = json.loads(self.path.read_text())
            salt = bytes.fromhex(record["salt"])
            expected = bytes.fromhex(record["hash"])
            n, r, p = int(record["n"]), int(record["r"]), int(record["p"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PinError(f"the stored PIN cannot be read ({exc}); set it again") from exc
        if not isinstance(pin, str) or not _PIN.match(pin):
            return False
        return hmac.compare_digest(_derive(pin, salt, n, r, p), expected)


@dataclass
class ThrottleState:
    failures: int = 0
    locked_until: float = 0.0


class PinThrottle:
    """After `max_failures` wrong PINs in a row, refuse every attempt for `lockout_s` seconds.

    One counter for the whole device: there is one console, and guessing from two browser tabs
    must not double the attempts.
    """

    def __init__(
        self,
        max_failures: int = 5,
        lockout_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self.clock = clock
        self._state = ThrottleState()
        self._lock = threading.Lock()

    def wait_s(self) -> float:
        """Seconds until the next attempt is allowed; 0 when it is allowed now."""
        with self._lock:
            return max(0.0, self._state.locked_until - self.clock())

    def failed(self) -> float:
        """Count a failure; returns the lockout now in force (0 if none)."""
        with self._lock:
            self._state.failures += 1
            if self._state.failures >= self.max_failures:
                self._state.failures = 0
                self._state.locked_until = self.clock() + self.lockout_s
            return max(0.0, self._state.locked_until - self.clock())

    def succeeded(self) -> None:
        with self._lock:
            self._state = ThrottleState()
