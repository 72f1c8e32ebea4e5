"""Exports for the clinic's records: CSV and HTML reports written under the data directory."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from flask import Blueprint, jsonify, send_from_directory

from appliance.export import ExportError, export_records, parse_since
from web.api.body import Body
from web.api.errors import ApiError
from web.console_auth import clinician, clinician_required
from web.state import web_state

bp = Blueprint("exports", __name__)
_EXPORT_ID = re.compile(r"^[0-9]{8}-[0-9]{6}(-[0-9]+)?$")
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


def exports_dir() -> Path:
    return web_state().store.data_dir / "exports"


def _new_export_dir() -> tuple[str, Path]:
    stamp = dt.datetime.fromtimestamp(web_state().wall()).strftime("%Y%m%d-%H%M%S")
    base = exports_dir()
    name, n = stamp, 1
    while (base / name).exists():
        n += 1
        name = f"{stamp}-{n}"
    return name, base / name


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


@bp.get("/exports")
@clinician_required
def list_exports() -> Any:
    base = exports_dir()
    found = []
    if base.is_dir():
        for folder in sorted(base.iterdir(), reverse=True):
            if folder.is_dir() and _EXPORT_ID.match(folder.name):
                found.append({"id": folder.name, "files": _listing(folder)})
    return jsonify({"exports": found})


@bp.post("/exports")
@clinician_required
def make_export() -> Any:
    body = Body(("clinic_id", "since"))
    clinic_id = body.text("clinic_id", None, max_len=32)
    since_text = body.text("since", None, max_len=10)
    try:
        since = parse_since(since_text) if since_text else None
        export_id, out = _new_export_dir()
        result = export_records(
            web_state().store, out, by=clinician(), patient=clinic_id or None, since=since
        )
    except ExportError as exc:
        status = 404 if str(exc).startswith("unknown patient") else 400
        raise ApiError(str(exc), status) from None
    return (
        jsonify(
            {
                "id": export_id,
                "files": [f.name for f in result.files],
                "sessions": result.sessions,
                "patients": result.patients,
            }
        ),
        201,
    )


@bp.get("/exports/<export_id>/<file_name>")
@clinician_required
def export_file(export_id: str, file_name: str) -> Any:
    if not _EXPORT_ID.match(export_id) or not _FILE.match(file_name):
        raise ApiError("no such export file", 404)
    folder = exports_dir() / export_id
    if not (folder / file_name).is_file():
        raise ApiError("no such export file", 404)
    return send_from_directory(folder, file_name)
