"""Patients and the contraindication screen: scoring, blocking, confirmation, override, gate."""

from __future__ import annotations

import datetime as dt

import pytest

from appliance import patients, screening
from appliance.screening import Outcome, ScreeningBlocked, ScreeningError, evaluate
from appliance.store import Store, audit, records
from tests.clinic import Wall


@pytest.fixture
def patient(store: Store) -> patients.Patient:
    return patients.register_patient(store, "P-0042", birth_year=1971, by="dr-a")


def all_no() -> dict[str, bool]:
    return {q.id: False for q in screening.QUESTIONS}


def answers(*yes: str) -> dict[str, bool]:
    out = all_no()
    for qid in yes:
        out[qid] = True
    return out


def start_session(store: Store, s: records.Screening) -> records.Session:
    return records.start_session(
        store,
        patient_id=s.patient_id,
        screening_id=s.id,
        protocol={"name": "standard-30-15-15-15", "version": 1},
        limb=s.limb,
        side=s.side,
        posture="seated",
        cuff="c",
        clinician="dr-a",
    )


# ---------------------------------------------------------------- the form as data


def test_questions_are_data_the_ui_can_render() -> None:
    ids = [q.id for q in screening.QUESTIONS]
    assert len(ids) == len(set(ids))
    table = screening.question_table()
    assert [row["id"] for row in table] == ids
    for row in table:
        assert row["text_key"] == f"screening.{row['id']}"
        assert str(row["text"]).endswith("?")
        assert set(row) == {
            "id",
            "text_key",
            "text",
            "label",
            "points",
            "absolute",
            "limb_specific",
        }


def test_kacin_points_and_absolute_flags() -> None:
    by_id = screening.QUESTIONS_BY_ID
    kacin = {
        "dvt_history": 5,
        "acute_illness": 5,
        "bp_over_180_100": 5,
        "early_post_op": 5,
        "arrhythmia_ischaemia": 5,
        "pregnancy": 5,
        "varicose_veins": 4,
        "inactivity": 3,
        "af_heart_failure": 3,
        "bp_160_179": 3,
        "age_over_60": 3,
        "bmi_over_30": 3,
        "malignancy": 3,
    }
    for qid, points in kacin.items():
        assert by_id[qid].points == points, qid
    assert all(q.points == 0 for q in screening.QUESTIONS if q.id not in kacin)
    absolute = {q.id for q in screening.QUESTIONS if q.absolute}
    assert absolute == {
        "dvt_history",
        "acute_illness",
        "bp_over_180_100",
        "early_post_op",
        "arrhythmia_ischaemia",
        "pregnancy",
        "limb_tumour",
        "kidney_disease",
        "poor_circulation",
        "lymph_nodes_removed",
        "wound_or_fracture_under_cuff",
        "graft_or_dialysis_access",
        "sickle_cell",
    }
    cautions_only = {q.id for q in screening.QUESTIONS if not q.absolute and q.points == 0}
    assert cautions_only == {"diabetes", "smoking", "oestrogen_therapy"}
    assert {q.id for q in screening.QUESTIONS if q.limb_specific} == {
        "limb_tumour",
        "lymph_nodes_removed",
        "wound_or_fracture_under_cuff",
        "graft_or_dialysis_access",
    }


# ---------------------------------------------------------------- scoring


def test_all_no_is_cleared() -> None:
    result = evaluate(all_no())
    assert (result.outcome, result.score, result.reasons) == (Outcome.CLEARED, 0, ())


def test_four_points_is_a_caution_not_a_block() -> None:
    result = evaluate(answers("varicose_veins"))
    assert (result.outcome, result.score, result.score_blocks) == (Outcome.CAUTION, 4, False)
    assert result.reasons == ("Caution: Varicose veins",)


def test_two_three_point_items_exceed_the_score() -> None:
    result = evaluate(answers("age_over_60", "bmi_over_30"))
    assert result.outcome == Outcome.BLOCKED and result.score == 6 and result.score_blocks
    assert result.absolute == ()
    assert result.reasons == (
        "Kacin score 6 is above 4",
        "Caution: Age over 60",
        "Caution: BMI over 30",
    )


def test_an_absolute_item_blocks_even_without_points() -> None:
    result = evaluate(answers("kidney_disease"))
    assert (result.outcome, result.score, result.absolute) == (
        Outcome.BLOCKED,
        0,
        ("kidney_disease",),
    )
    assert result.reasons == ("Do not use BFR: Kidney disease",)


def test_a_five_point_item_blocks_both_ways() -> None:
    result = evaluate(answers("pregnancy", "diabetes"))
    assert result.outcome == Outcome.BLOCKED and result.score == 5
    assert result.reasons == (
        "Do not use BFR: Pregnancy",
        "Kacin score 5 is above 4",
        "Caution: Diabetes",
    )


def test_caution_only_items() -> None:
    result = evaluate(answers("smoking", "oestrogen_therapy"))
    assert (result.outcome, result.score) == (Outcome.CAUTION, 0)
    assert result.cautions == ("smoking", "oestrogen_therapy")


