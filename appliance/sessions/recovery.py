"""Sessions left running by a process that died: end them honestly when the appliance restarts."""

from __future__ import annotations

from appliance.store import Store, records

INTERRUPTED_REASON = "interrupted: the session process ended before the session did"


def end_interrupted_sessions(store: Store, *, patient_id: int | None = None) -> list[int]:
    """Mark every running session (of one patient, if given) "aborted"; return their ids.

    Only call this where no runner can be alive for those sessions (at start-up of the one
    process that runs sessions). The end time is the last thing recorded for the session, so
    its duration is not stretched to the restart.
    """
    ended = []
    for session in records.list_sessions(store, patient_id=patient_id):
        if not session.running:
            continue
        last = store.query(
            "SELECT max(t) AS t FROM ("
            " SELECT max(at) AS t FROM events WHERE session_id = :id"
            " UNION ALL SELECT max(t0 + (n - 1) / rate_hz) FROM trace_chunks WHERE session_id = :id"
            " UNION ALL SELECT max(ended_at) FROM sets WHERE session_id = :id)",
            {"id": session.id},
        )[0]["t"]
        at = max(session.started_at, last if last is not None else session.started_at)
        records.end_session(store, session.id, outcome="aborted", reason=INTERRUPTED_REASON, at=at)
        ended.append(session.id)
    return ended
