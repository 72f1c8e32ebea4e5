"""JSON errors for the API: bad input is a 4xx naming the field, anything unforeseen a logged 500."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger("bfr.web")

GENERIC_500 = "internal error: the problem was logged; the cuff is not affected"


class ApiError(Exception):
    """A request the API refuses; `status` is the HTTP code, `message` says what to change."""

    def __init__(self, message: str, status: int = 400, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.extra = extra


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):  # type: ignore[no-untyped-def]
        return jsonify({"error": exc.message, **exc.extra}), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        if not request.path.startswith("/api/"):
            return exc
        return jsonify({"error": exc.description or exc.name}), exc.code or 500

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        # Counted by tests: bad input must never land here.
        app.extensions["bfr_unexpected_errors"] = app.extensions.get("bfr_unexpected_errors", 0) + 1
        log.exception("unexpected error on %s %s", request.method, request.path)
        return jsonify({"error": GENERIC_500}), 500
