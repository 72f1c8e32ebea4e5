"""The contraindication screening: the form, recording answers, confirm a caution, override a block."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from appliance import screening
from appliance.store import records
from appliance.store.records import LIMBS, SIDES
from web.api.body import Body
from web.api.errors import ApiError
from web.api.patients import find_patient
from web.api.records_json import screening_json
from web.console_auth import clinician, clinician_required
from web.state import web_state

bp = Blueprint("screening", __name__)


def _screening_or_404(screening_id: int) -> records.Screening:
    try:
        return records.get_screening(web_state().store, screening_id)
    except records.RecordNotFound:
        raise ApiError(f"no screening {screening_id}", 404) from None


@bp.get("/screening/questions")
@clinician_required
def questions() -> Any:
    return jsonify(
        {
            "questions": screening.question_table(),
            "kacin_max_points": screening.KACIN_MAX_POINTS,
            "min_override_reason_chars": screening.MIN_OVERRIDE_REASON_CHARS,
        }
    )


@bp.get("/patients/<clinic_id>/screenings")
@clinician_required
def list_screenings(clinic_id: str) -> Any:
    store = web_state().store
    patient = find_patient(clinic_id)
    return jsonify(
        {
            "screenings": [screening_json(s) for s in records.list_screenings(store, patient.id)],
            "previous_answers": screening.previous_answers(store, patient.id),
        }
    )


@bp.post("/patients/<clinic_id>/screenings")
@clinician_required
def record(clinic_id: str) -> Any:
    body = Body(("limb", "side", "answers"))
    limb = body.choice("limb", LIMBS)
    side = body.choice("side", SIDES)
    answers = body.mapping("answers")
    patient = find_patient(clinic_id)
    try:
        result = screening.evaluate(answers)
        saved = screening.record_screening(
            web_state().store, patient.id, answers, limb=limb, side=side, by=clinician()
        )
    except screening.ScreeningError as exc:
        raise ApiError(str(exc)) from None
    out = screening_json(saved)
    out["absolute"] = list(result.absolute)
    out["cautions"] = list(result.cautions)
    out["score_blocks"] = result.score_blocks
    return jsonify(out), 201


@bp.post("/screenings/<int:screening_id>/confirm")
@clinician_required
def confirm(screening_id: int) -> Any:
    body = Body(("note",))
    _screening_or_404(screening_id)
    try:
        saved = screening.confirm_caution(
            web_state().store,
            screening_id,
            by=clinician(),
            note=body.text("note", "", max_len=500),
        )
    except screening.ScreeningError as exc:
        raise ApiError(str(exc), 409) from None
    return jsonify(screening_json(saved))


@bp.post("/screenings/<int:screening_id>/override")
@clinician_required
def override(screening_id: int) -> Any:
    body = Body(("reason",))
    reason = body.text("reason", max_len=1000)
    _screening_or_404(screening_id)
    try:
        saved = screening.override(web_state().store, screening_id, by=clinician(), reason=reason)
    except screening.ScreeningError as exc:
        status = 400 if exc.args and str(exc).startswith("reason") else 409
        raise ApiError(str(exc), status) from None
    return jsonify(screening_json(saved))


@bp.get("/patients/<clinic_id>/clearance")
@clinician_required
def clearance(clinic_id: str) -> Any:
    limb = request.args.get("limb", "")
    side = request.args.get("side", "")
    if limb not in LIMBS:
        raise ApiError(f"limb: must be one of {', '.join(LIMBS)}")
    if side not in SIDES:
        raise ApiError(f"side: must be one of {', '.join(SIDES)}")
    patient = find_patient(clinic_id)
    result = screening.clearance(web_state().store, patient.id, limb=limb, side=side)
    return jsonify(
        {
            "allowed": result.allowed,
            "problem": result.problem,
            "screening": screening_json(result.screening) if result.screening else None,
        }
    )
