"""Whether the appliance may treat a patient now, for the console and for what inflates a cuff."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from appliance.technician import DeviceNotReady, readiness_problems
from web.api.errors import ApiError
from web.console_auth import clinician_required
from web.state import web_state

bp = Blueprint("readiness", __name__)


def _problems() -> list[DeviceNotReady]:
    state = web_state()
    if not state.settings.device_checks:
        return []
    return readiness_problems(
        state.settings.data_dir,
        state.wall(),
        selftest_max_age_s=state.settings.selftest_max_age_s,
    )


def require_ready(what: str) -> None:
    """Refuse (409) `what` while the calibration or the self-test does not allow treatment."""
    problems = _problems()
    if problems:
        reasons = "; ".join(str(p) for p in problems)
        raise ApiError(
            f"{what}: the appliance is not ready: {reasons}",
            409,
            problems=[p.to_dict() for p in problems],
        )


@bp.get("/readiness")
@clinician_required
def readiness() -> Any:
    problems = _problems()
    return jsonify(
        {
            "ready": not problems,
            "checked": web_state().settings.device_checks,
            "problems": [p.to_dict() for p in problems],
        }
    )