def test_incomplete_or_odd_answers_are_refused() -> None:
    partial = all_no()
    del partial["pregnancy"]
    with pytest.raises(ScreeningError, match="unanswered question.*pregnancy"):
        evaluate(partial)
    with pytest.raises(ScreeningError, match="unknown question.*flying"):
        evaluate({**all_no(), "flying": False})
    with pytest.raises(ScreeningError, match="smoking: answer must be true or false"):
        evaluate({**all_no(), "smoking": "no"})
    with pytest.raises(ScreeningError, match="only one blood-pressure band"):
        evaluate(answers("bp_over_180_100", "bp_160_179"))


# ---------------------------------------------------------------- recording and the gate


def test_first_screening_is_initial_then_reconfirm(store: Store, patient: patients.Patient) -> None:
    first = screening.record_screening(
        store, patient.id, all_no(), limb="leg", side="left", by="dr-a"
    )
    second = screening.record_screening(
        store, patient.id, all_no(), limb="arm", side="right", by="dr-a"
    )
    assert (first.kind, second.kind) == ("initial", "reconfirm")
    assert first.outcome == "cleared" and first.screened_by == "dr-a"
    assert screening.previous_answers(store, patient.id) == all_no()


def test_previous_answers_before_the_first_screening(
    store: Store, patient: patients.Patient
) -> None:
    assert screening.previous_answers(store, patient.id) is None


def test_cleared_screening_allows_inflation_on_that_limb_only(
    store: Store, patient: patients.Patient
) -> None:
    no_screen = screening.clearance(store, patient.id, limb="leg", side="left")
    assert not no_screen.allowed and "screen first" in no_screen.problem
    s = screening.record_screening(store, patient.id, all_no(), limb="leg", side="left", by="dr-a")
    assert screening.require_clearance(store, patient.id, limb="leg", side="left") == s
    with pytest.raises(ScreeningBlocked, match="no screening for the right leg"):
        screening.require_clearance(store, patient.id, limb="leg", side="right")


def test_caution_needs_a_clinician_confirmation(store: Store, patient: patients.Patient) -> None:
    s = screening.record_screening(
        store, patient.id, answers("diabetes"), limb="arm", side="left", by="dr-a"
    )
    with pytest.raises(ScreeningBlocked, match="must confirm the cautions"):
        screening.require_clearance(store, patient.id, limb="arm", side="left")
    confirmed = screening.confirm_caution(store, s.id, by="dr-b", note="HbA1c fine")
    assert confirmed.confirmed_by == "dr-b"
    assert screening.require_clearance(store, patient.id, limb="arm", side="left") == confirmed
    (entry,) = audit.audit_trail(store, action=audit.SCREENING_CONFIRM_CAUTION)
    assert (entry.actor, entry.subject, entry.reason) == ("dr-b", f"screening:{s.id}", "HbA1c fine")
    with pytest.raises(ScreeningError, match="already confirmed"):
        screening.confirm_caution(store, s.id, by="dr-b")


def test_a_block_stops_inflation_until_overridden_with_a_reason(
    store: Store, patient: patients.Patient, wall: Wall
) -> None:
    s = screening.record_screening(
        store, patient.id, answers("early_post_op"), limb="leg", side="left", by="dr-a"
    )
    assert s.outcome == "blocked"
    with pytest.raises(ScreeningBlocked, match="blocked.*Early post-operative period"):
        screening.require_clearance(store, patient.id, limb="leg", side="left")
    with pytest.raises(ScreeningError, match="only a caution is confirmed"):
        screening.confirm_caution(store, s.id, by="dr-a")

    for reason in ("", "   ", "surgeon ok", " " * 30 + "too short" + " " * 30):
        with pytest.raises(ScreeningError, match="at least 20 characters"):
            screening.override(store, s.id, by="dr-a", reason=reason)
    with pytest.raises(ScreeningError, match="must be named"):
        screening.override(store, s.id, by=" ", reason="Surgeon cleared BFR at week 2 in writing")
    assert audit.audit_trail(store, action=audit.SCREENING_OVERRIDE) == []
    assert not screening.clearance(store, patient.id, limb="leg", side="left").allowed

    wall.t += 30
    reason = "  Surgeon cleared BFR at week 2 in writing (letter 2025-06-01)  "
    overridden = screening.override(store, s.id, by="dr-b", reason=reason)
    assert overridden.override_by == "dr-b" and overridden.override_at == wall.t
    assert overridden.override_reason == reason.strip()
    assert screening.require_clearance(store, patient.id, limb="leg", side="left") == overridden

    (entry,) = audit.audit_trail(store, action=audit.SCREENING_OVERRIDE)
    assert (entry.actor, entry.at, entry.subject, entry.reason) == (
        "dr-b",
        wall.t,
        f"screening:{s.id}",
        reason.strip(),
    )
    assert entry.detail["reasons"] == [
        "Do not use BFR: Early post-operative period",
        "Kacin score 5 is above 4",
    ]
    assert entry.detail["patient_id"] == patient.id
    with pytest.raises(ScreeningError, match="already overridden"):
        screening.override(store, s.id, by="dr-b", reason=reason)


