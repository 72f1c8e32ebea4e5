"""Typed rows of the clinic database: patients, screenings, LOP, sessions, sets, events, alarms."""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from appliance.store import audit
from appliance.store.db import Store, and_where, from_row, insert

LIMBS = ("arm", "leg")
SIDES = ("left", "right")
POSTURES = ("supine", "seated", "standing")
SCREENING_KINDS = ("initial", "reconfirm")
SCREENING_OUTCOMES = ("cleared", "caution", "blocked")
SESSION_OUTCOMES = ("completed", "stopped", "aborted", "alarm")
LOP_METHODS = ("oscillometric", "doppler", "manual")

# Good practice is two LOP readings a minute apart; a larger spread means measure again.
LOP_SPREAD_FLAG_MMHG = 15.0
# The appliance never inflates above 300 mmHg, so a larger LOP could not be used anyway; below 40
# is not an arterial occlusion pressure of a living limb but a failed measurement.
LOP_RANGE_MMHG = (40.0, 300.0)

_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


class RecordError(ValueError):
    """A value cannot be stored; the message names the field."""


class RecordNotFound(LookupError):
    """No row with that id."""


# ---------------------------------------------------------------- patients


@dataclass(frozen=True)
class Patient:
    id: int
    clinic_id: str
    birth_year: int | None
    age_band: str | None
    limb_notes: str
    created_at: float


def insert_patient(
    store: Store,
    *,
    clinic_id: str,
    birth_year: int | None = None,
    age_band: str | None = None,
    limb_notes: str = "",
    at: float | None = None,
) -> Patient:
    at = store.now() if at is None else at
    columns = dict(
        clinic_id=clinic_id,
        birth_year=birth_year,
        age_band=age_band,
        limb_notes=limb_notes,
        created_at=at,
    )
    try:
        with store.transaction() as conn:
            patient_id = insert(conn, "patients", columns)
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc):
            raise RecordError(f"clinic_id: {clinic_id!r} is already registered") from exc
        raise RecordError(f"patient: {exc}") from exc
    return Patient(id=patient_id, **columns)


def get_patient(store: Store, patient_id: int) -> Patient:
    return _patient(_one(store, "patients", patient_id))


def find_patient(store: Store, clinic_id: str) -> Patient | None:
    rows = store.query("SELECT * FROM patients WHERE clinic_id = ?", (clinic_id,))
    return _patient(rows[0]) if rows else None


def list_patients(store: Store) -> list[Patient]:
    return [_patient(r) for r in store.query("SELECT * FROM patients ORDER BY clinic_id")]


def set_limb_notes(store: Store, patient_id: int, limb_notes: str) -> Patient:
    with store.transaction() as conn:
        _require_row(conn, "patients", patient_id)
        conn.execute("UPDATE patients SET limb_notes = ? WHERE id = ?", (limb_notes, patient_id))
    return get_patient(store, patient_id)


def _patient(row: sqlite3.Row) -> Patient:
    return from_row(Patient, row)


# ---------------------------------------------------------------- screenings


@dataclass(frozen=True)
class Screening:
    id: int
    patient_id: int
    at: float
    kind: str
    limb: str
    side: str
    answers: dict[str, bool]
    score: int
    outcome: str
    reasons: tuple[str, ...]
    screened_by: str
    confirmed_by: str | None = None
    confirmed_at: float | None = None
    override_by: str | None = None
    override_at: float | None = None
    override_reason: str | None = None


