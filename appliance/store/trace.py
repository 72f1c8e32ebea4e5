"""The cuff pressure trace: fixed-rate chunks of int16 deci-mmHg, a few seconds per row."""

from __future__ import annotations

import math
import sqlite3
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from appliance.store.db import Store
from appliance.store.records import RecordError, RecordNotFound

# 0.1 mmHg steps in int16 cover -3276.7..3276.7 mmHg: finer than the transducer, wider than the
# 300 mmHg ceiling, at 2 bytes a sample (10 Hz for an hour is 72 kB).
SCALE = 10.0
MISSING = -32768  # a sample the controller could not read; decoded as NaN
MIN_RATE_HZ = 10.0
MAX_RATE_HZ = 1000.0
DEFAULT_CHUNK_S = 5.0


class Trace(NamedTuple):
    """A session's samples: wall-clock seconds and mmHg, NaN where a sample was missing."""

    t: np.ndarray
    mmhg: np.ndarray


def encode(mmhg: ArrayLike) -> bytes:
    values = np.asarray(mmhg, dtype=float)
    missing = ~np.isfinite(values)
    scaled = np.clip(np.rint(np.where(missing, 0.0, values) * SCALE), -32767, 32767)
    out = scaled.astype("<i2")
    out[missing] = MISSING
    return out.tobytes()


def decode(blob: bytes) -> np.ndarray:
    raw = np.frombuffer(blob, dtype="<i2")
    values = raw.astype(float) / SCALE
    values[raw == MISSING] = np.nan
    return values


def insert_chunk(
    store: Store, *, session_id: int, t0: float, rate_hz: float, mmhg: ArrayLike
) -> int:
    """Store samples taken every 1/rate_hz seconds from wall time `t0`; returns the row id."""
    if not (math.isfinite(rate_hz) and MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ):
        raise RecordError(f"rate_hz: must be {MIN_RATE_HZ:g}-{MAX_RATE_HZ:g}, got {rate_hz!r}")
    if not math.isfinite(t0):
        raise RecordError(f"t0: must be a finite time, got {t0!r}")
    blob = encode(mmhg)
    if not blob:
        raise RecordError("mmhg: a chunk needs at least one sample")
    try:
        with store.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO trace_chunks (session_id, t0, rate_hz, n, samples)"
                " VALUES (?, ?, ?, ?, ?)",
                (session_id, t0, float(rate_hz), len(blob) // 2, blob),
            )
    except sqlite3.IntegrityError as exc:
        raise RecordNotFound(f"no sessions row with id {session_id}") from exc
    return int(cur.lastrowid or 0)


def read_trace(
    store: Store, session_id: int, *, start: float | None = None, end: float | None = None
) -> Trace:
    """All samples of a session in time order, optionally only between `start` and `end`."""
    rows = store.query(
        "SELECT t0, rate_hz, samples FROM trace_chunks WHERE session_id = ? ORDER BY t0, id",
        (session_id,),
    )
    times: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for row in rows:
        mmhg = decode(row["samples"])
        times.append(row["t0"] + np.arange(len(mmhg)) / row["rate_hz"])
        values.append(mmhg)
    if not times:
        return Trace(np.empty(0), np.empty(0))
    t = np.concatenate(times)
    p = np.concatenate(values)
    keep = np.ones(len(t), dtype=bool)
    if start is not None:
        keep &= t >= start
    if end is not None:
        keep &= t <= end
    return Trace(t[keep], p[keep])


class TraceRecorder:
    """Collects samples and stores a chunk every `chunk_s` seconds.

    A sample that is off the fixed-rate grid by more than half a period (a stalled loop, a
    reconnect) closes the chunk and starts a new one at its own time, so stored times stay true.
    Samples still buffered are the only thing a crash can lose: at most `chunk_s` seconds, and
    nothing the app has reported as saved.
    """

    def __init__(
        self,
        store: Store,
        session_id: int,
        *,
        rate_hz: float = MIN_RATE_HZ,
        chunk_s: float = DEFAULT_CHUNK_S,
    ) -> None:
        if not MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ:
            raise RecordError(f"rate_hz: must be {MIN_RATE_HZ:g}-{MAX_RATE_HZ:g}, got {rate_hz}")
        self.store = store
        self.session_id = session_id
        self.rate_hz = float(rate_hz)
        self.chunk_len = max(1, round(chunk_s * rate_hz))
        self._t0: float | None = None
        self._buffer: list[float] = []

    def add(self, t: float, mmhg: float) -> None:
        """One sample at wall time `t` (seconds since the epoch)."""
        if self._t0 is not None:
            expected = self._t0 + len(self._buffer) / self.rate_hz
            if abs(t - expected) > 0.5 / self.rate_hz:
                self.flush()
        if self._t0 is None:
            self._t0 = t
        self._buffer.append(mmhg)
        if len(self._buffer) >= self.chunk_len:
            self.flush()

    def flush(self) -> None:
        """Store what is buffered now (call at the end of a session and before deflating)."""
        if self._t0 is not None and self._buffer:
            insert_chunk(
                self.store,
                session_id=self.session_id,
                t0=self._t0,
                rate_hz=self.rate_hz,
                mmhg=self._buffer,
            )
        # Reset only after a successful write, so a failed one can be retried by the next flush.
        self._t0 = None
        self._buffer = []
