"""Local IPC between the controller and its clients: JSON lines over a Unix stream socket.

Protocol (docs/ipc.md): each request is one JSON object on one line, at most 4 KiB, with `cmd`
and an optional `id` that the reply echoes. Replies are `{"ok": true, "status": {...}}` or
`{"ok": false, "error": "..."}`. `{"cmd": "subscribe", "hz": N}` turns the connection into a
stream of `{"event": "status", ...}` lines at N Hz (1..50) until it closes.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from typing import Any

MAX_LINE = 4096
Handler = Callable[[Any], dict[str, Any]]
Snapshot = Callable[[], dict[str, Any]]


def _encode(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n").encode()


def decode_line(line: bytes) -> tuple[Any, str | None]:
    """Decode one request line; return (message, error)."""
    if len(line) > MAX_LINE:
        return None, f"line longer than {MAX_LINE} bytes"
    try:
        text = line.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant), None
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        return None, f"invalid JSON: {exc}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


class _Connection(socketserver.StreamRequestHandler):
    server: ControllerServer

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections.add(self.request)

    def finish(self) -> None:
        with self.server.lock:
            self.server.connections.discard(self.request)
        with contextlib.suppress(OSError):
            super().finish()

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(MAX_LINE + 2)
            if not line:
                return
            message, error = decode_line(line.rstrip(b"\r\n"))
            if error is None and isinstance(message, dict) and message.get("cmd") == "subscribe":
                self._stream(message)
                return
            reply = {"ok": False, "error": error} if error else self.server.handler(message)
            if isinstance(message, dict) and isinstance(message.get("id"), int | str):
                reply = {**reply, "id": message["id"]}
            try:
                self.wfile.write(_encode(reply))
            except OSError:
                return

    def _stream(self, message: dict[str, Any]) -> None:
        hz = message.get("hz", 20)
        if isinstance(hz, bool) or not isinstance(hz, int | float) or not 1 <= hz <= 50:
            self.wfile.write(_encode({"ok": False, "error": "hz: must be 1..50"}))
            return
        period = 1.0 / hz
        while not self.server.closing.is_set():
            try:
                self.wfile.write(_encode({"event": "status", **self.server.snapshot()}))
            except OSError:
                return
            time.sleep(period)


class ControllerServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Serves one controller on a Unix socket; each client gets its own thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, path: str, handler: Handler, snapshot: Snapshot, mode: int = 0o660) -> None:
        self.path = path
        self.mode = mode
        self.handler = handler
        self.snapshot = snapshot
        self.closing = threading.Event()
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        super().__init__(path, _Connection)
        # 0660: the web user reaches the clinic's socket through the shared group only; 0600:
        # the technician socket, for root (sudo) and the controller's own user.
        os.chmod(path, mode)

    def server_bind(self) -> None:
        # Linux creates the socket's file with the mode of the socket's inode (less the umask):
        # set before bind, no client of the group ever finds the technician socket open to it,
        # not even between bind and chmod.
        os.fchmod(self.socket.fileno(), self.mode)
        super().server_bind()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="ipc", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Stop accepting and drop every client, as a stopped controller process would."""
        self.closing.set()
        self.shutdown()
        self.server_close()
        with self.lock:
            for conn in list(self.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class ControllerClient:
    """Request/reply client; reconnects after the controller restarts."""

    def __init__(self, path: str, timeout_s: float = 3.0) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._file: Any = None
        self._lock = threading.Lock()

    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_s)
        sock.connect(self.path)
        self._sock = sock
        self._file = sock.makefile("rb")

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one command; on a broken link, reconnect once, then report the failure."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._sock is None:
                        self._connect()
                    assert self._sock is not None
                    self._sock.sendall(_encode(message))
                    line = self._file.readline(MAX_LINE * 16)
                    if not line:
                        raise ConnectionError("controller closed the connection")
                    return json.loads(line)
                except (OSError, ConnectionError, json.JSONDecodeError) as exc:
                    self.close()
                    if attempt == 2:
                        return {"ok": False, "error": f"controller unreachable: {exc}"}
            raise AssertionError("unreachable")

    def subscribe(self, hz: float = 20) -> Any:
        """Yield status snapshots from a dedicated connection until it breaks."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_s)
        sock.connect(self.path)
        try:
            sock.sendall(_encode({"cmd": "subscribe", "hz": hz}))
            with sock.makefile("rb") as f:
                for line in f:
                    yield json.loads(line)
        finally:
            sock.close()

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._file = None
