"""Translation catalogues for the screens' JavaScript."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from web.api.errors import ApiError
from web.state import web_state

bp = Blueprint("language", __name__)


@bp.get("/i18n")
def languages() -> Any:
    state = web_state()
    return jsonify({"languages": state.catalogues.languages, "default": state.settings.language})


@bp.get("/i18n/<language>")
def catalogue(language: str) -> Any:
    state = web_state()
    if language not in state.catalogues.languages:
        raise ApiError(f"language: no catalogue for {language!r}", 404)
    return jsonify(state.catalogues.catalogue(language))
