"""The console lock over HTTP: first-run PIN, unlock with a clinician's name, lock, change PIN."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify

from appliance.store import audit
from web.api.body import Body
from web.api.errors import ApiError
from web.console_auth import current_clinician, lock, unlock
from web.pin import PinError
from web.state import web_state

log = logging.getLogger("bfr.web.console")
bp = Blueprint("console", __name__)
MAX_CLINICIAN_CHARS = 40


def _clinician_name(body: Body) -> str:
    name = body.text("clinician", max_len=MAX_CLINICIAN_CHARS).strip()
    if not name or "\n" in name or "\t" in name:
        raise ApiError("clinician: your name or initials, for the records")
    return name


def _console_view() -> dict[str, Any]:
    state = web_state()
    clinician = current_clinician()
    return {
        "pin_set": state.pin.is_set(),
        "unlocked": clinician is not None,
        "clinician": clinician,
        "retry_in_s": round(state.throttle.wait_s(), 1),
        "idle_lock_s": state.settings.console_idle_lock_s,
    }


def _check_pin(pin: Any) -> None:
    """Throttled PIN check: a lockout refuses even the right PIN until it has run out."""
    state = web_state()
    wait = state.throttle.wait_s()
    if wait > 0:
        raise ApiError(f"too many wrong PINs: try again in {wait:.0f} s", 429, retry_in_s=wait)
    if not isinstance(pin, str) or not state.pin.verify(pin):
        lockout = state.throttle.failed()
        log.warning("wrong console PIN%s", f"; locked for {lockout:.0f} s" if lockout else "")
        if lockout:
            raise ApiError(
                f"too many wrong PINs: try again in {lockout:.0f} s", 429, retry_in_s=lockout
            )
        raise ApiError("wrong PIN", 403)
    state.throttle.succeeded()


@bp.get("/console")
def console_state() -> Any:
    return jsonify(_console_view())


@bp.post("/console/unlock")
def console_unlock() -> Any:
    body = Body(("pin", "clinician"))
    name = _clinician_name(body)
    state = web_state()
    if not state.pin.is_set():
        raise ApiError("no PIN yet: set one first", 409)
    _check_pin(body.data.get("pin"))
    unlock(name)
    audit.record_audit(state.store, actor=name, action="console.unlock", subject="console")
    return jsonify(_console_view())


@bp.post("/console/lock")
def console_lock() -> Any:
    Body(())
    lock()
    return jsonify(_console_view())


@bp.post("/console/pin")
def console_set_pin() -> Any:
    """First run: anyone at the device sets the PIN. Later: only an unlocked clinician, who
    types the current PIN again."""
    body = Body(("pin", "current_pin", "clinician"))
    state = web_state()
    if state.pin.is_set():
        if current_clinician() is None:
            raise ApiError("the console is locked: enter the PIN", 401, locked=True)
        return _change_pin(body)
    name = _clinician_name(body)
    try:
        state.pin.set_pin(body.data.get("pin"))
    except PinError as exc:
        raise ApiError(str(exc)) from None
    audit.record_audit(state.store, actor=name, action="console.pin_set", subject="console")
    unlock(name)
    return jsonify(_console_view()), 201


def _change_pin(body: Body) -> Any:
    state = web_state()
    _check_pin(body.data.get("current_pin"))
    try:
        state.pin.set_pin(body.data.get("pin"))
    except PinError as exc:
        raise ApiError(str(exc)) from None
    name = current_clinician() or "unknown"
    audit.record_audit(state.store, actor=name, action="console.pin_change", subject="console")
    return jsonify(_console_view())
