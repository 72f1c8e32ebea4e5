"""Socket.IO events from the screens: liveness, STOP, silence and the patient's own entries."""

from __future__ import annotations

import logging
from typing import Any

from flask import request
from flask_socketio import SocketIO, emit

from web.controller_link import ControllerLink
from web.session_link import SessionLink

log = logging.getLogger("bfr.web.socket")


def register_socket_events(socketio: SocketIO, link: ControllerLink, sessions: SessionLink) -> None:
    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        # A new screen gets the whole picture at once instead of waiting for the next change.
        emit("status", link.status_view())
        emit("alarm", link.alarm_view())
        emit("session", sessions.view())

    @socketio.on("disconnect")
    def on_disconnect(*_args: Any) -> None:
        link.ui_gone(request.sid)  # type: ignore[attr-defined]

    @socketio.on("ui_alive")
    def on_ui_alive(*_args: Any) -> dict[str, Any]:
        link.ui_alive(request.sid)  # type: ignore[attr-defined]
        return {"ok": True}

    @socketio.on("stop")
    def on_stop(*_args: Any) -> dict[str, Any]:
        reply = link.stop()
        sessions.on_stop("screen")
        return {"ok": bool(reply.get("ok")), "error": reply.get("error")}

    @socketio.on("silence")
    def on_silence(*_args: Any) -> dict[str, Any]:
        reply = link.silence()
        return {"ok": bool(reply.get("ok")), "error": reply.get("error")}

    @socketio.on("session_input")
    def on_session_input(data: Any = None) -> dict[str, Any]:
        """The patient's own entries: "done" (cuff on, next) and the RPE / pain rating."""
        try:
            sessions.patient_input(data)
        except ValueError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True}
