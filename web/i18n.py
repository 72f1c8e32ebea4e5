"""Translation catalogues: one flat JSON file per language in web/i18n, English as the fallback."""

from __future__ import annotations

import json
import re
from pathlib import Path

CATALOGUE_DIR = Path(__file__).parent / "i18n"
FALLBACK = "en"
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class CatalogueError(ValueError):
    """A catalogue file is not a flat object of text; the message names the file and key."""


def load_catalogue(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogueError(f"{path.name}: {exc}") from exc
    if not isinstance(data, dict):
        raise CatalogueError(f"{path.name}: must be a JSON object of key: text")
    for key, value in data.items():
        if not isinstance(value, str):
            raise CatalogueError(f"{path.name}: {key}: must be text")
    return data


class Catalogues:
    """All languages found at start-up; a missing key falls back to English, then to the key."""

    def __init__(self, folder: Path = CATALOGUE_DIR) -> None:
        self.folder = folder
        self._by_language: dict[str, dict[str, str]] = {}
        for path in sorted(folder.glob("*.json")):
            if _LANGUAGE.match(path.stem):
                self._by_language[path.stem] = load_catalogue(path)
        if FALLBACK not in self._by_language:
            raise CatalogueError(f"{FALLBACK}.json: the fallback catalogue is missing")

    @property
    def languages(self) -> list[str]:
        return sorted(self._by_language)

    def resolve(self, language: str | None) -> str:
        return language if language in self._by_language else FALLBACK

    def catalogue(self, language: str | None) -> dict[str, str]:
        """The language's texts over English, so a partial translation still shows every text."""
        merged = dict(self._by_language[FALLBACK])
        merged.update(self._by_language[self.resolve(language)])
        return merged

    def text(self, language: str | None, key: str, **params: object) -> str:
        template = self.catalogue(language).get(key, key)
        return _PLACEHOLDER.sub(lambda m: str(params.get(m.group(1), m.group(0))), template)
