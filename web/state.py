"""The objects one web server shares between its routes and Socket.IO handlers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app

from appliance.store import Store
from web.pin import PinThrottle, PinVault
from web.settings import WebSettings

if TYPE_CHECKING:
    from web.controller_link import ControllerLink
    from web.i18n import Catalogues
    from web.session_link import SessionLink


@dataclass
class WebState:
    settings: WebSettings
    store: Store
    link: ControllerLink
    sessions: SessionLink
    catalogues: Catalogues
    pin: PinVault
    throttle: PinThrottle
    wall: Callable[[], float] = time.time


def web_state() -> WebState:
    return current_app.extensions["bfr"]
