"""The web server's side of the controller IPC: relay status to every screen, keep the heartbeat.

Three connections, so that nothing waits behind anything else: a subscription that streams status,
one for the UI's commands, and one reserved for STOP and the heartbeat. The heartbeat is only
sent while this process is relaying fresh status *and* a page has recently said it is alive: if
the web server or every screen hangs, the controller stops hearing from us and deflates the cuff
within its 3 s timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from flask_socketio import SocketIO

from web.settings import WebSettings

log = logging.getLogger("bfr.web.link")

# Keys of the controller status that matter to screens beyond the pressure itself: a change in
# any of them is pushed at once rather than at the next periodic `status`.
_STATUS_KEYS = (
    "state",
    "fault",
    "target_mmHg",
    "limb",
    "lop_mmHg",
    "max_target_mmHg",
    "last_lop",
    "last_selftest",
    "silenced",
)
PRESSURE_KEYS = ("t", "mmHg", "target_mmHg", "state", "occlusion_s")


def _older(snapshot: dict[str, Any], latest: dict[str, Any] | None) -> bool:
    """Taken before the status already shown, by the controller's clock.

    Command replies and the stream come on separate connections, and the stream's snapshots
    are up to a publishing period old: the reply to STOP can land before the stream's last
    MEASURING_LOP, and taking that as the latest would show every screen the past.
    """
    t = snapshot.get("t")
    seen = (latest or {}).get("t")
    numbers = (int, float)
    return isinstance(t, numbers) and isinstance(seen, numbers) and t < seen


class Client(Protocol):
    def request(self, message: dict[str, Any]) -> dict[str, Any]: ...

    def subscribe(self, hz: float = 20) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None: ...


ClientFactory = Callable[[str], Client]
SnapshotListener = Callable[[dict[str, Any]], None]


def alarm_view(status: dict[str, Any] | None, connected: bool) -> dict[str, Any]:
    """What the alarm banner shows: active alarms, silence, fault, and whether we hear the
    controller at all (a silent controller is an alarm in itself)."""
    status = status or {}
    return {
        "alarms": list(status.get("alarms") or []),
        "silenced": bool(status.get("silenced")),
        "fault": status.get("fault"),
        "connected": connected,
    }


def _alarm_signature(view: dict[str, Any]) -> tuple:
    codes = tuple((a.get("code"), a.get("latched")) for a in view["alarms"])
    return codes, view["silenced"], view["fault"], view["connected"]


class ControllerLink:
    """Owns the IPC clients and the two background loops (relay, heartbeat)."""

    def __init__(
        self,
        settings: WebSettings,
        socketio: SocketIO,
        client_factory: ClientFactory,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.socketio = socketio
        self.clock = clock
        self._factory = client_factory
        self._commands = client_factory(settings.socket_path)
        self._urgent = client_factory(settings.socket_path)
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._push_lock = threading.Lock()
        self.latest: dict[str, Any] | None = None
        self.latest_at = float("-inf")
        self._ui_alive: dict[str, float] = {}
        self._status_sig: tuple | None = None
        self._status_sent_at = float("-inf")
        self._alarm_sig: tuple | None = None
        self._heartbeat_sending: bool | None = None
        self.listeners: list[SnapshotListener] = []
        self.heartbeats_sent = 0

    # ---- state ---------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.clock() - self.latest_at < self.settings.link_timeout_s

    def ui_alive(self, sid: str) -> None:
        with self._lock:
            self._ui_alive[sid] = self.clock()

    def ui_gone(self, sid: str) -> None:
        with self._lock:
            self._ui_alive.pop(sid, None)

    def ui_healthy(self) -> bool:
        now = self.clock()
        with self._lock:
            return any(now - t < self.settings.ui_timeout_s for t in self._ui_alive.values())

    def heartbeat_allowed(self) -> bool:
        return self.connected and self.ui_healthy()

    def status_view(self) -> dict[str, Any]:
        return {**(self.latest or {}), "connected": self.connected, "ui": self.ui_healthy()}

    def alarm_view(self) -> dict[str, Any]:
        return alarm_view(self.latest, self.connected)

    # ---- commands ------------------------------------------------------------------------
    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        reply = self._commands.request(message)
        self._take_status(reply)
        return reply

    def silence(self) -> dict[str, Any]:
        """Mute what the screens were shown, not an alarm raised while the press travelled."""
        with self._push_lock:
            sent = self._alarm_sig  # the signature of the alarm view the screens were last sent
        shown = [code for code, _latched in sent[0]] if sent is not None else []
        return self.request({"cmd": "silence", "codes": shown})

    def stop(self) -> dict[str, Any]:
        """STOP: deflate now. On its own connection so it never queues behind a slow command."""
        reply = self._urgent.request({"cmd": "stop"})
        self._take_status(reply)
        log.warning("STOP sent: %s", "ok" if reply.get("ok") else reply.get("error"))
        return reply

    def _take_status(self, reply: dict[str, Any]) -> None:
        status = reply.get("status") if isinstance(reply, dict) else None
        if isinstance(status, dict):
            self._publish(status, pressure=False)

    # ---- loops ---------------------------------------------------------------------------
    def start(self) -> None:
        self.socketio.start_background_task(self._relay_loop)
        self.socketio.start_background_task(self._heartbeat_loop)

    def close(self) -> None:
        self._closing.set()
        for client in (self._commands, self._urgent):
            client.close()

    def _relay_loop(self) -> None:
        was_connected = True
        while not self._closing.is_set():
            try:
                first = True
                for snapshot in self._factory(self.settings.socket_path).subscribe(
                    self.settings.pressure_hz
                ):
                    if self._closing.is_set():
                        return
                    if snapshot.get("event") == "status":
                        snapshot = {k: v for k, v in snapshot.items() if k != "event"}
                        self.latest_at = self.clock()
                        self._publish(snapshot, pressure=True, first=first)
                        first = False
                        if not was_connected:
                            log.info("controller link up")
                            was_connected = True
            except (OSError, ValueError) as exc:
                if was_connected:
                    log.warning("controller link down: %s", exc)
                    was_connected = False
            except Exception:
                log.exception("controller relay failed; retrying")
            # The subscription ended: tell screens now, then retry.
            self.latest_at = float("-inf")
            self._push_changes(force_status=True)
            self._closing.wait(0.5)

    def _publish(self, snapshot: dict[str, Any], *, pressure: bool, first: bool = False) -> None:
        """Take a status and push it on, unless it is older than the one shown.

        `first` is a new subscription's first snapshot: a restarted controller's clock starts
        again from zero, and it is the truth from then on.
        """
        with self._lock:
            if not first and _older(snapshot, self.latest):
                return
            self.latest = snapshot
        if pressure:
            event = {k: snapshot.get(k) for k in PRESSURE_KEYS}
            event["sent_at"] = time.time()
            self.socketio.emit("pressure", event)
        for listener in list(self.listeners):
            try:
                listener(snapshot)
            except Exception:
                log.exception("status listener failed")
        self._push_changes()

    def _push_changes(self, *, force_status: bool = False) -> None:
        with self._push_lock:
            self._push_changes_locked(force_status)

    def _push_changes_locked(self, force_status: bool) -> None:
        view = self.status_view()
        signature = tuple(repr(view.get(k)) for k in (*_STATUS_KEYS, "connected", "ui"))
        alarm_codes = tuple(a.get("code") for a in view.get("alarms") or [])
        signature += (alarm_codes,)
        now = self.clock()
        due = now - self._status_sent_at >= self.settings.status_period_s
        if force_status or due or signature != self._status_sig:
            self._status_sig = signature
            self._status_sent_at = now
            self.socketio.emit("status", view)
        alarms = self.alarm_view()
        if _alarm_signature(alarms) != self._alarm_sig:
            self._alarm_sig = _alarm_signature(alarms)
            self.socketio.emit("alarm", alarms)

    def _heartbeat_loop(self) -> None:
        heartbeat = self._factory(self.settings.socket_path)
        try:
            while not self._closing.wait(self.settings.heartbeat_period_s):
                allowed = self.heartbeat_allowed()
                if allowed != self._heartbeat_sending:
                    self._heartbeat_sending = allowed
                    if allowed:
                        log.info("screen alive: sending the controller heartbeat")
                    else:
                        log.warning(
                            "no live screen or no controller status: heartbeat withheld, the"
                            " controller deflates a pressurised cuff within its timeout"
                        )
                if allowed:
                    reply = heartbeat.request({"cmd": "heartbeat"})
                    if reply.get("ok"):
                        self.heartbeats_sent += 1
        finally:
            heartbeat.close()
