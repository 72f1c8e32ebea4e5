"""A finished (or interrupted) session as plain data, read back from the store."""

from __future__ import annotations

from typing import Any

from appliance.store import Store, records


def session_summary(store: Store, session_id: int) -> dict[str, Any]:
    """Outcome, LOP, target, exercises, sets with ratings and alarms; JSON-ready.

    Built from the records rather than from the runner's memory, so it shows exactly what a
    report or an export will show.
    """
    session = records.get_session(store, session_id)
    sets = records.list_sets(store, session_id)
    alarms = records.list_alarms(store, session_id=session_id)
    ends = {
        e.detail.get("exercise_index"): e.detail
        for e in records.list_events(store, session_id=session_id, kind="exercise")
        if e.name == "exercise.end"
    }
    planned = session.protocol.get("exercises", [])
    exercises = []
    for index, exercise in enumerate(planned):
        done = [s for s in sets if s.exercise_index == index]
        exercises.append(
            {
                "index": index,
                "name": exercise.get("name"),
                "sets_planned": len(exercise.get("sets", [])),
                "sets_done": len(done),
                "ended_by": ends.get(index, {}).get("ended_by"),
            }
        )
    return {
        "session_id": session.id,
        "patient_id": session.patient_id,
        "protocol": session.protocol_name,
        "protocol_version": session.protocol_version,
        "limb": session.limb,
        "side": session.side,
        "posture": session.posture,
        "cuff": session.cuff,
        "outcome": session.outcome,
        "reason": session.end_reason,
        "started_at": session.started_at,
        "ended_at": session.ended_at,
        "duration_s": None
        if session.ended_at is None
        else round(session.ended_at - session.started_at, 1),
        "lop": _lop(store, session.lop_id),
        "pct_lop": session.pct_lop,
        "target_mmHg": session.target_mmhg,
        "sets_planned": sum(e["sets_planned"] for e in exercises),
        "sets_done": len(sets),
        "exercises": exercises,
        "sets": [
            {
                "exercise_index": s.exercise_index,
                "exercise": s.exercise,
                "set_index": s.set_index,
                "reps_target": s.reps_target,
                "reps_done": s.reps_done,
                "duration_s": s.duration_s,
                "rpe": s.rpe,
                "pain": s.pain,
            }
            for s in sets
        ],
        "alarms": [
            {
                "code": a.detail.get("controller_code", a.code),
                "message": a.message,
                "at": a.at,
                "cleared_at": a.cleared_at,
                "latched": a.detail.get("latched"),
            }
            for a in alarms
        ],
    }


def _lop(store: Store, lop_id: int | None) -> dict[str, Any] | None:
    if lop_id is None:
        return None
    lop = records.get_lop(store, lop_id)
    return {
        "lop_id": lop.id,
        "lop_mmHg": lop.lop_mmhg,
        "first_mmHg": lop.first_mmhg,
        "second_mmHg": lop.second_mmhg,
        "spread_mmHg": None if lop.spread_mmhg is None else round(lop.spread_mmhg, 1),
        "spread_flag": lop.spread_flag,
        "method": lop.method,
        "at": lop.at,
    }