def insert_screening(
    store: Store,
    *,
    patient_id: int,
    kind: str,
    limb: str,
    side: str,
    answers: Mapping[str, bool],
    score: int,
    outcome: str,
    reasons: tuple[str, ...] | list[str],
    screened_by: str,
    at: float | None = None,
) -> Screening:
    _one_of("kind", kind, SCREENING_KINDS)
    _one_of("limb", limb, LIMBS)
    _one_of("side", side, SIDES)
    _one_of("outcome", outcome, SCREENING_OUTCOMES)
    _named("screened_by", screened_by)
    at = store.now() if at is None else at
    with store.transaction() as conn:
        _require_row(conn, "patients", patient_id)
        screening_id = insert(
            conn,
            "screenings",
            dict(
                patient_id=patient_id,
                at=at,
                kind=kind,
                limb=limb,
                side=side,
                answers=json.dumps(dict(answers), sort_keys=True),
                score=score,
                outcome=outcome,
                reasons=json.dumps(list(reasons)),
                screened_by=screened_by,
            ),
        )
    return get_screening(store, screening_id)


def get_screening(store: Store, screening_id: int) -> Screening:
    return _screening(_one(store, "screenings", screening_id))


def list_screenings(store: Store, patient_id: int) -> list[Screening]:
    rows = store.query(
        "SELECT * FROM screenings WHERE patient_id = ? ORDER BY at, id", (patient_id,)
    )
    return [_screening(r) for r in rows]


def latest_screening(
    store: Store, patient_id: int, *, limb: str | None = None, side: str | None = None
) -> Screening | None:
    sql, params = and_where(
        "SELECT * FROM screenings WHERE patient_id = ?",
        [patient_id],
        {"limb = ?": limb, "side = ?": side},
    )
    rows = store.query(sql + " ORDER BY at DESC, id DESC LIMIT 1", params)
    return _screening(rows[0]) if rows else None


def set_screening_confirmed(
    store: Store, screening_id: int, *, by: str, at: float | None = None
) -> Screening:
    _named("by", by)
    at = store.now() if at is None else at
    with store.transaction() as conn:
        _require_row(conn, "screenings", screening_id)
        conn.execute(
            "UPDATE screenings SET confirmed_by = ?, confirmed_at = ? WHERE id = ?",
            (by, at, screening_id),
        )
    return get_screening(store, screening_id)


def set_screening_override(
    store: Store, screening_id: int, *, by: str, reason: str, at: float | None = None
) -> Screening:
    _named("by", by)
    at = store.now() if at is None else at
    with store.transaction() as conn:
        _require_row(conn, "screenings", screening_id)
        conn.execute(
            "UPDATE screenings SET override_by = ?, override_at = ?, override_reason = ?"
            " WHERE id = ?",
            (by, at, reason, screening_id),
        )
    return get_screening(store, screening_id)


def _screening(row: sqlite3.Row) -> Screening:
    return from_row(
        Screening, row, answers=json.loads, reasons=lambda text: tuple(json.loads(text))
    )


# ---------------------------------------------------------------- LOP measurements


@dataclass(frozen=True)
class LopMeasurement:
    id: int
    patient_id: int
    at: float
    limb: str
    side: str
    posture: str
    cuff: str
    first_mmhg: float
    second_mmhg: float | None
    spread_flag: bool
    method: str
    measured_by: str

    @property
    def lop_mmhg(self) -> float:
        """The LOP to prescribe from: the mean of both readings (the only one if single)."""
        if self.second_mmhg is None:
            return self.first_mmhg
        return (self.first_mmhg + self.second_mmhg) / 2.0

    @property
    def spread_mmhg(self) -> float | None:
        if self.second_mmhg is None:
            return None
        return abs(self.first_mmhg - self.second_mmhg)


