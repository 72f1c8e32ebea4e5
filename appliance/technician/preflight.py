"""Refuse technician work while a patient may be on the cuff: controller IDLE, no open session."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.store import DB_NAME
from appliance.store.db import connect
from appliance.technician.errors import TechnicianError

# A session longer than this is a leftover of a crash, not a patient in the chair: the longest
# protocol is about an hour (4 exercises of 10 min occlusion with reperfusion between).
SESSION_STALE_S = 6 * 3600.0


@dataclass(frozen=True)
class OpenSession:
    id: int
    started_at: float
    clinician: str

    def running(self, now: float) -> bool:
        """A patient may be on the cuff: an open session younger than a crash's leftover."""
        return now - self.started_at < SESSION_STALE_S


def require_idle(status: dict[str, Any], action: str) -> None:
    """Raise unless the controller is IDLE, with the way out for each other state."""
    state = status.get("state")
    if state == "IDLE":
        return
    if state == "FAULT":
        raise TechnicianError(
            f"{action}: the controller is in FAULT ({status.get('fault')})",
            "fix the cause (see `bfr status`), then reset the fault on the clinician screen "
            "or rerun with --reset",
        )
    if state == "DEFLATING":
        raise TechnicianError(f"{action}: the cuff is still emptying", "wait a few seconds")
    raise TechnicianError(
        f"{action}: the cuff is in use (controller {state})",
        "wait until the session or measurement has ended and the cuff is empty",
    )


def open_sessions(data_dir: Path) -> list[OpenSession]:
    """Sessions without an end, oldest first; none when there is no database yet.

    Read with plain SQL, without the schema check of `Store.open`: an update must still see
    sessions in a database that a newer release has already migrated.
    """
    path = data_dir / DB_NAME
    if not path.is_file():
        return []
    try:
        conn = connect(path, create=False)
    except sqlite3.Error as exc:
        raise TechnicianError(
            f"cannot read {path}: {exc}", "check the data partition (`bfr status`)"
        ) from exc
    try:
        rows = conn.execute(
            "SELECT id, started_at, clinician FROM sessions WHERE ended_at IS NULL"
            " ORDER BY started_at"
        ).fetchall()
    except sqlite3.Error as exc:
        raise TechnicianError(f"cannot read sessions from {path}: {exc}") from exc
    finally:
        conn.close()
    return [OpenSession(int(r[0]), float(r[1]), str(r[2])) for r in rows]


def require_no_session(data_dir: Path, now: float, action: str) -> list[OpenSession]:
    """Raise if a session is running; return leftovers older than SESSION_STALE_S (warn only)."""
    sessions = open_sessions(data_dir)
    running = [s for s in sessions if s.running(now)]
    if running:
        s = running[-1]
        started = dt.datetime.fromtimestamp(s.started_at).strftime("%Y-%m-%d %H:%M")
        raise TechnicianError(
            f"{action}: session {s.id} (clinician {s.clinician}, started {started}) is running",
            "wait until it has ended; if it is a leftover, end or abort it on the clinician screen",
        )
    return [s for s in sessions if s not in running]
