"""The guided session as the screens see it (placeholder until the runner is wired in)."""

from __future__ import annotations

from typing import Any

from flask_socketio import SocketIO

from appliance.store import Store
from web.controller_link import ControllerLink
from web.settings import WebSettings


class SessionLink:
    def __init__(
        self, settings: WebSettings, socketio: SocketIO, link: ControllerLink, store: Store
    ) -> None:
        self.settings = settings
        self.socketio = socketio
        self.link = link
        self.store = store

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass

    def active(self) -> bool:
        return False

    def view(self) -> dict[str, Any]:
        return {"active": False}

    def on_stop(self, source: str) -> None:
        pass

    def patient_input(self, data: Any) -> None:
        raise ValueError("no session is running")