def insert_lop(
    store: Store,
    *,
    patient_id: int,
    limb: str,
    side: str,
    posture: str,
    cuff: str,
    first_mmhg: float,
    second_mmhg: float | None = None,
    method: str = "oscillometric",
    measured_by: str,
    at: float | None = None,
) -> LopMeasurement:
    """Store a measurement; the spread flag is computed here so no caller can forget it."""
    _one_of("limb", limb, LIMBS)
    _one_of("side", side, SIDES)
    _one_of("posture", posture, POSTURES)
    _one_of("method", method, LOP_METHODS)
    _named("cuff", cuff)
    _named("measured_by", measured_by)
    first = _mmhg("first_mmhg", first_mmhg)
    second = None if second_mmhg is None else _mmhg("second_mmhg", second_mmhg)
    spread = second is not None and abs(first - second) > LOP_SPREAD_FLAG_MMHG
    at = store.now() if at is None else at
    columns = dict(
        patient_id=patient_id,
        at=at,
        limb=limb,
        side=side,
        posture=posture,
        cuff=cuff,
        first_mmhg=first,
        second_mmhg=second,
        method=method,
        measured_by=measured_by,
    )
    with store.transaction() as conn:
        _require_row(conn, "patients", patient_id)
        lop_id = insert(conn, "lop_measurements", {**columns, "spread_flag": int(spread)})
    return LopMeasurement(id=lop_id, spread_flag=spread, **columns)


def get_lop(store: Store, lop_id: int) -> LopMeasurement:
    return _lop(_one(store, "lop_measurements", lop_id))


def lop_history(
    store: Store,
    patient_id: int,
    *,
    limb: str | None = None,
    side: str | None = None,
    until: float | None = None,
) -> list[LopMeasurement]:
    """Measurements oldest first, optionally for one limb/side and up to a time."""
    sql, params = and_where(
        "SELECT * FROM lop_measurements WHERE patient_id = ?",
        [patient_id],
        {"limb = ?": limb, "side = ?": side, "at <= ?": until},
    )
    return [_lop(r) for r in store.query(sql + " ORDER BY at, id", params)]


def latest_lop(
    store: Store,
    patient_id: int,
    *,
    limb: str,
    side: str,
    posture: str | None = None,
    cuff: str | None = None,
) -> LopMeasurement | None:
    """The newest LOP for that limb and side; LOP depends on posture and cuff, so pass them."""
    sql, params = and_where(
        "SELECT * FROM lop_measurements WHERE patient_id = ? AND limb = ? AND side = ?",
        [patient_id, limb, side],
        {"posture = ?": posture, "cuff = ?": cuff},
    )
    rows = store.query(sql + " ORDER BY at DESC, id DESC LIMIT 1", params)
    return _lop(rows[0]) if rows else None


def _lop(row: sqlite3.Row) -> LopMeasurement:
    return from_row(LopMeasurement, row, spread_flag=bool)


# ---------------------------------------------------------------- sessions


@dataclass(frozen=True)
class Session:
    id: int
    patient_id: int
    screening_id: int
    protocol_name: str
    protocol_version: int
    protocol: dict[str, Any]
    limb: str
    side: str
    posture: str
    cuff: str
    lop_id: int | None
    pct_lop: float | None
    target_mmhg: float | None
    clinician: str
    started_at: float
    ended_at: float | None
    outcome: str | None
    end_reason: str

    @property
    def running(self) -> bool:
        return self.ended_at is None


def start_session(
    store: Store,
    *,
    patient_id: int,
    screening_id: int,
    protocol: Mapping[str, Any],
    limb: str,
    side: str,
    posture: str,
    cuff: str,
    clinician: str,
    lop_id: int | None = None,
    pct_lop: float | None = None,
    target_mmhg: float | None = None,
    at: float | None = None,
) -> Session:
    """Open a session; `protocol` is the snapshot as run (with `name` and `version`).

    The snapshot keeps the record meaningful after the protocol file changes. A screening covers
    exactly one session (the column is UNIQUE): the form is re-confirmed before each one.
    """
    _one_of("limb", limb, LIMBS)
    _one_of("side", side, SIDES)
    _one_of("posture", posture, POSTURES)
    _named("cuff", cuff)
    _named("clinician", clinician)
    name, version = protocol.get("name"), protocol.get("version")
    if not isinstance(name, str) or not name or not isinstance(version, int):
        raise RecordError("protocol: the snapshot needs a `name` and an integer `version`")
    at = store.now() if at is None else at
    try:
        with store.transaction() as conn:
            _require_row(conn, "patients", patient_id)
            row = _require_row(conn, "screenings", screening_id)
            if row["patient_id"] != patient_id:
                raise RecordError(
                    f"screening_id: screening {screening_id} belongs to another patient"
                )
            if lop_id is not None:
                _require_row(conn, "lop_measurements", lop_id)
            session_id = insert(
                conn,
                "sessions",
                dict(
                    patient_id=patient_id,
                    screening_id=screening_id,
                    protocol_name=name,
                    protocol_version=version,
                    protocol=_json("protocol", dict(protocol)),
                    limb=limb,
                    side=side,
                    posture=posture,
                    cuff=cuff,
                    lop_id=lop_id,
                    pct_lop=pct_lop,
                    target_mmhg=target_mmhg,
                    clinician=clinician,
                    started_at=at,
                ),
            )
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc):
            raise RecordError(
                f"screening_id: screening {screening_id} was already used by a session;"
                " re-confirm the screening"
            ) from exc
        raise RecordError(f"session: {exc}") from exc
    return get_session(store, session_id)


