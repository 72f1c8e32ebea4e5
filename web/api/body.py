"""Typed reading of JSON request bodies and query strings: strict, and every refusal names the field."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from flask import request

from web.api.errors import ApiError

_MISSING: Any = object()


class Body:
    """The request's JSON object; unknown fields are refused so a typo cannot pass silently."""

    def __init__(self, allowed: Iterable[str]) -> None:
        data = request.get_json(silent=True)
        if data is None:
            if request.get_data(cache=True):
                raise ApiError("the body must be a JSON object (Content-Type: application/json)")
            data = {}
        if not isinstance(data, dict):
            raise ApiError("the body must be a JSON object")
        unknown = sorted(set(map(str, data)) - set(allowed))
        if unknown:
            raise ApiError(f"unknown field(s): {', '.join(unknown)}")
        self.data: dict[str, Any] = data

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def _get(self, key: str, default: Any) -> Any:
        if key not in self.data or self.data[key] is None:
            if default is _MISSING:
                raise ApiError(f"{key}: required")
            return default
        return self.data[key]

    def text(self, key: str, default: Any = _MISSING, *, max_len: int = 200) -> Any:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str):
            raise ApiError(f"{key}: must be text")
        if len(value) > max_len:
            raise ApiError(f"{key}: at most {max_len} characters")
        if any(not ch.isprintable() and ch not in "\n\t" for ch in value):
            raise ApiError(f"{key}: must not contain control characters")
        return value

    def choice(self, key: str, choices: Iterable[str], default: Any = _MISSING) -> Any:
        options = tuple(choices)
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if value not in options:
            raise ApiError(f"{key}: must be one of {', '.join(options)}")
        return value

    def number(self, key: str, low: float, high: float, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        return checked_number(key, value, low, high)

    def integer(self, key: str, low: int, high: int, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value is default and default is not _MISSING:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError(f"{key}: must be a whole number")
        if not low <= value <= high:
            raise ApiError(f"{key}: must be {low}-{high}, got {value}")
        return value

    def flag(self, key: str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise ApiError(f"{key}: must be true or false")
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        value = self._get(key, _MISSING)
        if not isinstance(value, dict):
            raise ApiError(f"{key}: must be an object")
        return value


def checked_number(key: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(f"{key}: must be a number")
    if not math.isfinite(value) or not low <= value <= high:
        raise ApiError(f"{key}: must be {low:g}-{high:g}, got {value}")
    return float(value)


def query_int(key: str, low: int, high: int) -> int | None:
    """An optional whole-number query parameter."""
    raw = request.args.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(f"{key}: must be a whole number") from None
    if not low <= value <= high:
        raise ApiError(f"{key}: must be {low}-{high}, got {value}")
    return value
