"""The audit trail of clinician actions: who did what, to which record, when and why."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from appliance.store.db import Store, and_where, from_row, insert

# Actions other layers record; the list documents them, new ones only need the dotted shape.
SCREENING_OVERRIDE = "screening.override"
SCREENING_CONFIRM_CAUTION = "screening.confirm_caution"
PATIENT_REGISTER = "patient.register"
PATIENT_UPDATE = "patient.update"
PROTOCOL_SAVE = "protocol.save"
SESSION_ABORT = "session.abort"
EXPORT = "export"

_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


class AuditError(ValueError):
    """An audit entry would not say who or what."""


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    action: str
    subject: str
    reason: str
    detail: dict[str, Any]


def record_audit(
    store: Store,
    *,
    actor: str,
    action: str,
    subject: str = "",
    reason: str = "",
    detail: dict[str, Any] | None = None,
    at: float | None = None,
) -> AuditEntry:
    """Append one entry; committed before returning (or with the caller's transaction)."""
    actor = actor.strip()
    if not actor:
        raise AuditError("actor: who did it must be named")
    if not _ACTION.match(action):
        raise AuditError(f"action: {action!r} is not a dotted lower-case name")
    at = store.now() if at is None else at
    detail = dict(detail or {})
    with store.transaction() as conn:
        entry_id = insert(
            conn,
            "audit",
            dict(
                at=at,
                actor=actor,
                action=action,
                subject=subject,
                reason=reason,
                detail=json.dumps(detail, sort_keys=True),
            ),
        )
    return AuditEntry(entry_id, at, actor, action, subject, reason, detail)


def audit_trail(
    store: Store,
    *,
    action: str | None = None,
    subject: str | None = None,
    since: float | None = None,
) -> list[AuditEntry]:
    """Entries oldest first, optionally only one action, one subject, or from a time on."""
    sql, params = and_where(
        "SELECT * FROM audit WHERE 1",
        [],
        {"action = ?": action, "subject = ?": subject, "at >= ?": since},
    )
    return [_entry(row) for row in store.query(sql + " ORDER BY id", params)]


def _entry(row: sqlite3.Row) -> AuditEntry:
    return from_row(AuditEntry, row, detail=json.loads)
