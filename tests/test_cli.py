"""The `bfr` command line: every command listed, a broken one isolated."""

from __future__ import annotations

import types

import pytest

from appliance import cli


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in (
        "controller",
        "run",
        "web",
        "sim",
        "lop-estimate",
        "protocols",
        "export",
        "calibrate",
        "selftest",
        "status",
        "logs",
        "update",
        "rollback",
        "deflate",
    ):
        assert name in out


def test_a_broken_command_module_does_not_break_the_others(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_import = cli.importlib.import_module

    def importer(name: str, *a: object) -> types.ModuleType:
        if name.endswith(".export"):
            raise ImportError("simulated missing dependency")
        return real_import(name, *a)

    monkeypatch.setattr(cli.importlib, "import_module", importer)
    assert cli.main(["export"]) == 2
    assert "unavailable in this installation" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        cli.main(["controller", "--help"])
    assert done.value.code == 0