def set_session_target(
    store: Store, session_id: int, *, lop_id: int, pct_lop: float, target_mmhg: float
) -> Session:
    """Record the LOP the session uses and the cuff pressure derived from it."""
    with store.transaction() as conn:
        _require_row(conn, "sessions", session_id)
        _require_row(conn, "lop_measurements", lop_id)
        conn.execute(
            "UPDATE sessions SET lop_id = ?, pct_lop = ?, target_mmhg = ? WHERE id = ?",
            (lop_id, _finite("pct_lop", pct_lop), _finite("target_mmhg", target_mmhg), session_id),
        )
    return get_session(store, session_id)


def end_session(
    store: Store,
    session_id: int,
    *,
    outcome: str,
    reason: str = "",
    at: float | None = None,
) -> Session:
    _one_of("outcome", outcome, SESSION_OUTCOMES)
    at = store.now() if at is None else at
    with store.transaction() as conn:
        row = _require_row(conn, "sessions", session_id)
        if row["ended_at"] is not None:
            raise RecordError(f"session {session_id} already ended ({row['outcome']})")
        conn.execute(
            "UPDATE sessions SET ended_at = ?, outcome = ?, end_reason = ? WHERE id = ?",
            (at, outcome, reason, session_id),
        )
    return get_session(store, session_id)


def abort_session(
    store: Store, session_id: int, *, by: str, reason: str, at: float | None = None
) -> Session:
    """A clinician ends a session early; the session and the audit entry commit together."""
    _named("by", by)
    if not reason.strip():
        raise RecordError("reason: say why the session was aborted")
    with store.transaction():
        session = end_session(store, session_id, outcome="aborted", reason=reason, at=at)
        audit.record_audit(
            store,
            actor=by,
            action=audit.SESSION_ABORT,
            subject=f"session:{session_id}",
            reason=reason,
            at=session.ended_at,
        )
    return session


def get_session(store: Store, session_id: int) -> Session:
    return _session(_one(store, "sessions", session_id))


def list_sessions(
    store: Store, *, patient_id: int | None = None, since: float | None = None
) -> list[Session]:
    """Sessions oldest first, optionally of one patient and started at or after `since`."""
    sql, params = and_where(
        "SELECT * FROM sessions WHERE 1",
        [],
        {"patient_id = ?": patient_id, "started_at >= ?": since},
    )
    return [_session(r) for r in store.query(sql + " ORDER BY started_at, id", params)]


def session_for_screening(store: Store, screening_id: int) -> Session | None:
    rows = store.query("SELECT * FROM sessions WHERE screening_id = ?", (screening_id,))
    return _session(rows[0]) if rows else None


def _session(row: sqlite3.Row) -> Session:
    return from_row(Session, row, protocol=json.loads)


# ---------------------------------------------------------------- sets


@dataclass(frozen=True)
class SetRecord:
    id: int
    session_id: int
    exercise_index: int
    exercise: str
    set_index: int
    reps_target: int | None
    reps_done: int | None
    duration_s: float | None
    started_at: float
    ended_at: float
    rpe: int | None
    pain: int | None


