"""systemd notification from the control loop itself: READY once, WATCHDOG only while healthy.

Off systemd (no NOTIFY_SOCKET) `systemd.daemon.notify` returns False and nothing else changes.
Notifying from the loop, never from a side thread, is the point: a hung loop stops the pings and
systemd restarts the controller, whose start-up deflates the cuff.
"""

from __future__ import annotations

import os

from systemd import daemon


class Watchdog:
    def __init__(self, interval_s: float | None = None) -> None:
        usec = os.environ.get("WATCHDOG_USEC")
        # Ping at a quarter of systemd's timeout; without a timeout, once a second for STATUS.
        self.interval_s = interval_s or (int(usec) / 4e6 if usec else 1.0)
        self._last_ping: float | None = None
        self._last_status = ""
        self.pings = 0

    def ready(self, status: str) -> bool:
        return daemon.notify(f"READY=1\nSTATUS={status}")

    def feed(self, now: float, healthy: bool, status: str) -> bool:
        """Ping if healthy and due; return True when a ping was sent."""
        if not healthy:
            return False
        if self._last_ping is not None and now - self._last_ping < self.interval_s:
            return False
        self._last_ping = now
        self.pings += 1
        message = "WATCHDOG=1"
        if status != self._last_status:
            message += f"\nSTATUS={status}"
            self._last_status = status
        daemon.notify(message)
        return True

    def stopping(self) -> None:
        daemon.notify("STOPPING=1")
