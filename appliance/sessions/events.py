"""The runner's event stream for the UI: what happened, when, and its row id once it is stored."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionEvent:
    """One event. `event_id` is the events-table row, set only after the write committed."""

    kind: str  # prompt, phase, rep, set, input, lop, controller, alarm, limit, exercise, ...
    name: str  # dotted, e.g. "rep.up", "prompt.do_reps", "set.done"
    t: float  # the runner's clock (monotonic or simulated seconds)
    at: float  # wall time, seconds since the epoch
    detail: dict[str, Any] = field(default_factory=dict)
    event_id: int | None = None

    @property
    def stored(self) -> bool:
        return self.event_id is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "t": round(self.t, 3),
            "at": self.at,
            "detail": dict(self.detail),
            "event_id": self.event_id,
        }


Listener = Callable[[SessionEvent], None]


class EventHub:
    """Callbacks the runner calls, in order, for every event.

    A listener that raises is logged and kept: a broken screen must not stop a session that is
    squeezing a limb. Listeners run on the ticking thread and must not block.
    """

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def publish(self, event: SessionEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("session event listener failed on %s", event.name)
