"""Contraindication screening before any inflation: the questions, the scoring and the gate.

The form joins the Kacin 2015 score (more than 4 points = no BFR) with the absolute "do not use"
list and the caution list of the clinic's guideline (see docs on the BFR domain). Each session
needs its own screening of the limb and side to be treated, recorded shortly before it: the first
one is the full form, later ones re-confirm it (the UI can pre-fill `previous_answers`). LOP
measurement inflates the cuff too, so it sits behind the same gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from appliance.store import Store, audit, records
from appliance.store.records import Screening

KACIN_MAX_POINTS = 4  # more than this = no BFR (Kacin 2015)
MIN_OVERRIDE_REASON_CHARS = 20  # long enough that "ok" or "see notes" cannot pass as a reason
SCREENING_VALID_S = 2 * 3600.0  # a screening is for this visit, not for the afternoon clinic


class Outcome(StrEnum):
    CLEARED = "cleared"
    CAUTION = "caution"  # inflation waits for a clinician's confirmation
    BLOCKED = "blocked"  # inflation waits for a clinician's override with a written reason


@dataclass(frozen=True)
class Question:
    """One yes/no item. `text` is the English wording; the UI translates by `text_key`."""

    id: str
    label: str  # short clinical wording for reports and reasons
    text: str  # the question as the patient reads it
    points: int  # Kacin points for "yes"; 0 when the item is not in the score
    absolute: bool  # "yes" means do not use BFR
    limb_specific: bool = False  # asked about the limb and side to be treated

    @property
    def text_key(self) -> str:
        return f"screening.{self.id}"


QUESTIONS: tuple[Question, ...] = (
    # Kacin items that are also absolute contraindications.
    Question(
        "dvt_history",
        "DVT or clotting disorder",
        "Have you ever had a blood clot in a vein (DVT) or a blood clotting disorder?",
        5,
        True,
    ),
    Question(
        "acute_illness",
        "Acute illness, fever or infection",
        "Are you ill at the moment, with a fever or an infection?",
        5,
        True,
    ),
    Question(
        "bp_over_180_100",
        "Blood pressure above 180/100",
        "Is your resting blood pressure today above 180/100 mmHg?",
        5,
        True,
    ),
    Question(
        "early_post_op",
        "Early post-operative period",
        "Have you had an operation in the last few weeks that your clinician has not cleared?",
        5,
        True,
    ),
    Question(
        "arrhythmia_ischaemia",
        "Serious arrhythmia or coronary ischaemia",
        "Do you have a serious heart rhythm problem or angina / coronary heart disease?",
        5,
        True,
    ),
    Question("pregnancy", "Pregnancy", "Are you pregnant, or could you be?", 5, True),
    # Kacin items that score but on their own only call for caution.
    Question("varicose_veins", "Varicose veins", "Do you have varicose veins?", 4, False),
    Question(
        "inactivity",
        "Prolonged inactivity",
        "Have you been mostly inactive, in bed or immobilised, for a long time?",
        3,
        False,
    ),
    Question(
        "af_heart_failure",
        "Atrial fibrillation or heart failure",
        "Do you have atrial fibrillation or heart failure?",
        3,
        False,
    ),
    Question(
        "bp_160_179",
        "Blood pressure 160-179 / 95-99",
        "Is your resting blood pressure today between 160/95 and 179/99 mmHg?",
        3,
        False,
    ),
    Question("age_over_60", "Age over 60", "Are you over 60 years old?", 3, False),
    Question("bmi_over_30", "BMI over 30", "Is your body mass index (BMI) over 30?", 3, False),
    Question(
        "malignancy",
        "Malignancy",
        "Do you have cancer, or are you being treated for cancer?",
        3,
        False,
    ),
    # Absolute contraindications outside the score.
    Question(
        "limb_tumour",
        "Cancer or tumour in the limb",
        "Is there a cancer or a tumour in the arm or leg to be treated?",
        0,
        True,
        limb_specific=True,
    ),
    Question("kidney_disease", "Kidney disease", "Do you have kidney disease?", 0, True),
    Question(
        "poor_circulation",
        "Poor circulation or peripheral vascular disease",
        "Do you have poor circulation or a disease of the blood vessels in your limbs?",
        0,
        True,
    ),
    Question(
        "lymph_nodes_removed",
        "Lymph nodes removed on that limb",
        "Have lymph nodes been removed on the side of the limb to be treated?",
        0,
        True,
        limb_specific=True,
    ),
    Question(
        "wound_or_fracture_under_cuff",
        "Open wound or fracture under the cuff",
        "Is there an open wound or a fracture where the cuff goes?",
        0,
        True,
        limb_specific=True,
    ),
    Question(
        "graft_or_dialysis_access",
        "Vascular graft or dialysis access in that limb",
        "Is there a vascular graft or a dialysis access (fistula) in the limb to be treated?",
        0,
        True,
        limb_specific=True,
    ),
    Question("sickle_cell", "Sickle cell disease", "Do you have sickle cell disease?", 0, True),
    # Cautions outside the score.
    Question("diabetes", "Diabetes", "Do you have diabetes?", 0, False),
    Question("smoking", "Smoking", "Do you smoke?", 0, False),
    Question(
        "oestrogen_therapy",
        "Oestrogen therapy",
        "Do you take oestrogen (hormone therapy or the contraceptive pill)?",
        0,
        False,
    ),
)

QUESTIONS_BY_ID: dict[str, Question] = {q.id: q for q in QUESTIONS}
# One blood-pressure reading falls in one band; "yes" to both means the form was misread.
_EXCLUSIVE = ("bp_over_180_100", "bp_160_179")


class ScreeningError(ValueError):
    """The answers or the clinician's action are not acceptable; the message says why."""


