"""Technician actions in the clinic's audit trail (calibration, self-test, update, rollback)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from appliance.store import DB_NAME, Store
from appliance.store.audit import record_audit
from appliance.store.db import connect

CALIBRATION_SET = "technician.calibration"
CALIBRATION_CHECK = "technician.calibration_check"
SELFTEST = "technician.selftest"
UPDATE = "technician.update"
ROLLBACK = "technician.rollback"


def audit(
    data_dir: Path,
    *,
    actor: str,
    action: str,
    subject: str = "",
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> str | None:
    """Append one entry; return None when written, else why not (the caller warns).

    Opened without `Store.open`'s migration on purpose: during an update the database may
    already be at a newer schema than the code writing this entry, and the audit table itself
    is append-only across schema versions. A missing database is not created here: created by
    root under sudo, it would be unwritable for the services.
    """
    path = data_dir / DB_NAME
    if not path.is_file():
        return f"no database at {path} yet: audit entry not written"
    try:
        conn = connect(path, create=False)
    except sqlite3.Error as exc:
        return f"cannot open {path}: {exc}"
    store = Store(conn, data_dir)
    try:
        record_audit(
            store, actor=actor, action=action, subject=subject, reason=reason, detail=detail
        )
    except (sqlite3.Error, ValueError) as exc:
        return f"audit entry not written: {exc}"
    finally:
        store.close()
    return None
