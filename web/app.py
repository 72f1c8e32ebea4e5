"""Builds the web server: Flask for pages and the REST API, Socket.IO for live pressure and prompts."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Response
from flask_socketio import SocketIO

from appliance.controller.ipc import ControllerClient
from appliance.store import Store
from web.api import register_api
from web.controller_link import ClientFactory, ControllerLink
from web.i18n import Catalogues
from web.pages import bp as pages_bp
from web.pin import PinThrottle, PinVault
from web.session_link import SessionLink
from web.settings import WebSettings
from web.sockets import register_socket_events
from web.state import WebState

log = logging.getLogger("bfr.web")

# Everything is served from this origin: no CDN, nothing inline but uPlot's computed styles.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none';"
    " frame-ancestors 'none'"
)


@dataclass
class WebServer:
    app: Flask
    socketio: SocketIO
    state: WebState

    def start(self) -> None:
        """Start the controller relay, heartbeat and session clock."""
        self.state.link.start()
        self.state.sessions.start()

    def close(self) -> None:
        self.state.sessions.close()
        self.state.link.close()
        self.state.store.close()


def create_server(
    settings: WebSettings,
    *,
    client_factory: ClientFactory = ControllerClient,
    wall: Callable[[], float] = time.time,
) -> WebServer:
    """The app, its Socket.IO server and shared state; `start()` it to begin relaying."""
    app = Flask(__name__)
    app.config.update(
        # A fresh key per start: a restart locks the console, which is what a restart should do.
        SECRET_KEY=os.urandom(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SEND_FILE_MAX_AGE_DEFAULT=60,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    socketio = SocketIO(
        app,
        async_mode="threading",
        ping_interval=5,
        ping_timeout=5,
        logger=False,
        engineio_logger=False,
    )
    store = Store.open(settings.data_dir, wall=wall)
    link = ControllerLink(settings, socketio, client_factory)
    sessions = SessionLink(settings, socketio, link, store)
    state = WebState(
        settings=settings,
        store=store,
        link=link,
        sessions=sessions,
        catalogues=Catalogues(),
        pin=PinVault(settings.data_dir),
        throttle=PinThrottle(settings.pin_max_failures, settings.pin_lockout_s),
        wall=wall,
    )
    app.extensions["bfr"] = state
    app.extensions["bfr_unexpected_errors"] = 0
    register_api(app)
    app.register_blueprint(pages_bp)
    register_socket_events(socketio, link, sessions)

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if response.mimetype == "application/json":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return WebServer(app, socketio, state)