class ScreeningBlocked(Exception):
    """Inflation is not allowed for this patient, limb and side right now."""


@dataclass(frozen=True)
class ScreeningResult:
    outcome: Outcome
    score: int
    absolute: tuple[str, ...]  # ids of "yes" answers that alone forbid BFR
    cautions: tuple[str, ...]  # ids of the other "yes" answers
    score_blocks: bool  # the Kacin score is above its limit
    reasons: tuple[str, ...]  # English sentences, in the order a clinician should read them


@dataclass(frozen=True)
class Clearance:
    allowed: bool
    screening: Screening | None
    problem: str  # why not, for the clinician; empty when allowed


def evaluate(answers: Mapping[str, bool]) -> ScreeningResult:
    """Score the form. Every question must be answered: a missing answer is not a "no"."""
    unknown = sorted(set(answers) - set(QUESTIONS_BY_ID))
    if unknown:
        raise ScreeningError(f"unknown question(s): {', '.join(unknown)}")
    missing = [q.id for q in QUESTIONS if q.id not in answers]
    if missing:
        raise ScreeningError(f"unanswered question(s): {', '.join(missing)}")
    for qid, value in answers.items():
        if not isinstance(value, bool):
            raise ScreeningError(f"{qid}: answer must be true or false, got {value!r}")
    if all(answers[qid] for qid in _EXCLUSIVE):
        raise ScreeningError(f"{', '.join(_EXCLUSIVE)}: answer only one blood-pressure band")

    yes = [q for q in QUESTIONS if answers[q.id]]
    score = sum(q.points for q in yes)
    absolute = tuple(q.id for q in yes if q.absolute)
    cautions = tuple(q.id for q in yes if not q.absolute)
    score_blocks = score > KACIN_MAX_POINTS
    reasons = [f"Do not use BFR: {QUESTIONS_BY_ID[qid].label}" for qid in absolute]
    if score_blocks:
        reasons.append(f"Kacin score {score} is above {KACIN_MAX_POINTS}")
    reasons += [f"Caution: {QUESTIONS_BY_ID[qid].label}" for qid in cautions]
    if absolute or score_blocks:
        outcome = Outcome.BLOCKED
    elif cautions:
        outcome = Outcome.CAUTION
    else:
        outcome = Outcome.CLEARED
    return ScreeningResult(outcome, score, absolute, cautions, score_blocks, tuple(reasons))


def record_screening(
    store: Store,
    patient_id: int,
    answers: Mapping[str, bool],
    *,
    limb: str,
    side: str,
    by: str,
    at: float | None = None,
) -> Screening:
    """Evaluate and store the form; the first one of a patient is "initial", later "reconfirm"."""
    result = evaluate(answers)
    if not by.strip():
        raise ScreeningError("by: the screening clinician must be named")
    kind = "reconfirm" if records.list_screenings(store, patient_id) else "initial"
    return records.insert_screening(
        store,
        patient_id=patient_id,
        kind=kind,
        limb=limb,
        side=side,
        answers=dict(answers),
        score=result.score,
        outcome=str(result.outcome),
        reasons=result.reasons,
        screened_by=by,
        at=at,
    )