def record_set(
    store: Store,
    *,
    session_id: int,
    exercise_index: int,
    exercise: str,
    set_index: int,
    started_at: float,
    ended_at: float,
    reps_target: int | None = None,
    reps_done: int | None = None,
    duration_s: float | None = None,
    rpe: int | None = None,
    pain: int | None = None,
) -> SetRecord:
    """A finished set; RPE and pain may follow later through `rate_set`."""
    for field, value in (("exercise_index", exercise_index), ("set_index", set_index)):
        if not _is_int(value) or value < 0:
            raise RecordError(f"{field}: must be a non-negative integer, got {value!r}")
    for field, value in (("reps_target", reps_target), ("reps_done", reps_done)):
        if value is not None and (not _is_int(value) or value < 0):
            raise RecordError(f"{field}: must be a non-negative integer, got {value!r}")
    if duration_s is not None:
        _finite("duration_s", duration_s)
    if ended_at < started_at:
        raise RecordError("ended_at: is before started_at")
    _rating("rpe", rpe)
    _rating("pain", pain)
    columns = dict(
        session_id=session_id,
        exercise_index=exercise_index,
        exercise=exercise,
        set_index=set_index,
        reps_target=reps_target,
        reps_done=reps_done,
        duration_s=duration_s,
        started_at=started_at,
        ended_at=ended_at,
        rpe=rpe,
        pain=pain,
    )
    try:
        with store.transaction() as conn:
            _require_row(conn, "sessions", session_id)
            set_id = insert(conn, "sets", columns)
    except sqlite3.IntegrityError as exc:
        raise RecordError(
            f"set_index: set {set_index} of exercise {exercise_index} is already recorded"
        ) from exc
    return SetRecord(id=set_id, **columns)


def rate_set(store: Store, set_id: int, *, rpe: int | None, pain: int | None) -> SetRecord:
    """The patient's effort (RPE) and discomfort, both 0-10."""
    _rating("rpe", rpe)
    _rating("pain", pain)
    with store.transaction() as conn:
        _require_row(conn, "sets", set_id)
        conn.execute("UPDATE sets SET rpe = ?, pain = ? WHERE id = ?", (rpe, pain, set_id))
    return _set(_one(store, "sets", set_id))


def list_sets(store: Store, session_id: int) -> list[SetRecord]:
    rows = store.query(
        "SELECT * FROM sets WHERE session_id = ? ORDER BY exercise_index, set_index",
        (session_id,),
    )
    return [_set(r) for r in rows]


def _set(row: sqlite3.Row) -> SetRecord:
    return from_row(SetRecord, row)


# ---------------------------------------------------------------- events (prompts included)


@dataclass(frozen=True)
class Event:
    id: int
    session_id: int | None
    at: float
    kind: str
    name: str
    detail: dict[str, Any]


def record_event(
    store: Store,
    *,
    kind: str,
    name: str,
    session_id: int | None = None,
    detail: Mapping[str, Any] | None = None,
    at: float | None = None,
) -> Event:
    """Something that happened: `kind` groups (prompt, state, input, stop, note, ...), `name` says
    which, e.g. kind="prompt", name="prompt.do_reps", detail={"reps": 30}."""
    _dotted("kind", kind)
    _dotted("name", name)
    event_id, at, detail = _insert_logged(
        store, "events", session_id, detail, at, kind=kind, name=name
    )
    return Event(event_id, session_id, at, kind, name, detail)


def list_events(
    store: Store,
    *,
    session_id: int | None = None,
    kind: str | None = None,
    after_id: int | None = None,
) -> list[Event]:
    """Events in the order they were recorded; `after_id` lets a UI poll for new ones."""
    sql, params = and_where(
        "SELECT * FROM events WHERE 1",
        [],
        {"session_id = ?": session_id, "kind = ?": kind, "id > ?": after_id},
    )
    return [_event(r) for r in store.query(sql + " ORDER BY id", params)]


