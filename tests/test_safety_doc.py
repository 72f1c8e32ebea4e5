"""The hazard table names the tests that prove each mitigation: every one it names must exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAFETY = REPO / "docs" / "safety.md"
TESTS = REPO / "tests"

# `tests/test_x.py::test_y`, `test_x.py::test_y`, `::test_y` (same file as before), `tests/test_x.py`
REFERENCE = re.compile(r"`((?:tests/)?test_\w+\.py)?(?:::(test_\w+))?`")


def referenced_tests(text: str) -> list[tuple[str, str | None]]:
    """(file, test) pairs; a `::name` alone belongs to the file last named on its line."""
    found: list[tuple[str, str | None]] = []
    for line in text.splitlines():
        current: str | None = None
        for match in REFERENCE.finditer(line):
            file, name = match.groups()
            if file is None and name is None:
                continue
            if file is not None:
                current = Path(file).name
            found.append((current or "*", name))
    return found


def defined_in(file: str, name: str) -> bool:
    paths = sorted(TESTS.glob("test_*.py")) if file == "*" else [TESTS / file]
    pattern = re.compile(rf"^(?:async )?def {re.escape(name)}\(", re.MULTILINE)
    return any(path.exists() and pattern.search(path.read_text()) for path in paths)


def test_every_test_the_hazard_table_names_exists() -> None:
    references = referenced_tests(SAFETY.read_text())
    assert len(references) > 40  # the table, not a parse that found nothing
    missing = [
        f"{file}::{name}" if name else file
        for file, name in references
        if (name is None and not (TESTS / file).exists())
        or (name is not None and not defined_in(file, name))
    ]
    assert missing == []


def test_a_renamed_test_would_be_caught() -> None:
    text = "| x | y | z | `tests/test_regulation.py::test_no_such_thing`, `::test_fewer_actuations_than_on_off` |"
    refs = referenced_tests(text)
    assert refs == [
        ("test_regulation.py", "test_no_such_thing"),
        ("test_regulation.py", "test_fewer_actuations_than_on_off"),
    ]
    assert not defined_in(*refs[0]) and defined_in(*refs[1])