def confirm_caution(
    store: Store, screening_id: int, *, by: str, note: str = "", at: float | None = None
) -> Screening:
    """A clinician accepts the cautions of this screening; logged in the audit trail."""
    if not by.strip():
        raise ScreeningError("by: the confirming clinician must be named")
    # Check and write under one write lock, so two clinicians cannot both confirm.
    with store.transaction():
        screening = records.get_screening(store, screening_id)
        if screening.outcome != Outcome.CAUTION:
            raise ScreeningError(
                f"screening {screening_id} is {screening.outcome}: only a caution is confirmed"
            )
        if screening.confirmed_by is not None:
            raise ScreeningError(f"screening {screening_id} was already confirmed")
        confirmed = records.set_screening_confirmed(store, screening_id, by=by, at=at)
        audit.record_audit(
            store,
            actor=by,
            action=audit.SCREENING_CONFIRM_CAUTION,
            subject=f"screening:{screening_id}",
            reason=note.strip(),
            detail={"patient_id": screening.patient_id, "reasons": list(screening.reasons)},
            at=confirmed.confirmed_at,
        )
    return confirmed


def override(
    store: Store, screening_id: int, *, by: str, reason: str, at: float | None = None
) -> Screening:
    """A clinician allows BFR despite a blocking screening, in writing; logged in the audit trail."""
    reason = reason.strip()
    if len(reason) < MIN_OVERRIDE_REASON_CHARS:
        raise ScreeningError(
            f"reason: an override needs a written reason of at least {MIN_OVERRIDE_REASON_CHARS}"
            f" characters (got {len(reason)})"
        )
    if not by.strip():
        raise ScreeningError("by: the overriding clinician must be named")
    with store.transaction():
        screening = records.get_screening(store, screening_id)
        if screening.outcome != Outcome.BLOCKED:
            raise ScreeningError(
                f"screening {screening_id} is {screening.outcome}: only a blocked one is overridden"
            )
        if screening.override_by is not None:
            raise ScreeningError(f"screening {screening_id} was already overridden")
        overridden = records.set_screening_override(
            store, screening_id, by=by, reason=reason, at=at
        )
        audit.record_audit(
            store,
            actor=by,
            action=audit.SCREENING_OVERRIDE,
            subject=f"screening:{screening_id}",
            reason=reason,
            detail={
                "patient_id": screening.patient_id,
                "score": screening.score,
                "reasons": list(screening.reasons),
            },
            at=overridden.override_at,
        )
    return overridden


def permits_inflation(screening: Screening) -> bool:
    """Cleared, a caution a clinician confirmed, or a block a clinician overrode."""
    if screening.outcome == Outcome.CLEARED:
        return True
    if screening.outcome == Outcome.CAUTION:
        return screening.confirmed_by is not None
    return screening.override_by is not None


def clearance(
    store: Store,
    patient_id: int,
    *,
    limb: str,
    side: str,
    now: float | None = None,
    max_age_s: float = SCREENING_VALID_S,
) -> Clearance:
    """May the cuff inflate on this limb now? Uses the newest screening of that limb and side."""
    screening = records.latest_screening(store, patient_id, limb=limb, side=side)
    if screening is None:
        return Clearance(False, None, f"no screening for the {side} {limb}: screen first")
    now = store.now() if now is None else now
    if now - screening.at > max_age_s:
        return Clearance(
            False,
            screening,
            f"the screening is older than {max_age_s / 3600:g} h: re-confirm it",
        )
    used = records.session_for_screening(store, screening.id)
    if used is not None:
        return Clearance(
            False,
            screening,
            f"the screening was used by session {used.id}: re-confirm it before each session",
        )
    if not permits_inflation(screening):
        if screening.outcome == Outcome.CAUTION:
            why = "a clinician must confirm the cautions"
        else:
            why = "blocked; a clinician may override with a written reason"
        return Clearance(False, screening, f"{why} ({'; '.join(screening.reasons)})")
    return Clearance(True, screening, "")


def require_clearance(
    store: Store, patient_id: int, *, limb: str, side: str, now: float | None = None
) -> Screening:
    """The screening that allows inflation now, or `ScreeningBlocked` saying why not."""
    result = clearance(store, patient_id, limb=limb, side=side, now=now)
    if not result.allowed or result.screening is None:
        raise ScreeningBlocked(result.problem)
    return result.screening


def previous_answers(store: Store, patient_id: int) -> dict[str, bool] | None:
    """The newest answers of a patient, to pre-fill a re-confirmation; None before the first."""
    screening = records.latest_screening(store, patient_id)
    return None if screening is None else dict(screening.answers)


def question_table() -> list[dict[str, object]]:
    """The form as plain data for the UI to render."""
    return [
        {
            "id": q.id,
            "text_key": q.text_key,
            "text": q.text,
            "label": q.label,
            "points": q.points,
            "absolute": q.absolute,
            "limb_specific": q.limb_specific,
        }
        for q in QUESTIONS
    ]
