"""Sessions: history with sets and the pressure plot (live control follows the runner)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("sessions", __name__)
