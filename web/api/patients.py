"""Patients: list, register (pseudonymous clinic ID and age only), look up, edit limb notes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from appliance import patients as patient_records
from appliance.patients import AGE_BANDS, Patient, PatientError, UnknownPatient
from appliance.store import records
from web.api.body import Body
from web.api.errors import ApiError
from web.api.records_json import lop_json, patient_json, screening_json, session_json
from web.console_auth import clinician, clinician_required
from web.state import web_state

bp = Blueprint("patients", __name__)


def find_patient(clinic_id: str) -> Patient:
    """The patient or a 404 naming the clinic ID."""
    try:
        return patient_records.get_patient(web_state().store, clinic_id)
    except UnknownPatient as exc:
        raise ApiError(str(exc), 404) from None


@bp.get("/patients")
@clinician_required
def list_patients() -> Any:
    store = web_state().store
    return jsonify(
        {
            "patients": [patient_json(p) for p in patient_records.list_patients(store)],
            "age_bands": list(AGE_BANDS),
        }
    )


@bp.post("/patients")
@clinician_required
def register() -> Any:
    body = Body(("clinic_id", "birth_year", "age_band", "limb_notes"))
    try:
        patient = patient_records.register_patient(
            web_state().store,
            body.text("clinic_id", max_len=32),
            birth_year=body.integer("birth_year", 1900, 2100, None),
            age_band=body.choice("age_band", AGE_BANDS, None),
            limb_notes=body.text("limb_notes", "", max_len=patient_records.MAX_LIMB_NOTES_CHARS),
            by=clinician(),
        )
    except PatientError as exc:
        status = 409 if "already registered" in str(exc) else 400
        raise ApiError(str(exc), status) from None
    return jsonify(patient_json(patient)), 201


@bp.get("/patients/<clinic_id>")
@clinician_required
def patient_detail(clinic_id: str) -> Any:
    store = web_state().store
    patient = find_patient(clinic_id)
    return jsonify(
        {
            "patient": patient_json(patient),
            "screenings": [screening_json(s) for s in records.list_screenings(store, patient.id)],
            "lop": [lop_json(m) for m in records.lop_history(store, patient.id)],
            "sessions": [
                session_json(s) for s in records.list_sessions(store, patient_id=patient.id)
            ],
        }
    )


@bp.patch("/patients/<clinic_id>")
@clinician_required
def update(clinic_id: str) -> Any:
    body = Body(("limb_notes",))
    find_patient(clinic_id)
    try:
        patient = patient_records.update_limb_notes(
            web_state().store,
            clinic_id,
            body.text("limb_notes", max_len=patient_records.MAX_LIMB_NOTES_CHARS),
            by=clinician(),
        )
    except PatientError as exc:
        raise ApiError(str(exc)) from None
    return jsonify(patient_json(patient))
