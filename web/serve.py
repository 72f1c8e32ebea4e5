"""Serving the web app: Werkzeug's threaded server, which Flask-SocketIO's threading mode runs on."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from web.app import WebServer

log = logging.getLogger("bfr.web")


class HttpServer:
    """The listening socket, bound before anything is announced, and its shutdown."""

    def __init__(self, server: WebServer, host: str, port: int) -> None:
        self.web = server
        # On 127.0.0.1 behind the kiosk the development server is what Flask-SocketIO's own
        # `run()` uses in threading mode; binding elsewhere is the operator's explicit choice.
        self.http: BaseWSGIServer = make_server(host, port, server.app, threaded=True)
        self.host = host
        self.port = self.http.server_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def shutdown(self) -> None:
        # serve_forever() waits for this from another thread; a signal handler runs on its thread.
        threading.Thread(target=self.http.shutdown, name="http-shutdown", daemon=True).start()

    def serve(self, ready: Callable[[str], None] | None = None) -> None:
        """Start the background loops, announce the URL, serve until shutdown or a signal."""
        previous = signal.signal(signal.SIGTERM, self._on_signal)
        self.web.start()
        try:
            if ready is not None:
                ready(self.url)
            self.http.serve_forever(poll_interval=0.2)
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.web.close()
            self.http.server_close()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        log.info("signal %s: shutting the web server down", signum)
        self.shutdown()


def quiet_request_log() -> None:
    """One line per HTTP request drowns the log that matters (alarms, STOP, heartbeat)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
