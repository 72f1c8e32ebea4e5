"""Treatment protocols the clinician can choose from: packaged ones and the clinic's own."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from appliance.protocols import (
    DEFAULT_PCT_LOP,
    PCT_LOP_CEILING,
    PCT_LOP_FLOOR,
    PCT_LOP_NEEDS_ALLOW,
    TYPICAL_PCT_LOP,
    Protocol,
    installed_protocols,
    protocol_warnings,
)
from web.api.errors import ApiError
from web.console_auth import clinician_required
from web.state import web_state

bp = Blueprint("protocols", __name__)


def protocol_json(protocol: Protocol) -> dict[str, Any]:
    out = protocol.to_dict()
    out["origin"] = protocol.origin
    out["planned_s"] = protocol.planned_s
    out["warnings"] = protocol_warnings(protocol)
    return out


def find_protocol(name: str) -> Protocol:
    found = installed_protocols(web_state().store.data_dir).get(name)
    if found is None:
        raise ApiError(f"protocol: no protocol named {name!r}", 404)
    return found


@bp.get("/protocols")
@clinician_required
def list_protocols() -> Any:
    protocols = installed_protocols(web_state().store.data_dir)
    return jsonify(
        {
            "protocols": [protocol_json(p) for p in protocols.values()],
            "pct_lop": {
                "default": DEFAULT_PCT_LOP,
                "typical": TYPICAL_PCT_LOP,
                "floor": PCT_LOP_FLOOR,
                "needs_reason_above": PCT_LOP_NEEDS_ALLOW,
                "ceiling": PCT_LOP_CEILING,
            },
        }
    )


@bp.get("/protocols/<name>")
@clinician_required
def protocol_detail(name: str) -> Any:
    return jsonify(protocol_json(find_protocol(name)))