def _event(row: sqlite3.Row) -> Event:
    return from_row(Event, row, detail=json.loads)


# ---------------------------------------------------------------- alarms


@dataclass(frozen=True)
class Alarm:
    id: int
    session_id: int | None
    at: float
    code: str
    message: str
    detail: dict[str, Any]
    cleared_at: float | None

    @property
    def active(self) -> bool:
        return self.cleared_at is None


def record_alarm(
    store: Store,
    *,
    code: str,
    message: str,
    session_id: int | None = None,
    detail: Mapping[str, Any] | None = None,
    at: float | None = None,
) -> Alarm:
    _dotted("code", code)
    alarm_id, at, detail = _insert_logged(
        store, "alarms", session_id, detail, at, code=code, message=message
    )
    return Alarm(alarm_id, session_id, at, code, message, detail, None)


def clear_alarm(store: Store, alarm_id: int, *, at: float | None = None) -> Alarm:
    at = store.now() if at is None else at
    with store.transaction() as conn:
        _require_row(conn, "alarms", alarm_id)
        conn.execute(
            "UPDATE alarms SET cleared_at = ? WHERE id = ? AND cleared_at IS NULL", (at, alarm_id)
        )
    return _alarm(_one(store, "alarms", alarm_id))


def list_alarms(
    store: Store, *, session_id: int | None = None, active_only: bool = False
) -> list[Alarm]:
    sql, params = and_where("SELECT * FROM alarms WHERE 1", [], {"session_id = ?": session_id})
    if active_only:
        sql += " AND cleared_at IS NULL"
    return [_alarm(r) for r in store.query(sql + " ORDER BY id", params)]


def _alarm(row: sqlite3.Row) -> Alarm:
    return from_row(Alarm, row, detail=json.loads)


# ---------------------------------------------------------------- checks shared by the above


def _insert_logged(
    store: Store,
    table: str,
    session_id: int | None,
    detail: Mapping[str, Any] | None,
    at: float | None,
    **columns: Any,
) -> tuple[int, float, dict[str, Any]]:
    """Insert an event or alarm row, of a session or none; return its id, time and detail."""
    detail = dict(detail or {})
    text = _json("detail", detail)
    at = store.now() if at is None else at
    with store.transaction() as conn:
        if session_id is not None:
            _require_row(conn, "sessions", session_id)
        row_id = insert(conn, table, dict(session_id=session_id, at=at, **columns, detail=text))
    return row_id, at, detail


def _one(store: Store, table: str, row_id: int) -> sqlite3.Row:
    # `table` only ever comes from the literals in this module.
    rows = store.query(f"SELECT * FROM {table} WHERE id = ?", (row_id,))
    if not rows:
        raise RecordNotFound(f"no {table} row with id {row_id}")
    return rows[0]


def _require_row(conn: sqlite3.Connection, table: str, row_id: int) -> sqlite3.Row:
    row = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (row_id,)).fetchone()
    if row is None:
        raise RecordNotFound(f"no {table} row with id {row_id}")
    return row


def _one_of(field: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise RecordError(f"{field}: must be one of {', '.join(allowed)}, got {value!r}")


def _named(field: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"{field}: must be a non-empty text")


def _dotted(field: str, value: object) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        raise RecordError(f"{field}: {value!r} is not a dotted lower-case name")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecordError(f"{field}: must be a finite number, got {value!r}")
    return float(value)


def _mmhg(field: str, value: object) -> float:
    mmhg = _finite(field, value)
    low, high = LOP_RANGE_MMHG
    if not low <= mmhg <= high:
        raise RecordError(f"{field}: {mmhg:g} mmHg is outside {low:g}-{high:g} mmHg")
    return mmhg


def _rating(field: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10:
        raise RecordError(f"{field}: must be a whole number 0-10, got {value!r}")


def _json(field: str, value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"{field}: cannot be stored as JSON ({exc})") from exc
