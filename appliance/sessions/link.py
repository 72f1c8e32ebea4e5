"""The runner's only way to the controller: `request(dict) -> dict`, never raising.

`Controller.handle` (in-process simulation) and `ControllerClient.request` (the device's Unix
socket) both fit. Replies are `{"ok": true, "status": {...}}` or `{"ok": false, "error": "..."}`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Link = Callable[[dict[str, Any]], dict[str, Any]]

# Controller states, as its status reports them.
IDLE = "IDLE"
INFLATING = "INFLATING"
HOLDING = "HOLDING"
DEFLATING = "DEFLATING"
MEASURING_LOP = "MEASURING_LOP"
FAULT = "FAULT"
PRESSURISED_MMHG = 10.0  # the controller counts occlusion above this


def send(link: Link, message: dict[str, Any]) -> dict[str, Any]:
    """One request; a link that raises or answers nonsense becomes an `ok: false` reply."""
    try:
        reply = link(message)
    except Exception as exc:  # a dead socket must not take the session's safety path with it
        log.warning("controller link failed on %s: %s", message.get("cmd"), exc)
        return {"ok": False, "error": f"controller unreachable: {exc}"}
    if not isinstance(reply, dict) or "ok" not in reply:
        return {"ok": False, "error": f"controller answered {reply!r}"}
    return reply


def unavailable(reply: dict[str, Any]) -> bool:
    """The controller has no such procedure (e.g. no LOP measurement installed)."""
    return not reply.get("ok") and "not available" in str(reply.get("error", ""))
