"""Pseudonymous patient records: a clinic ID, an age, and notes about the limbs, nothing more.

The appliance never holds a name, address or date of birth: the clinic's own system maps its
clinic ID to a person. Age is a birth year or a band, enough for the "over 60" screening item.
"""

from __future__ import annotations

import datetime as dt
import re

from appliance.store import Store, audit, records
from appliance.store.records import Patient

__all__ = [
    "AGE_BANDS",
    "Patient",
    "PatientError",
    "UnknownPatient",
    "age_over_60",
    "get_patient",
    "list_patients",
    "register_patient",
    "update_limb_notes",
]

# Bands split at 60 so a band alone answers the screening's "age over 60".
AGE_BANDS = ("18-30", "31-45", "46-60", "61-70", "71-80", "81+")
MAX_LIMB_NOTES_CHARS = 500
_CLINIC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


class PatientError(ValueError):
    """A patient record value is not acceptable; the message names the field."""


class UnknownPatient(LookupError):
    """No patient with that clinic ID."""


def register_patient(
    store: Store,
    clinic_id: str,
    *,
    birth_year: int | None = None,
    age_band: str | None = None,
    limb_notes: str = "",
    by: str,
    at: float | None = None,
) -> Patient:
    """Add a patient, giving exactly one of `birth_year` or `age_band`; logged in the audit trail."""
    _check_clinic_id(clinic_id)
    if (birth_year is None) == (age_band is None):
        raise PatientError("birth_year, age_band: give exactly one of them")
    if birth_year is not None:
        this_year = dt.date.today().year
        if isinstance(birth_year, bool) or not isinstance(birth_year, int):
            raise PatientError(f"birth_year: must be a year, got {birth_year!r}")
        if not 1900 <= birth_year <= this_year:
            raise PatientError(f"birth_year: must be 1900-{this_year}, got {birth_year}")
    if age_band is not None and age_band not in AGE_BANDS:
        raise PatientError(f"age_band: must be one of {', '.join(AGE_BANDS)}, got {age_band!r}")
    _check_notes(limb_notes)
    try:
        with store.transaction():
            patient = records.insert_patient(
                store,
                clinic_id=clinic_id,
                birth_year=birth_year,
                age_band=age_band,
                limb_notes=limb_notes.strip(),
                at=at,
            )
            audit.record_audit(
                store,
                actor=by,
                action=audit.PATIENT_REGISTER,
                subject=f"patient:{clinic_id}",
                at=patient.created_at,
            )
    except (records.RecordError, audit.AuditError) as exc:
        raise PatientError(str(exc)) from exc
    return patient


def get_patient(store: Store, clinic_id: str) -> Patient:
    patient = records.find_patient(store, clinic_id)
    if patient is None:
        raise UnknownPatient(f"no patient with clinic ID {clinic_id!r}")
    return patient


def list_patients(store: Store) -> list[Patient]:
    return records.list_patients(store)


def update_limb_notes(store: Store, clinic_id: str, limb_notes: str, *, by: str) -> Patient:
    """Replace the limb notes (e.g. "left knee: ACL repair 2024-05"); logged in the audit trail."""
    _check_notes(limb_notes)
    patient = get_patient(store, clinic_id)
    try:
        with store.transaction():
            updated = records.set_limb_notes(store, patient.id, limb_notes.strip())
            audit.record_audit(
                store,
                actor=by,
                action=audit.PATIENT_UPDATE,
                subject=f"patient:{clinic_id}",
                detail={"field": "limb_notes"},
            )
    except audit.AuditError as exc:
        raise PatientError(str(exc)) from exc
    return updated


def age_over_60(patient: Patient, on: dt.date) -> bool | None:
    """True or False when the record settles it on that date, None when it cannot.

    A birth year alone leaves a year of doubt: born in 1964, a patient is 60 or 61 in 2025.
    """
    if patient.age_band is not None:
        return patient.age_band not in AGE_BANDS[:3]
    if patient.birth_year is None:
        return None
    oldest = on.year - patient.birth_year  # birthday already passed this year
    if oldest - 1 > 60:
        return True
    if oldest <= 60:
        return False
    return None


def _check_clinic_id(clinic_id: object) -> None:
    if not isinstance(clinic_id, str) or not _CLINIC_ID.match(clinic_id):
        raise PatientError(
            f"clinic_id: {clinic_id!r} must be 1-32 letters, digits, '.', '_' or '-' and start"
            " with a letter or digit (a pseudonym from the clinic's system, never a name)"
        )


def _check_notes(limb_notes: object) -> None:
    if not isinstance(limb_notes, str):
        raise PatientError("limb_notes: must be text")
    if len(limb_notes) > MAX_LIMB_NOTES_CHARS:
        raise PatientError(
            f"limb_notes: at most {MAX_LIMB_NOTES_CHARS} characters (got {len(limb_notes)})"
        )
