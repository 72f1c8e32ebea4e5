"""Limb occlusion pressure: history with posture and cuff, recording readings, measuring via the controller."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from appliance import screening
from appliance.store import records
from appliance.store.records import LIMBS, LOP_METHODS, LOP_RANGE_MMHG, POSTURES, SIDES
from web.api.body import Body
from web.api.controller import controller_reply
from web.api.errors import ApiError
from web.api.patients import find_patient
from web.api.readiness import require_ready
from web.api.records_json import lop_json
from web.console_auth import clinician, clinician_required
from web.state import web_state

bp = Blueprint("lop", __name__)
MAX_CUFF_CHARS = 40


def _cuff(body: Body) -> str:
    cuff = body.text("cuff", "standard", max_len=MAX_CUFF_CHARS).strip()
    if not cuff or "\n" in cuff or "\t" in cuff:
        raise ApiError("cuff: name the cuff (e.g. its width), one line")
    return cuff


@bp.get("/patients/<clinic_id>/lop")
@clinician_required
def history(clinic_id: str) -> Any:
    limb = request.args.get("limb") or None
    side = request.args.get("side") or None
    if limb is not None and limb not in LIMBS:
        raise ApiError(f"limb: must be one of {', '.join(LIMBS)}")
    if side is not None and side not in SIDES:
        raise ApiError(f"side: must be one of {', '.join(SIDES)}")
    patient = find_patient(clinic_id)
    found = records.lop_history(web_state().store, patient.id, limb=limb, side=side)
    return jsonify({"lop": [lop_json(m) for m in found]})


@bp.post("/patients/<clinic_id>/lop")
@clinician_required
def record(clinic_id: str) -> Any:
    """Save one LOP: the reading(s) of the appliance's measurement, a Doppler value or a manual one.

    Good practice is two readings a minute apart; the record flags a spread over 15 mmHg.
    """
    body = Body(("limb", "side", "posture", "cuff", "first_mmhg", "second_mmhg", "method"))
    low, high = LOP_RANGE_MMHG
    limb = body.choice("limb", LIMBS)
    side = body.choice("side", SIDES)
    posture = body.choice("posture", POSTURES)
    cuff = _cuff(body)
    first = body.number("first_mmhg", low, high)
    second = body.number("second_mmhg", low, high, None)
    method = body.choice("method", LOP_METHODS, "oscillometric")
    patient = find_patient(clinic_id)
    try:
        saved = records.insert_lop(
            web_state().store,
            patient_id=patient.id,
            limb=limb,
            side=side,
            posture=posture,
            cuff=cuff,
            first_mmhg=first,
            second_mmhg=second,
            method=method,
            measured_by=clinician(),
        )
    except records.RecordError as exc:
        raise ApiError(str(exc)) from None
    return jsonify(lop_json(saved)), 201


@bp.post("/lop/measure")
@clinician_required
def measure() -> Any:
    """Start the controller's LOP measurement. It inflates the cuff on a limb, so it needs what a
    session needs: the screening clearance of that limb and side and a ready appliance."""
    body = Body(("clinic_id", "limb", "side", "posture", "cuff"))
    clinic_id = body.text("clinic_id", max_len=32)
    limb = body.choice("limb", LIMBS)
    side = body.choice("side", SIDES)
    posture = body.choice("posture", POSTURES)
    cuff = _cuff(body)
    state = web_state()
    patient = find_patient(clinic_id)
    result = screening.clearance(state.store, patient.id, limb=limb, side=side)
    if not result.allowed:
        raise ApiError(f"screening: {result.problem}", 409)
    if state.sessions.active():
        raise ApiError("a session is running: finish or abort it first", 409)
    require_ready("LOP measurement")
    return controller_reply(
        state.link.request(
            {"cmd": "measure_lop", "limb": limb, "side": side, "posture": posture, "cuff": cuff}
        )
    )
