"""The console lock: unlocked by the PIN for one browser, locked again after idle time or on request."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import session

from web.api.errors import ApiError
from web.state import web_state

_KEY = "console"
F = TypeVar("F", bound=Callable[..., Any])


def unlock(clinician: str) -> None:
    session[_KEY] = {"clinician": clinician, "at": web_state().wall()}
    session.permanent = False


def lock() -> None:
    session.pop(_KEY, None)


def current_clinician() -> str | None:
    """Who unlocked the console, or None when it is locked (idle too long counts as locked)."""
    entry = session.get(_KEY)
    if not isinstance(entry, dict):
        return None
    state = web_state()
    at = entry.get("at")
    if not isinstance(at, int | float) or state.wall() - at > state.settings.console_idle_lock_s:
        session.pop(_KEY, None)
        return None
    clinician = entry.get("clinician")
    return clinician if isinstance(clinician, str) and clinician else None


def clinician_required(view: F) -> F:
    """Refuse with 401 while locked; each accepted request restarts the idle timer."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        clinician = current_clinician()
        if clinician is None:
            raise ApiError("the console is locked: enter the PIN", 401, locked=True)
        session[_KEY] = {"clinician": clinician, "at": web_state().wall()}
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def clinician() -> str:
    """The unlocked clinician's name, for the audit trail (only inside `clinician_required`)."""
    name = current_clinician()
    if name is None:
        raise ApiError("the console is locked: enter the PIN", 401, locked=True)
    return name
