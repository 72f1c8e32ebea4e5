"""Sessions: start one from the console's plan, act on the running one, review past ones."""

from __future__ import annotations

from typing import Any

import numpy as np
from flask import Blueprint, Response, jsonify, request

from appliance.export import pressure_plot_svg
from appliance.sessions.plan import LOP_SOURCES, PlanError
from appliance.sessions.runner import SessionError
from appliance.sessions.summary import session_summary
from appliance.store import records, trace
from appliance.store.records import LIMBS, LOP_METHODS, LOP_RANGE_MMHG, POSTURES, SIDES
from web.api.body import Body
from web.api.errors import ApiError
from web.api.lop import MAX_CUFF_CHARS
from web.api.patients import find_patient
from web.api.protocols import find_protocol
from web.api.readiness import require_ready
from web.api.records_json import session_json, set_json
from web.console_auth import clinician, clinician_required
from web.session_link import SessionBusy
from web.state import web_state

bp = Blueprint("sessions", __name__)

# Runner actions the console offers, with the body fields each takes.
ACTION_FIELDS: dict[str, tuple[str, ...]] = {
    "pause": (),
    "resume": (),
    "end_set": (),
    "end_exercise": ("reason",),
    "confirm_cuff": (),
    "rate": ("rpe", "pain"),
    "accept_lop": (),
    "remeasure_lop": (),
    "use_recorded_lop": (),
    "enter_lop": ("first_mmhg", "second_mmhg", "method"),
    "override_screening": ("reason",),
    "confirm_caution": ("note",),
    "recheck_screening": (),
    "abort": ("reason",),
    "dismiss": (),
}


def _session_or_404(session_id: int) -> records.Session:
    try:
        return records.get_session(web_state().store, session_id)
    except records.RecordNotFound:
        raise ApiError(f"no session {session_id}", 404) from None


@bp.post("/sessions")
@clinician_required
def start_session() -> Any:
    body = Body(
        (
            "clinic_id",
            "protocol",
            "limb",
            "side",
            "posture",
            "cuff",
            "pct_lop",
            "above_80_reason",
            "lop_source",
        )
    )
    clinic_id = body.text("clinic_id", max_len=32)
    protocol_name = body.text("protocol", max_len=64)
    limb = body.choice("limb", LIMBS)
    side = body.choice("side", SIDES)
    posture = body.choice("posture", POSTURES)
    cuff = body.text("cuff", "standard", max_len=MAX_CUFF_CHARS).strip()
    pct_lop = body.number("pct_lop", 0, 1000, None)
    reason = body.text("above_80_reason", "", max_len=500)
    lop_source = body.choice("lop_source", LOP_SOURCES, "measure")
    patient = find_patient(clinic_id)
    protocol = find_protocol(protocol_name)
    state = web_state()
    if state.link.latest is None:
        raise ApiError("the controller is not answering: check it before starting", 503)
    require_ready("session")
    try:
        view = state.sessions.begin(
            patient_id=patient.id,
            clinic_id=patient.clinic_id,
            protocol=protocol,
            limb=limb,
            side=side,
            posture=posture,
            cuff=cuff,
            clinician=clinician(),
            pct_lop=pct_lop,
            above_80_reason=reason,
            lop_source=lop_source,
        )
    except SessionBusy as exc:
        raise ApiError(str(exc), 409) from None
    except PlanError as exc:
        raise ApiError(str(exc)) from None
    except SessionError as exc:
        raise ApiError(str(exc), 409) from None
    return jsonify(view), 201


@bp.get("/session")
def current_session() -> Any:
    """The running session's view; the patient screen reads it too, so no PIN."""
    return jsonify(web_state().sessions.view())


@bp.post("/session/actions/<action>")
@clinician_required
def session_action(action: str) -> Any:
    if action not in ACTION_FIELDS:
        raise ApiError(f"action: must be one of {', '.join(ACTION_FIELDS)}", 404)
    body = Body(ACTION_FIELDS[action])
    sessions = web_state().sessions
    who = clinician()
    args: dict[str, Any] = {}
    if action == "end_exercise":
        args["reason"] = body.text("reason", "clinician", max_len=200).strip() or "clinician"
    elif action == "rate":
        args["rpe"] = body.integer("rpe", 0, 10)
        args["pain"] = body.integer("pain", 0, 10)
    elif action == "enter_lop":
        low, high = LOP_RANGE_MMHG
        args["first_mmhg"] = body.number("first_mmhg", low, high)
        args["second_mmhg"] = body.number("second_mmhg", low, high, None)
        args["method"] = body.choice("method", LOP_METHODS, "doppler")
        args["by"] = who
    elif action in ("override_screening", "abort"):
        args["by"] = who
        args["reason"] = body.text("reason", max_len=1000)
    elif action == "confirm_caution":
        args["by"] = who
        args["note"] = body.text("note", "", max_len=500)
    try:
        if action == "dismiss":
            sessions.dismiss()
            return jsonify(sessions.view())
        return jsonify(sessions.act(action, **args))
    except SessionError as exc:
        raise ApiError(str(exc), 409) from None


@bp.get("/sessions")
@clinician_required
def list_sessions() -> Any:
    clinic_id = request.args.get("clinic_id")
    patient_id = find_patient(clinic_id).id if clinic_id else None
    found = records.list_sessions(web_state().store, patient_id=patient_id)
    return jsonify({"sessions": [session_json(s) for s in reversed(found)]})


@bp.get("/sessions/<int:session_id>")
@clinician_required
def session_detail(session_id: int) -> Any:
    store = web_state().store
    session = _session_or_404(session_id)
    return jsonify(
        {
            "session": session_json(session, with_protocol=True),
            "sets": [set_json(s) for s in records.list_sets(store, session_id)],
            "summary": session_summary(store, session_id),
        }
    )


@bp.get("/sessions/<int:session_id>/plot.svg")
@clinician_required
def session_plot(session_id: int) -> Any:
    store = web_state().store
    session = _session_or_404(session_id)
    samples = trace.read_trace(store, session_id)
    start = session.started_at
    sets = [
        (s.started_at - start, s.ended_at - start) for s in records.list_sets(store, session_id)
    ]
    alarms = [(a.at - start, a.code) for a in records.list_alarms(store, session_id=session_id)]
    svg = pressure_plot_svg(
        np.asarray(samples.t) - start,
        samples.mmhg,
        target_mmhg=session.target_mmhg,
        sets=sets,
        alarms=alarms,
    )
    return Response(svg, mimetype="image/svg+xml")