def test_only_a_blocked_screening_is_overridden(store: Store, patient: patients.Patient) -> None:
    s = screening.record_screening(store, patient.id, all_no(), limb="leg", side="left", by="dr-a")
    with pytest.raises(ScreeningError, match="only a blocked one"):
        screening.override(store, s.id, by="dr-a", reason="No reason to override anything here")


def test_a_screening_must_be_recent(store: Store, patient: patients.Patient, wall: Wall) -> None:
    screening.record_screening(store, patient.id, all_no(), limb="leg", side="left", by="dr-a")
    wall.t += screening.SCREENING_VALID_S + 1
    with pytest.raises(ScreeningBlocked, match="older than 2 h: re-confirm"):
        screening.require_clearance(store, patient.id, limb="leg", side="left")


def test_each_session_needs_its_own_screening(store: Store, patient: patients.Patient) -> None:
    s = screening.record_screening(store, patient.id, all_no(), limb="leg", side="left", by="dr-a")
    session = start_session(
        store, screening.require_clearance(store, patient.id, limb="leg", side="left")
    )
    assert session.screening_id == s.id
    with pytest.raises(ScreeningBlocked, match=f"used by session {session.id}"):
        screening.require_clearance(store, patient.id, limb="leg", side="left")
    again = screening.record_screening(
        store,
        patient.id,
        screening.previous_answers(store, patient.id) or {},
        limb="leg",
        side="left",
        by="dr-a",
    )
    assert again.kind == "reconfirm"
    assert screening.require_clearance(store, patient.id, limb="leg", side="left") == again


def test_a_newer_positive_answer_replaces_an_older_clearance(
    store: Store, patient: patients.Patient
) -> None:
    screening.record_screening(store, patient.id, all_no(), limb="leg", side="left", by="dr-a")
    screening.record_screening(
        store, patient.id, answers("acute_illness"), limb="leg", side="left", by="dr-a"
    )
    with pytest.raises(ScreeningBlocked, match="Acute illness"):
        screening.require_clearance(store, patient.id, limb="leg", side="left")


# ---------------------------------------------------------------- patients


def test_register_and_find_a_patient(store: Store, patient: patients.Patient) -> None:
    assert patients.get_patient(store, "P-0042") == patient
    assert patient.birth_year == 1971 and patient.age_band is None
    (entry,) = audit.audit_trail(store, action=audit.PATIENT_REGISTER)
    assert (entry.actor, entry.subject) == ("dr-a", "patient:P-0042")
    with pytest.raises(patients.UnknownPatient, match="P-9999"):
        patients.get_patient(store, "P-9999")
    with pytest.raises(patients.PatientError, match="already registered"):
        patients.register_patient(store, "P-0042", age_band="46-60", by="dr-a")


@pytest.mark.parametrize(
    ("clinic_id", "kwargs", "fragment"),
    [
        ("John Smith", {"birth_year": 1970}, "never a name"),
        ("", {"birth_year": 1970}, "clinic_id"),
        ("x" * 33, {"birth_year": 1970}, "clinic_id"),
        ("-dash", {"birth_year": 1970}, "clinic_id"),
        ("P-1", {}, "exactly one"),
        ("P-1", {"birth_year": 1970, "age_band": "46-60"}, "exactly one"),
        ("P-1", {"birth_year": 1850}, "birth_year: must be 1900-"),
        ("P-1", {"birth_year": "1970"}, "birth_year: must be a year"),
        ("P-1", {"age_band": "60-70"}, "age_band: must be one of"),
        ("P-1", {"birth_year": 1970, "limb_notes": "x" * 501}, "limb_notes: at most 500"),
    ],
)
def test_patient_records_stay_minimal_and_valid(
    store: Store, clinic_id: str, kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(patients.PatientError, match=fragment):
        patients.register_patient(store, clinic_id, by="dr-a", **kwargs)  # type: ignore[arg-type]
    assert patients.list_patients(store) == []


def test_limb_notes_update_is_audited(store: Store, patient: patients.Patient) -> None:
    updated = patients.update_limb_notes(store, "P-0042", " left knee: ACL repair ", by="dr-b")
    assert updated.limb_notes == "left knee: ACL repair"
    (entry,) = audit.audit_trail(store, action=audit.PATIENT_UPDATE)
    assert entry.actor == "dr-b"


@pytest.mark.parametrize(
    ("birth_year", "age_band", "expected"),
    [
        (1960, None, True),  # 64 or 65
        (1964, None, None),  # 60 or 61: the year alone cannot tell
        (1965, None, False),  # 59 or 60: not over 60
        (None, "61-70", True),
        (None, "46-60", False),
        (None, "81+", True),
    ],
)
def test_age_over_60(birth_year: int | None, age_band: str | None, expected: bool | None) -> None:
    p = records.Patient(1, "P-1", birth_year, age_band, "", 0.0)
    assert patients.age_over_60(p, dt.date(2025, 6, 1)) is expected
