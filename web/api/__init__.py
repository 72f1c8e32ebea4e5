"""The REST API under /api/: one blueprint per concern, all registered by `register_api`."""

from __future__ import annotations

from flask import Flask

from web.api import (
    console,
    controller,
    exports,
    language,
    lop,
    patients,
    protocols,
    readiness,
    screening,
    sessions,
)
from web.api.errors import install_error_handlers

BLUEPRINTS = (
    controller.bp,
    console.bp,
    language.bp,
    patients.bp,
    screening.bp,
    readiness.bp,
    lop.bp,
    protocols.bp,
    sessions.bp,
    exports.bp,
)


def register_api(app: Flask) -> None:
    install_error_handlers(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint, url_prefix="/api")
