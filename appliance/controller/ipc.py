"""Local IPC between the controller and its clients: JSON lines over a Unix stream socket.

Protocol (docs/ipc.md): each request is one JSON object on one line, at most 4 KiB, with `cmd`
and an optional `id` that the reply echoes. Replies are `{"ok": true, "status": {...}}` or
`{"ok": false, "error": "..."}`. `{"cmd": "subscribe", "hz": N}` turns the connection into a
stream of `{"event": "status", ...}` lines at N Hz (1..50) until it closes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import socketserver
import stat
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

MAX_LINE = 4096
Handler = Callable[[Any], dict[str, Any]]
Snapshot = Callable[[], dict[str, Any]]


def _encode(obj: dict[str, Any]) -> bytes:
    """One JSON line. JSON has no NaN or infinity: a figure that is not a number goes as null,
    so one left unfilled in a result cannot make every status reply after it fail; numpy's
    numbers go as the plain numbers they hold."""
    try:
        text = json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_plain)
    except ValueError:
        text = json.dumps(_finite(obj), separators=(",", ":"), allow_nan=False, default=_plain)
    return (text + "\n").encode()


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists; anything else is a bug."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _finite(value: Any) -> Any:
    if hasattr(value, "tolist") and not isinstance(value, list | tuple | dict):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_finite(k) if isinstance(k, float) else k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _encode_reply(reply: dict[str, Any]) -> bytes:
    """A reply that cannot be encoded still gets an answer: a client that heard nothing would
    send a command that was taken again."""
    try:
        return _encode(reply)
    except (TypeError, ValueError, RecursionError) as error:
        log.error("reply could not be encoded: %s", error)
        answer: dict[str, Any] = {"ok": False, "error": "reply could not be encoded"}
        if isinstance(reply.get("id"), int | str):
            answer["id"] = reply["id"]
        return _encode(answer)


TOO_LONG = f"line longer than {MAX_LINE} bytes"


def decode_line(line: bytes) -> tuple[Any, str | None]:
    """Decode one request line; return (message, error)."""
    if len(line) > MAX_LINE:
        return None, TOO_LONG
    try:
        text = line.decode("utf-8")
        message = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        return None, f"invalid JSON: {exc}"
    except RecursionError:
        return None, "invalid JSON: nested too deeply"
    return message, None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A field given twice is ambiguous (which LOP did the clinician mean?): refuse it."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"field {key!r} given twice")
        out[key] = value
    return out


class _Connection(socketserver.StreamRequestHandler):
    server: ControllerServer

    def setup(self) -> None:
        super().setup()
        # A client that neither asks nor reads for this long has gone (or leaked its
        # connection): its slot is freed, so leaked connections cannot lock the UI out.
        self.request.settimeout(self.server.idle_s)
        with self.server.lock:  # admitted or not when it was accepted (process_request)
            self.admitted = self.request in self.server.connections
        self._pending = b""  # bytes after the last request line

    def finish(self) -> None:
        with self.server.lock:
            self.server.connections.discard(self.request)
            self.server.refusing.discard(self.request)
        with contextlib.suppress(OSError):
            super().finish()

    def handle(self) -> None:
        if not self.admitted:
            self._refuse()
            return
        while True:
            try:
                line, whole = self._read_line()
            except TimeoutError:
                return
            if line is None:
                return
            message, error = decode_line(line) if whole else (None, TOO_LONG)
            if error is None and isinstance(message, dict) and message.get("cmd") == "subscribe":
                self._stream(message)
                return
            reply = {"ok": False, "error": error} if error else self.server.handler(message)
            if isinstance(message, dict) and isinstance(message.get("id"), int | str):
                reply = {**reply, "id": message["id"]}
            try:
                self.wfile.write(_encode_reply(reply))
            except OSError:
                return

    def _refuse(self) -> None:
        """Beyond the cap: answer the first request with why, then close, within 1 s of
        accepting it whatever the client sends (one that trickles bytes cannot hold the slot)."""
        deadline = time.monotonic() + 1.0
        got = b""
        with contextlib.suppress(OSError):
            while b"\n" not in got and len(got) <= MAX_LINE:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.request.settimeout(left)
                chunk = self.request.recv(MAX_LINE + 2)
                if not chunk:
                    return
                got += chunk
        with contextlib.suppress(OSError):
            cap = self.server.max_clients
            self.wfile.write(_encode({"ok": False, "error": f"too many clients (at most {cap})"}))

    def _read_line(self) -> tuple[bytes | None, bool]:
        """One request line without its end (None when the client has gone), and whether it
        fits. A line too long is read to its end and answered once, as one bad request: its
        tail must never be taken for a command of its own.

        The whole line must arrive within `idle_s`, not each byte of it: a client trickling a
        byte a minute would otherwise hold its slot for ever.
        """
        deadline = time.monotonic() + self.server.idle_s
        buf, fits = self._pending, True
        while b"\n" not in buf:
            if len(buf) > MAX_LINE:
                buf, fits = b"", False  # drop what came so far; keep reading to the line's end
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no whole request line in time")
            self.request.settimeout(left)
            chunk = self.rfile.read1(MAX_LINE + 2)
            if not chunk:
                return None, True
            buf += chunk
        self.request.settimeout(self.server.idle_s)
        line, _, self._pending = buf.partition(b"\n")
        if not fits or len(line) > MAX_LINE + 1:
            return b"", False
        return line.rstrip(b"\r"), True

    def _stream(self, message: dict[str, Any]) -> None:
        hz = message.get("hz", 20)
        if isinstance(hz, bool) or not isinstance(hz, int | float) or not 1 <= hz <= 50:
            self.wfile.write(_encode({"ok": False, "error": "hz: must be 1..50"}))
            return
        period = 1.0 / hz
        while not self.server.closing.is_set():
            try:
                self.wfile.write(_encode_reply({"event": "status", **self.server.snapshot()}))
            except OSError:
                return
            time.sleep(period)


class SocketInUse(RuntimeError):
    """Another controller already answers on this socket: two must never drive one cuff."""


def _answers(path: str) -> bool:
    """Whether a live server accepts connections at `path` (a stale file does not)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


class ControllerServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Serves one controller on a Unix socket; each client gets its own thread.

    Clients are capped: each costs a thread and a file descriptor, and a flood of them must
    not slow the loop (200 streaming clients made its ticks 20 ms late) or exhaust the
    process's descriptors, where accept() fails in a busy loop.
    """

    daemon_threads = True
    allow_reuse_address = True
    max_clients = 16
    file_check_s = 1.0  # how often `serving` looks at the socket's file
    idle_s = 60.0  # a client silent this long (or not reading its stream) is let go

    def __init__(self, path: str, handler: Handler, snapshot: Snapshot, mode: int = 0o660) -> None:
        self.path = os.path.abspath(path)  # `serving` looks at the file, whatever the cwd
        self.mode = mode
        self.handler = handler
        self.snapshot = snapshot
        self.closing = threading.Event()
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None
        self.refusing: set[socket.socket] = set()  # told why they are beyond the cap (<= 1 s)
        path = self.path
        if _answers(path):
            raise SocketInUse(f"another controller is already serving {path}: stop it first")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a stale file from a controller that died
        super().__init__(path, _Connection)
        # 0660: the web user reaches the clinic's socket through the shared group only; 0600:
        # the technician socket, for root (sudo) and the controller's own user.
        os.chmod(path, mode)
        found = os.stat(path)
        self._file = (found.st_dev, found.st_ino)
        self._file_checked_at = time.monotonic()
        self._file_ok = True

    def server_bind(self) -> None:
        # Linux creates the socket's file with the mode of the socket's inode (less the umask):
        # set before bind, no client of the group ever finds the technician socket open to it,
        # not even between bind and chmod.
        os.fchmod(self.socket.fileno(), self.mode)
        super().server_bind()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Admission, in the accepting thread so a burst cannot slip past the cap. A flood
        beyond it is closed at once without a thread: only as many clients as the cap are told
        why at a time, so refusing costs a bounded number of threads."""
        with self.lock:
            if len(self.connections) < self.max_clients:
                self.connections.add(request)
            elif len(self.refusing) < self.max_clients:
                self.refusing.add(request)
            else:
                self.shutdown_request(request)
                return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread (out of threads): the slot must not stay taken
            with self.lock:
                self.connections.discard(request)
                self.refusing.discard(request)
            raise

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.serve_forever, name="ipc", daemon=True)
        self._thread.start()
        return self._thread

    @property
    def serving(self) -> bool:
        """Accepting clients: started, its thread alive, not closed, and its file still the way
        in (deleted or replaced, no client can reach it: a restart makes a new one)."""
        thread = self._thread
        if thread is None or not thread.is_alive() or self.closing.is_set():
            return False
        now = time.monotonic()
        if now - self._file_checked_at >= self.file_check_s:  # the loop asks every tick
            self._file_checked_at = now
            self._file_ok = self._file_is_ours()
        return self._file_ok

    def _file_is_ours(self) -> bool:
        try:
            found = os.stat(self.path)
        except OSError:
            return False
        return stat.S_ISSOCK(found.st_mode) and (found.st_dev, found.st_ino) == self._file

    def close(self) -> None:
        """Stop accepting and drop every client, as a stopped controller process would."""
        self.closing.set()
        self.shutdown()
        self.server_close()
        with self.lock:
            for conn in list(self.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        if self._file_is_ours():  # never another process's socket bound over ours
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
        """Send one command; on a broken link, reconnect once, then report the failure.

        Sent again only when it cannot have been taken: the connection failed, the send
        failed, or the controller closed the connection before answering (an idle connection
        it let go, or a restart). A reply that does not come in time is reported, never sent
        again: the first one may still run, and the same command twice is two commands.
        """
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
                except TimeoutError as exc:
                    self.close()
                    return {"ok": False, "error": f"controller did not answer in time: {exc}"}
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
