"""Numbered schema migrations; `PRAGMA user_version` records how many a database has had."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    summary: str
    statements: tuple[str, ...]


# Append only. A released migration is never edited: databases in clinics already ran it.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "clinic records: patients, screenings, LOP, sessions, sets, events, alarms, audit trail",
        (
            """CREATE TABLE patients (
                id INTEGER PRIMARY KEY,
                clinic_id TEXT NOT NULL UNIQUE,
                birth_year INTEGER,
                age_band TEXT,
                limb_notes TEXT NOT NULL DEFAULT '',
                created_at REAL NOT NULL,
                CHECK (birth_year IS NULL OR age_band IS NULL)
            ) STRICT""",
            """CREATE TABLE screenings (
                id INTEGER PRIMARY KEY,
                patient_id INTEGER NOT NULL REFERENCES patients(id),
                at REAL NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('initial', 'reconfirm')),
                limb TEXT NOT NULL CHECK (limb IN ('arm', 'leg')),
                side TEXT NOT NULL CHECK (side IN ('left', 'right')),
                answers TEXT NOT NULL,
                score INTEGER NOT NULL,
                outcome TEXT NOT NULL CHECK (outcome IN ('cleared', 'caution', 'blocked')),
                reasons TEXT NOT NULL,
                screened_by TEXT NOT NULL,
                confirmed_by TEXT,
                confirmed_at REAL,
                override_by TEXT,
                override_at REAL,
                override_reason TEXT
            ) STRICT""",
            "CREATE INDEX screenings_by_patient ON screenings(patient_id, at)",
            """CREATE TABLE lop_measurements (
                id INTEGER PRIMARY KEY,
                patient_id INTEGER NOT NULL REFERENCES patients(id),
                at REAL NOT NULL,
                limb TEXT NOT NULL CHECK (limb IN ('arm', 'leg')),
                side TEXT NOT NULL CHECK (side IN ('left', 'right')),
                posture TEXT NOT NULL CHECK (posture IN ('supine', 'seated', 'standing')),
                cuff TEXT NOT NULL,
                first_mmhg REAL NOT NULL,
                second_mmhg REAL,
                spread_flag INTEGER NOT NULL CHECK (spread_flag IN (0, 1)),
                method TEXT NOT NULL,
                measured_by TEXT NOT NULL
            ) STRICT""",
            "CREATE INDEX lop_by_patient ON lop_measurements(patient_id, at)",
            """CREATE TABLE sessions (
                id INTEGER PRIMARY KEY,
                patient_id INTEGER NOT NULL REFERENCES patients(id),
                screening_id INTEGER NOT NULL UNIQUE REFERENCES screenings(id),
                protocol_name TEXT NOT NULL,
                protocol_version INTEGER NOT NULL,
                protocol TEXT NOT NULL,
                limb TEXT NOT NULL CHECK (limb IN ('arm', 'leg')),
                side TEXT NOT NULL CHECK (side IN ('left', 'right')),
                posture TEXT NOT NULL CHECK (posture IN ('supine', 'seated', 'standing')),
                cuff TEXT NOT NULL,
                lop_id INTEGER REFERENCES lop_measurements(id),
                pct_lop REAL,
                target_mmhg REAL,
                clinician TEXT NOT NULL,
                started_at REAL NOT NULL,
                ended_at REAL,
                outcome TEXT CHECK (
                    outcome IS NULL OR outcome IN ('completed', 'stopped', 'aborted', 'alarm')
                ),
                end_reason TEXT NOT NULL DEFAULT ''
            ) STRICT""",
            "CREATE INDEX sessions_by_patient ON sessions(patient_id, started_at)",
            """CREATE TABLE sets (
                id INTEGER PRIMARY KEY,
                session_id INTEGER NOT NULL REFERENCES sessions(id),
                exercise_index INTEGER NOT NULL,
                exercise TEXT NOT NULL,
                set_index INTEGER NOT NULL,
                reps_target INTEGER,
                reps_done INTEGER,
                duration_s REAL,
                started_at REAL NOT NULL,
                ended_at REAL NOT NULL,
                rpe INTEGER CHECK (rpe BETWEEN 0 AND 10),
                pain INTEGER CHECK (pain BETWEEN 0 AND 10),
                UNIQUE (session_id, exercise_index, set_index)
            ) STRICT""",
            """CREATE TABLE events (
                id INTEGER PRIMARY KEY,
                session_id INTEGER REFERENCES sessions(id),
                at REAL NOT NULL,
                kind TEXT NOT NULL,
                name TEXT NOT NULL,
                detail TEXT NOT NULL DEFAULT '{}'
            ) STRICT""",
            "CREATE INDEX events_by_session ON events(session_id, at)",
            """CREATE TABLE alarms (
                id INTEGER PRIMARY KEY,
                session_id INTEGER REFERENCES sessions(id),
                at REAL NOT NULL,
                code TEXT NOT NULL,
                message TEXT NOT NULL,
                detail TEXT NOT NULL DEFAULT '{}',
                cleared_at REAL
            ) STRICT""",
            "CREATE INDEX alarms_by_session ON alarms(session_id, at)",
            """CREATE TABLE audit (
                id INTEGER PRIMARY KEY,
                at REAL NOT NULL,
                actor TEXT NOT NULL CHECK (actor <> ''),
                action TEXT NOT NULL,
                subject TEXT NOT NULL DEFAULT '',
                reason TEXT NOT NULL DEFAULT '',
                detail TEXT NOT NULL DEFAULT '{}'
            ) STRICT""",
            # The trail is evidence: the database itself refuses to rewrite it.
            """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
               BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
            """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
               BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
        ),
    ),
    Migration(
        2,
        "pressure trace: fixed-rate chunks of int16 deci-mmHg",
        (
            """CREATE TABLE trace_chunks (
                id INTEGER PRIMARY KEY,
                session_id INTEGER NOT NULL REFERENCES sessions(id),
                t0 REAL NOT NULL,
                rate_hz REAL NOT NULL CHECK (rate_hz > 0),
                n INTEGER NOT NULL CHECK (n > 0),
                samples BLOB NOT NULL CHECK (length(samples) = 2 * n)
            ) STRICT""",
            "CREATE INDEX trace_by_session ON trace_chunks(session_id, t0)",
        ),
    ),
)

LATEST = len(MIGRATIONS)


class MigrationError(Exception):
    """The schema cannot be brought to the version this software needs."""


def schema_version(conn: sqlite3.Connection) -> int:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    return int(version)


def migrate(
    conn: sqlite3.Connection,
    target: int | None = None,
    migrations: tuple[Migration, ...] = MIGRATIONS,
) -> int:
    """Apply the pending migrations up to `target` (default: all); return the new version.

    Each migration runs in its own transaction together with its `user_version` bump, so a crash
    or an error leaves the database at the previous version, never half-migrated. The version is
    re-read under the write lock because another process may have migrated in the meantime.
    """
    latest = len(migrations)
    target = latest if target is None else target
    if not 0 <= target <= latest:
        raise MigrationError(f"no schema version {target} (this software knows 0-{latest})")
    try:
        current = schema_version(conn)
    except sqlite3.Error as exc:
        raise MigrationError(f"cannot read the schema version: {exc}") from exc
    if current > latest:
        raise MigrationError(
            f"database schema version {current} is newer than this software ({latest}); "
            "install a newer release instead of downgrading"
        )
    for migration in migrations[current:target]:
        try:
            conn.execute("BEGIN IMMEDIATE")
            if schema_version(conn) >= migration.version:
                conn.execute("COMMIT")
                continue
            for statement in migration.statements:
                conn.execute(statement)
            # PRAGMA takes no parameters; the version is an int from the table above.
            conn.execute(f"PRAGMA user_version = {int(migration.version)}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise MigrationError(
                f"migration {migration.version} ({migration.summary}) failed: {exc}"
            ) from exc
    return schema_version(conn)
