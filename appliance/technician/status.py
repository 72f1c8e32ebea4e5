"""One screen about the appliance: software, uptime, services, controller, alarms, calibration,
self-test, data partition and the last update."""

from __future__ import annotations

import shutil
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.store import DB_NAME
from appliance.store.db import connect
from appliance.technician.calibration import calibration_state
from appliance.technician.errors import TechnicianError
from appliance.technician.readiness import readiness_problems
from appliance.technician.release_tree import ReleaseTree
from appliance.technician.selftest_results import latest_selftest, missing_checks
from appliance.technician.services import STOP_ORDER, Systemctl
from appliance.technician.update import read_last_update

RECENT_ALARMS = 5


def gather_status(
    *,
    tree: ReleaseTree,
    data_dir: Path,
    controller: Callable[[], dict[str, Any] | None],
    systemctl: Systemctl | None,
    now: float,
    selftest_max_age_s: float | None = None,
    uptime_file: Path = Path("/proc/uptime"),
) -> dict[str, Any]:
    """Everything `bfr status` shows; `treatment` is what the next session would be refused for,
    under the clinic's self-test age limit."""
    return {
        "software": _software(tree),
        "uptime_s": _uptime(uptime_file),
        "services": _services(systemctl),
        "controller": _controller(controller),
        "recent_alarms": _recent_alarms(data_dir),
        "calibration": calibration_state(data_dir, now).to_dict(),
        "selftest": _selftest(data_dir),
        "treatment": [
            p.to_dict()
            for p in readiness_problems(data_dir, now, selftest_max_age_s=selftest_max_age_s)
        ],
        "data_partition": _disk(data_dir),
        "last_update": read_last_update(data_dir),
    }


def _software(tree: ReleaseTree) -> dict[str, Any]:
    current = tree.current()
    return {
        "package": __version__,
        "python": sys.version.split()[0],
        "running_from": sys.prefix,
        "current": current,
        "release_dir": str(tree.path(current)) if current else None,
        "previous": tree.previous(),
        "installed": tree.versions(),
    }


def _uptime(path: Path) -> float | None:
    try:
        return float(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _services(systemctl: Systemctl | None) -> dict[str, Any] | None:
    if systemctl is None or not systemctl.available():
        return None
    out = {}
    for unit in reversed(STOP_ORDER):
        show = systemctl.show(unit, ["ActiveState", "SubState", "NRestarts"])
        out[unit] = {
            "active": show.get("ActiveState", "unknown"),
            "sub": show.get("SubState", ""),
            "restarts": show.get("NRestarts", ""),
        }
    return out


def _controller(probe: Callable[[], dict[str, Any] | None]) -> dict[str, Any]:
    """The controller's state; `probe` returns None when nothing answers and raises when it
    knows why it cannot ask (no permission on the socket without sudo)."""
    try:
        status = probe()
    except TechnicianError as exc:
        return {"state": "not reachable", "reachable": False, "error": str(exc)}
    if status is None:
        return {"state": "not running", "reachable": False}
    return {
        "reachable": True,
        "state": status.get("state"),
        "fault": status.get("fault"),
        "mmHg": status.get("mmHg"),
        "alarms": [
            {"code": a.get("code"), "message": a.get("message")} for a in status.get("alarms", [])
        ],
    }


def _recent_alarms(data_dir: Path) -> list[dict[str, Any]] | dict[str, str]:
    path = data_dir / DB_NAME
    if not path.is_file():
        return []
    try:
        conn = connect(path, create=False)
        try:
            rows = conn.execute(
                "SELECT at, code, message, session_id, cleared_at FROM alarms"
                " ORDER BY id DESC LIMIT ?",
                (RECENT_ALARMS,),
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return {"error": f"cannot read {path}: {exc}"}
    return [
        {
            "at": r["at"],
            "code": r["code"],
            "message": r["message"],
            "session_id": r["session_id"],
            "cleared": r["cleared_at"] is not None,
        }
        for r in rows
    ]


def _selftest(data_dir: Path) -> dict[str, Any] | None:
    report = latest_selftest(data_dir)
    if report is None:
        return None
    failed = [c["name"] for c in report.get("checks", []) if c.get("status") == "failed"]
    return {
        "passed": report.get("passed"),
        "at": report.get("at"),
        "failed": failed,
        "missing": missing_checks(report),
        "message": report.get("message") or report.get("advice", ""),
    }


def _disk(data_dir: Path) -> dict[str, Any] | None:
    try:
        usage = shutil.disk_usage(data_dir)
    except OSError:
        return None
    return {
        "path": str(data_dir),
        "total_bytes": usage.total,
        "used_bytes": usage.used,
        "free_bytes": usage.free,
        "used_percent": round(100.0 * usage.used / usage.total, 1) if usage.total else None,
    }


def render(status: dict[str, Any]) -> str:
    """The screen a technician reads over SSH."""
    sw = status["software"]
    lines = [
        f"software    bfr {sw['package']} (Python {sw['python']})",
        f"release     {sw['release_dir'] or 'not an installed release (' + sw['running_from'] + ')'}"
        + (f"; previous {sw['previous']}" if sw["previous"] else ""),
        f"uptime      {_duration(status['uptime_s'])}",
    ]
    services = status["services"]
    if services:
        lines.append(
            "services    "
            + ", ".join(
                f"{unit.removesuffix('.service')} {s['active']}"
                + (f"/{s['sub']}" if s["sub"] else "")
                + (f" ({s['restarts']} restarts)" if s["restarts"] not in ("", "0") else "")
                for unit, s in services.items()
            )
        )
    c = status["controller"]
    if c["reachable"]:
        text = f"{c['state']}, {c['mmHg']} mmHg" + (f", fault {c['fault']}" if c["fault"] else "")
        lines.append(f"controller  {text}")
        for alarm in c["alarms"]:
            lines.append(f"            alarm {alarm['code']}: {alarm['message']}")
    else:
        lines.append(f"controller  {c.get('error') or 'not running (no answer on its socket)'}")
    alarms = status["recent_alarms"]
    if isinstance(alarms, dict):
        lines.append(f"alarms      {alarms['error']}")
    elif alarms:
        lines.append("alarms      " + "; ".join(f"{a['code']}" for a in alarms) + " (newest first)")
    else:
        lines.append("alarms      none recorded")
    cal = status["calibration"]
    lines.append(f"calibration {cal['state'].upper()}: {cal['message']}")
    st = status["selftest"]
    if st is None:
        lines.append("self-test   never run")
    else:
        if not st["passed"]:
            verdict = "FAILED " + ", ".join(st["failed"])
        elif st["missing"]:
            verdict = f"OUT OF DATE: lacks {', '.join(st['missing'])}; run `bfr selftest`"
        else:
            verdict = "PASSED"
        lines.append(f"self-test   {verdict} ({st['at'] or 'unknown time'})")
    problems = status["treatment"]
    if problems:
        lines.append("treatment   REFUSED: no session or LOP measurement until this is fixed")
        lines += [f"            {p['message']}: {p['advice']}" for p in problems]
    else:
        lines.append("treatment   allowed (calibration valid, self-test passed)")
    disk = status["data_partition"]
    if disk:
        lines.append(
            f"data        {disk['path']}: {disk['used_percent']} % used, "
            f"{disk['free_bytes'] / 1e9:.1f} GB free"
        )
    last = status["last_update"]
    if last:
        lines.append(
            f"last update {last.get('from')} -> {last.get('to')} {last.get('result')} ({last.get('at')})"
        )
    return "\n".join(lines)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    return f"{days} d {hours} h {rest // 60} min" if days else f"{hours} h {rest // 60} min"
