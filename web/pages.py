"""The two screens: the patient's (the kiosk's home page) and the clinician's console."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from web.state import web_state

bp = Blueprint("pages", __name__)


def _language() -> str:
    state = web_state()
    return state.catalogues.resolve(request.args.get("lang") or state.settings.language)


def _render(template: str, page: str) -> Any:
    state = web_state()
    language = _language()
    catalogue = state.catalogues.catalogue(language)

    def t(key: str, **params: object) -> str:
        return state.catalogues.text(language, key, **params)

    return render_template(template, t=t, language=language, page=page, catalogue=catalogue)


@bp.get("/")
def patient_screen() -> Any:
    return _render("patient.html", "patient")


@bp.get("/console")
def console_screen() -> Any:
    return _render("console.html", "console")


@bp.get("/healthz")
def health() -> Any:
    """For `bfr update` and monitoring: 200 while the server relays a live controller."""
    link = web_state().link
    body = {"web": "ok", "controller": "connected" if link.connected else "unreachable"}
    return body, (200 if link.connected else 503)
