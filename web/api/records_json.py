"""Clinic records as JSON for the screens: plain fields plus the derived values clinicians read."""

from __future__ import annotations

import dataclasses
from typing import Any

from appliance.store.records import LopMeasurement, Patient, Screening, Session, SetRecord


def patient_json(patient: Patient) -> dict[str, Any]:
    return dataclasses.asdict(patient)


def screening_json(screening: Screening) -> dict[str, Any]:
    out = dataclasses.asdict(screening)
    out["reasons"] = list(screening.reasons)
    return out


def lop_json(lop: LopMeasurement) -> dict[str, Any]:
    out = dataclasses.asdict(lop)
    out["lop_mmhg"] = round(lop.lop_mmhg, 1)
    out["spread_mmhg"] = None if lop.spread_mmhg is None else round(lop.spread_mmhg, 1)
    return out


def session_json(session: Session, *, with_protocol: bool = False) -> dict[str, Any]:
    out = dataclasses.asdict(session)
    if not with_protocol:
        out.pop("protocol")
    out["running"] = session.running
    return out


def set_json(record: SetRecord) -> dict[str, Any]:
    return dataclasses.asdict(record)
