"""Logs for the technician: the appliance's journald units merged with the clinic database's
session events, alarms and audit entries, on one time line."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from appliance.store import DB_NAME
from appliance.store.db import connect
from appliance.technician.errors import TechnicianError
from appliance.technician.services import STOP_ORDER

# journald's priorities, most severe first; a `--level` keeps that one and all above it.
LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
APPLIANCE_UNITS = tuple(reversed(STOP_ORDER))
_RELATIVE = re.compile(r"^-?(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}

Runner = Callable[..., subprocess.CompletedProcess]


@dataclass(frozen=True)
class LogEntry:
    at: float
    source: str  # journal | event | alarm | audit
    level: str
    origin: str  # the unit, or what in the store
    message: str
    session_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["time"] = _local(self.at)
        return out

    def render(self) -> str:
        session = f" [session {self.session_id}]" if self.session_id is not None else ""
        return f"{_local(self.at)} {self.level:<7} {self.origin:<16}{session} {self.message}"


def parse_since(text: str, now: float) -> float:
    """`2h` or `-2h` (ago), `30m`, `3d`, `today`, `yesterday`, `2025-03-01` or `2025-03-01 14:00` (local)."""
    text = text.strip()
    match = _RELATIVE.match(text)
    if match:
        return now - float(match[1]) * _UNIT_S[match[2]]
    midnight = dt.datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
    if text == "today":
        return midnight.timestamp()
    if text == "yesterday":
        return (midnight - dt.timedelta(days=1)).timestamp()
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise TechnicianError(
            f"--since {text!r} is not a time", "e.g. --since 2h, today or '2025-03-01 14:00'"
        ) from None


def level_priority(level: str) -> int:
    if level not in LEVELS:
        raise TechnicianError(f"unknown level {level!r}", f"one of {', '.join(LEVELS)}")
    return LEVELS.index(level)


def journal_entries(
    units: tuple[str, ...],
    *,
    since: float | None,
    until: float | None,
    level: str,
    run: Runner = subprocess.run,
    binary: str = "journalctl",
) -> tuple[list[LogEntry], str | None]:
    """Entries of `units`; the second value says why there are none when journald is absent."""
    if run is subprocess.run and shutil.which(binary) is None:
        return [], "journalctl is not available here: only the database's entries are shown"
    argv = [binary, "-o", "json", "--no-pager", "-p", level]
    if since is not None:
        argv += ["--since", f"@{int(since)}"]
    if until is not None:
        argv += ["--until", f"@{int(until) + 1}"]
    for unit in units:
        argv += ["-u", unit]
    try:
        done = run(argv, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"journalctl failed: {exc}"
    if done.returncode != 0:
        return [], f"journalctl failed: {done.stderr.strip()} (are you in systemd-journal?)"
    entries = []
    for line in done.stdout.splitlines():
        try:
            record = json.loads(line)
            entries.append(_journal_entry(record))
        except (ValueError, KeyError, TypeError):
            continue
    return entries, None


def store_entries(
    data_dir: Path, *, since: float | None, session_id: int | None, max_priority: int
) -> list[LogEntry]:
    """Session events (info), alarms (warning) and audit entries (notice) from the database."""
    path = data_dir / DB_NAME
    if not path.is_file():
        return []
    try:
        conn = connect(path, create=False)
    except sqlite3.Error as exc:
        raise TechnicianError(f"cannot open {path}: {exc}", "run with sudo") from exc
    entries: list[LogEntry] = []
    try:
        where, params = _filter(since, session_id)
        if max_priority >= LEVELS.index("info"):
            for r in conn.execute(f"SELECT * FROM events WHERE {where} ORDER BY id", params):
                entries.append(_row_entry(r, "event", "info", f"event {r['kind']}", r["name"]))
        if max_priority >= LEVELS.index("warning"):
            for r in conn.execute(f"SELECT * FROM alarms WHERE {where} ORDER BY id", params):
                entries.append(
                    _row_entry(r, "alarm", "warning", f"alarm {r['code']}", r["message"])
                )
        if max_priority >= LEVELS.index("notice"):
            sql = "SELECT * FROM audit WHERE at >= ?"
            audit_params: list[Any] = [since if since is not None else 0.0]
            if session_id is not None:
                sql += " AND subject = ?"
                audit_params.append(f"session:{session_id}")
            for r in conn.execute(sql + " ORDER BY id", audit_params):
                text = f"{r['actor']}: {r['action']} {r['subject']}".rstrip()
                if r["reason"]:
                    text += f" ({r['reason']})"
                entries.append(LogEntry(r["at"], "audit", "notice", "audit", text, session_id, {}))
    except sqlite3.Error as exc:
        raise TechnicianError(f"cannot read {path}: {exc}") from exc
    finally:
        conn.close()
    return entries


def session_window(data_dir: Path, session_id: int, now: float) -> tuple[float, float]:
    path = data_dir / DB_NAME
    if not path.is_file():
        raise TechnicianError(f"no database in {data_dir}", "check --data-dir")
    conn = connect(path, create=False)
    try:
        row = conn.execute(
            "SELECT started_at, ended_at FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
    finally:
        conn.close()
    if row is None:
        raise TechnicianError(f"no session {session_id}", "list sessions with `bfr export`")
    return float(row[0]), float(row[1]) if row[1] is not None else now


def _row_entry(row: sqlite3.Row, source: str, level: str, origin: str, text: str) -> LogEntry:
    return LogEntry(
        at=row["at"],
        source=source,
        level=level,
        origin=origin,
        message=text,
        session_id=row["session_id"],
        detail=json.loads(row["detail"]),
    )


def _filter(since: float | None, session_id: int | None) -> tuple[str, list[Any]]:
    where, params = "at >= ?", [since if since is not None else 0.0]
    if session_id is not None:
        where += " AND session_id = ?"
        params.append(session_id)
    return where, params


def _journal_entry(record: dict[str, Any]) -> LogEntry:
    message = record.get("MESSAGE")
    if isinstance(message, list):  # journald sends non-UTF-8 messages as byte arrays
        message = bytes(message).decode(errors="replace")
    priority = int(record.get("PRIORITY", 6))
    origin = record.get("_SYSTEMD_UNIT") or record.get("SYSLOG_IDENTIFIER") or "journal"
    return LogEntry(
        at=int(record["__REALTIME_TIMESTAMP"]) / 1e6,
        source="journal",
        level=LEVELS[min(max(priority, 0), len(LEVELS) - 1)],
        origin=str(origin).removesuffix(".service"),
        message=str(message or ""),
    )


def _local(t: float) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")
