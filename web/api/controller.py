"""Controller actions: STOP and silence for everyone at the screen, reset and deflate for clinicians."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from web.api.body import Body
from web.api.errors import ApiError
from web.console_auth import clinician_required
from web.state import web_state

bp = Blueprint("controller", __name__)


def controller_reply(reply: dict[str, Any]) -> Any:
    """The controller's refusals are the clinician's business (409); no answer at all is 503."""
    if reply.get("ok"):
        return jsonify({"ok": True, "status": reply.get("status")})
    error = str(reply.get("error") or "controller error")
    status = 503 if error.startswith("controller unreachable") else 409
    raise ApiError(error, status)


@bp.get("/status")
def status() -> Any:
    state = web_state()
    return jsonify(state.link.status_view())


@bp.post("/stop")
def stop() -> Any:
    """STOP from any screen: no PIN, and whatever the body says it is never refused."""
    state = web_state()
    reply = state.link.stop()
    state.sessions.on_stop("screen")
    return controller_reply(reply)


@bp.post("/silence")
def silence() -> Any:
    """Mutes the alarm sound for 30 s; the alarm itself stays on screen."""
    Body(())
    return controller_reply(web_state().link.silence())


@bp.post("/controller/deflate")
@clinician_required
def deflate() -> Any:
    Body(())
    return controller_reply(web_state().link.request({"cmd": "deflate"}))


@bp.post("/controller/reset")
@clinician_required
def reset() -> Any:
    """Clear a FAULT once the cuff is empty; the controller refuses while it is not."""
    Body(())
    return controller_reply(web_state().link.request({"cmd": "reset"}))
