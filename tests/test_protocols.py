"""Protocols as data: the packaged files, strict validation with clear messages, custom ones."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance import protocols
from appliance.cli import main
from appliance.protocols import ProtocolError, validate_protocol_dict
from appliance.store import Store, audit

PACKAGED = {
    "standard-30-15-15-15",
    "multi-exercise-leg",
    "aerobic-walk",
    "aerobic-cycle",
    "passive-cyclic",
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "data") as opened:
        yield opened


def standard() -> dict[str, Any]:
    return protocols.packaged_protocols()["standard-30-15-15-15"].to_dict()


def multi() -> dict[str, Any]:
    return protocols.packaged_protocols()["multi-exercise-leg"].to_dict()


def passive() -> dict[str, Any]:
    return protocols.packaged_protocols()["passive-cyclic"].to_dict()


# ---------------------------------------------------------------- the packaged protocols


def test_packaged_protocols_load() -> None:
    found = protocols.installed_protocols()
    assert set(found) >= PACKAGED
    for protocol in found.values():
        assert protocol.origin == "packaged"
        assert protocols.protocol_warnings(protocol) == []
        # Every packaged plan fits its own occlusion limits.
        for exercise in protocol.exercises:
            assert max(exercise.occlusion_bouts_s()) <= exercise.max_occlusion_s


def test_standard_protocol_is_30_15_15_15() -> None:
    p = protocols.installed_protocols()["standard-30-15-15-15"]
    assert (p.kind, p.version, p.limbs) == ("resistance", 1, ("arm", "leg"))
    (exercise,) = p.exercises
    assert [s.reps for s in exercise.sets] == [30, 15, 15, 15]
    assert [s.rest_after_s for s in exercise.sets] == [30.0, 30.0, 30.0, 0.0]
    assert exercise.cadence_s == 2.0 and exercise.inflate_during_rest
    assert exercise.max_occlusion_s == 600.0
    assert (p.pct_lop.for_limb("arm"), p.pct_lop.for_limb("leg")) == (50.0, 80.0)
    assert exercise.occlusion_bouts_s() == [75 * 2.0 + 3 * 30.0]


def test_multi_exercise_releases_between_exercises() -> None:
    p = protocols.installed_protocols()["multi-exercise-leg"]
    assert len(p.exercises) >= 2 and p.limbs == ("leg",)
    assert all(e.reperfusion_after_s >= protocols.MIN_RELEASE_S for e in p.exercises[:-1])
    assert p.exercises[-1].reperfusion_after_s == 0
    with pytest.raises(ProtocolError, match="not for it"):
        p.pct_lop.for_limb("arm")


def test_aerobic_and_passive_protocols() -> None:
    found = protocols.installed_protocols()
    for name in ("aerobic-walk", "aerobic-cycle"):
        (exercise,) = found[name].exercises
        (only,) = exercise.sets
        assert only.duration_s is not None and 300 <= only.duration_s <= 1200
        assert exercise.cadence_s is None
    cyclic = found["passive-cyclic"].exercises[0]
    assert [s.duration_s for s in cyclic.sets] == [300.0] * 5
    assert all(s.rest_after_s >= 180 for s in cyclic.sets[:-1])
    assert not cyclic.inflate_during_rest
    assert cyclic.occlusion_bouts_s() == [300.0] * 5


def test_round_trip_through_dict_and_toml() -> None:
    for protocol in protocols.installed_protocols().values():
        assert validate_protocol_dict(protocol.to_dict()) == protocol
        text = protocols.protocol_to_toml(protocol)
        assert protocols.loads_protocol(text, source="memory") == protocol
        # The snapshot a session stores is plain JSON.
        assert json.loads(json.dumps(protocol.to_dict())) == protocol.to_dict()


# ---------------------------------------------------------------- bad inputs


def edit(base: Callable[[], dict[str, Any]], change: Callable[[dict[str, Any]], None]):
    def make() -> dict[str, Any]:
        data = copy.deepcopy(base())
        change(data)
        return data

    return make


def setitem(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set `exercises.0.sets.1.reps`-style paths."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def delitem(path: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]

    return change


def both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        for one in changes:
            one(data)

    return change


LONG_REASON = "Athlete, cleared by the team physician for high pressure"

BAD = [
    # (id, data, field, message fragment)
    ("unknown-top-key", edit(standard, setitem("colour", "red")), "colour", "unknown key"),
    (
        "typo-exercise-key",
        edit(standard, setitem("exercises.0.cadance_s", 2.0)),
        "exercises[0].cadance_s",
        "unknown key (known: name, title, sets, cadence_s",
    ),
    (
        "typo-set-key",
        edit(standard, setitem("exercises.0.sets.1.rep", 15)),
        "exercises[0].sets[1].rep",
        "unknown key",
    ),
    ("schema-2", edit(standard, setitem("schema", 2)), "schema", "unsupported schema 2"),
    ("schema-missing", edit(standard, delitem("schema")), "schema", "required"),
    ("name-spaces", edit(standard, setitem("name", "My Protocol")), "name", "lower-case"),
    ("version-0", edit(standard, setitem("version", 0)), "version", "must be 1-"),
    ("version-text", edit(standard, setitem("version", "1")), "version", "whole number"),
    ("version-bool", edit(standard, setitem("version", True)), "version", "whole number"),
    ("title-missing", edit(standard, delitem("title")), "title", "required"),
    ("title-blank", edit(standard, setitem("title", "  ")), "title", "must not be empty"),
    ("title-newline", edit(standard, setitem("title", "a\nb")), "title", "control characters"),
    (
        "description-long",
        edit(standard, setitem("description", "x" * 2001)),
        "description",
        "at most 2000 characters",
    ),
    ("kind-unknown", edit(standard, setitem("kind", "yoga")), "kind", "must be one of resistance"),
    ("limb-unknown", edit(standard, setitem("limbs", ["arm", "tail"])), "limbs[1]", "tail"),
    ("limb-twice", edit(standard, setitem("limbs", ["arm", "arm"])), "limbs", "twice"),
    ("limbs-empty", edit(standard, setitem("limbs", [])), "limbs", "must have 1-2 entries"),
    (
        "pct-above-80",
        edit(standard, setitem("pct_lop.leg", 85)),
        "pct_lop.leg",
        "above 80 %: only with allow_above_80 = true",
    ),
    (
        "pct-above-100",
        edit(
            standard,
            both(
                setitem("pct_lop.leg", 101),
                setitem("allow_above_80", True),
                setitem("above_80_reason", LONG_REASON),
            ),
        ),
        "pct_lop.leg",
        "never above 100 %",
    ),
    ("pct-fraction", edit(standard, setitem("pct_lop.arm", 0.5)), "pct_lop.arm", "not a fraction"),
    (
        "pct-text",
        edit(standard, setitem("pct_lop.arm", "fifty")),
        "pct_lop.arm",
        "must be a number",
    ),
    (
        "pct-unknown-limb",
        edit(standard, setitem("pct_lop.foot", 50)),
        "pct_lop.foot",
        "unknown key",
    ),
    (
        "pct-for-absent-limb",
        edit(multi, setitem("pct_lop.arm", 50)),
        "pct_lop.arm",
        "not for the arm",
    ),
    (
        "allow-without-reason",
        edit(standard, both(setitem("pct_lop.leg", 90), setitem("allow_above_80", True))),
        "above_80_reason",
        "at least 20 characters",
    ),
    (
        "allow-with-short-reason",
        edit(standard, both(setitem("allow_above_80", True), setitem("above_80_reason", "ok"))),
        "above_80_reason",
        "at least 20 characters",
    ),
    (
        "reason-without-allow",
        edit(standard, setitem("above_80_reason", LONG_REASON)),
        "above_80_reason",
        "only with allow_above_80 = true",
    ),
    (
        "allow-not-bool",
        edit(standard, setitem("allow_above_80", "yes")),
        "allow_above_80",
        "true or false",
    ),
    ("no-exercises", edit(standard, setitem("exercises", [])), "exercises", "must have 1-10"),
    ("exercises-table", edit(standard, setitem("exercises", {})), "exercises", "must be a list"),
    (
        "set-not-table",
        edit(standard, setitem("exercises.0.sets.0", 30)),
        "exercises[0].sets[0]",
        "must be a table",
    ),
    (
        "reps-and-duration",
        edit(standard, setitem("exercises.0.sets.0.duration_s", 60)),
        "exercises[0].sets[0]",
        "exactly one of reps or duration_s",
    ),
    (
        "neither-reps-nor-duration",
        edit(standard, delitem("exercises.0.sets.0.reps")),
        "exercises[0].sets[0]",
        "exactly one of reps or duration_s",
    ),
    (
        "reps-0",
        edit(standard, setitem("exercises.0.sets.0.reps", 0)),
        "exercises[0].sets[0].reps",
        "must be 1-100, got 0",
    ),
    (
        "reps-float",
        edit(standard, setitem("exercises.0.sets.1.reps", 15.0)),
        "exercises[0].sets[1].reps",
        "whole number",
    ),
    (
        "last-set-rest",
        edit(standard, setitem("exercises.0.sets.3.rest_after_s", 30)),
        "exercises[0].sets[3].rest_after_s",
        "the last set has no rest",
    ),
    (
        "inflated-rest-90",
        edit(standard, setitem("exercises.0.sets.0.rest_after_s", 90)),
        "exercises[0].sets[0].rest_after_s",
        "90 s with the cuff inflated is outside 30-60 s",
    ),
    (
        "rest-negative",
        edit(standard, setitem("exercises.0.sets.0.rest_after_s", -5)),
        "exercises[0].sets[0].rest_after_s",
        "must be 0-1800 s",
    ),
    (
        "rest-bool",
        edit(standard, setitem("exercises.0.sets.0.rest_after_s", True)),
        "exercises[0].sets[0].rest_after_s",
        "must be a number",
    ),
    (
        "cadence-too-fast",
        edit(standard, setitem("exercises.0.cadence_s", 0.5)),
        "exercises[0].cadence_s",
        "must be 1-4 s, got 0.5 s",
    ),
    (
        "cadence-inf",
        edit(standard, setitem("exercises.0.cadence_s", float("inf"))),
        "exercises[0].cadence_s",
        "finite",
    ),
    (
        "arm-over-15-min",
        edit(standard, setitem("exercises.0.max_occlusion_s", 1000)),
        "exercises[0].max_occlusion_s",
        "above the 900 s continuous occlusion limit for the arm",
    ),
    (
        "leg-over-20-min",
        edit(multi, setitem("exercises.0.max_occlusion_s", 1300)),
        "exercises[0].max_occlusion_s",
        "above the 1200 s continuous occlusion limit for the leg",
    ),
    (
        "occlusion-limit-tiny",
        edit(standard, setitem("exercises.0.max_occlusion_s", 30)),
        "exercises[0].max_occlusion_s",
        "at least 60 s",
    ),
    (
        "plan-exceeds-limit",
        edit(standard, setitem("exercises.0.max_occlusion_s", 200)),
        "exercises[0]",
        "planned continuous occlusion 240 s",
    ),
    (
        "last-exercise-reperfusion",
        edit(standard, setitem("exercises.0.reperfusion_after_s", 120)),
        "exercises[0].reperfusion_after_s",
        "the last exercise has no reperfusion",
    ),
    (
        "release-too-short",
        edit(multi, setitem("exercises.0.reperfusion_after_s", 30)),
        "exercises[0].reperfusion_after_s",
        "released between exercises for at least 60 s",
    ),
    (
        "reperfusion-after-limit",
        edit(
            multi,
            both(
                setitem("exercises.0.max_occlusion_s", 1200),
                setitem("exercises.0.reperfusion_after_s", 120),
            ),
        ),
        "exercises[0].reperfusion_after_s",
        "reperfusion must be at least 180 s",
    ),
    (
        "duplicate-exercise",
        edit(multi, setitem("exercises.1.name", "leg-press")),
        "exercises[1].name",
        "used twice",
    ),
    (
        "resistance-timed-set",
        edit(
            standard,
            both(
                delitem("exercises.0.sets.0.reps"),
                setitem("exercises.0.sets.0.duration_s", 60),
            ),
        ),
        "exercises[0].sets[0]",
        "a resistance set is counted in reps",
    ),
    (
        "aerobic-with-reps",
        edit(standard, setitem("kind", "aerobic")),
        "exercises[0].sets",
        "one continuous bout",
    ),
    (
        "aerobic-too-short",
        edit(
            lambda: protocols.packaged_protocols()["aerobic-walk"].to_dict(),
            setitem("exercises.0.sets.0.duration_s", 120),
        ),
        "exercises[0].sets[0].duration_s",
        "aerobic BFR lasts 5-20 min",
    ),
    (
        "cadence-on-timed-sets",
        edit(
            lambda: protocols.packaged_protocols()["aerobic-walk"].to_dict(),
            setitem("exercises.0.cadence_s", 2.0),
        ),
        "exercises[0].cadence_s",
        "only for sets counted in reps",
    ),
    (
        "passive-inflated-rests",
        edit(passive, setitem("exercises.0.inflate_during_rest", True)),
        "exercises[0].inflate_during_rest",
        "passive cycles deflate between bouts",
    ),
    (
        "passive-short-reperfusion",
        edit(passive, setitem("exercises.0.sets.0.rest_after_s", 60)),
        "exercises[0].sets[0].rest_after_s",
        "reperfusion between bouts is at least 180 s",
    ),
    (
        "passive-bout-over-limit",
        edit(passive, setitem("exercises.0.sets.0.duration_s", 400)),
        "exercises[0]",
        "planned continuous occlusion 400 s",
    ),
    ("not-a-table", lambda: ["schema", 1], "(file)", "must be a table"),
]


@pytest.mark.parametrize(
    ("data", "field", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_invalid_protocols_are_rejected_with_field_and_reason(
    data: Callable[[], Any], field: str, fragment: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        validate_protocol_dict(data())
    assert caught.value.field == field, str(caught.value)
    assert fragment in caught.value.problem, str(caught.value)
    assert str(caught.value).startswith(f"{field}: ")


def test_above_80_is_allowed_with_a_reason() -> None:
    data = standard()
    data.update(allow_above_80=True, above_80_reason=LONG_REASON)
    data["pct_lop"]["leg"] = 90
    protocol = validate_protocol_dict(data)
    assert protocol.pct_lop.for_limb("leg") == 90.0
    assert protocols.protocol_warnings(protocol) == ["leg: 90 % LOP is outside the typical 60-80 %"]


def test_defaults_fill_what_a_file_leaves_out() -> None:
    minimal = {
        "schema": 1,
        "name": "minimal",
        "version": 1,
        "title": "Minimal",
        "kind": "resistance",
        "exercises": [{"name": "main", "sets": [{"reps": 30}, {"reps": 15}]}],
    }
    p = validate_protocol_dict(minimal)
    assert p.limbs == ("arm", "leg")
    assert (p.pct_lop.arm, p.pct_lop.leg) == (50.0, 80.0)
    (exercise,) = p.exercises
    assert exercise.title == "main" and exercise.cadence_s == 2.0
    assert exercise.inflate_during_rest and exercise.max_occlusion_s == 600.0
    assert [s.rest_after_s for s in exercise.sets] == [30.0, 0.0]


def test_check_pct_lop_for_settings_made_at_the_table() -> None:
    assert protocols.check_pct_lop("arm", 45) == 45.0
    with pytest.raises(ProtocolError, match="allow_above_80"):
        protocols.check_pct_lop("leg", 85)
    with pytest.raises(ProtocolError, match="at least 20 characters"):
        protocols.check_pct_lop("leg", 85, allow_above_80=True, reason="because")
    assert protocols.check_pct_lop("leg", 85, allow_above_80=True, reason=LONG_REASON) == 85.0
    with pytest.raises(ProtocolError, match="never above 100"):
        protocols.check_pct_lop("leg", 120, allow_above_80=True, reason=LONG_REASON)
    with pytest.raises(ProtocolError, match="limb"):
        protocols.check_pct_lop("hand", 50)


# ---------------------------------------------------------------- files


def test_load_protocol_names_the_file_in_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("schema = 1\nname = [unclosed\n")
    with pytest.raises(ProtocolError, match="not valid TOML") as caught:
        protocols.load_protocol(broken)
    assert str(broken) in str(caught.value)

    renamed = tmp_path / "other-name.toml"
    renamed.write_text(protocols.protocol_to_toml(protocols.packaged_protocols()["aerobic-walk"]))
    with pytest.raises(ProtocolError, match="does not match the file name") as caught:
        protocols.load_protocol(renamed)
    assert caught.value.field == "name"

    bad_value = tmp_path / "bad-value.toml"
    bad_value.write_text(
        protocols.protocol_to_toml(protocols.packaged_protocols()["aerobic-walk"])
        .replace('name = "aerobic-walk"', 'name = "bad-value"')
        .replace("leg = 60", "leg = 95")
    )
    with pytest.raises(ProtocolError) as caught:
        protocols.load_protocol(bad_value)
    assert str(caught.value).startswith(f"{bad_value}: pct_lop.leg: 95 % LOP is above 80 %")


def custom(name: str = "knee-rehab", version: int = 1) -> protocols.Protocol:
    data = standard()
    data.update(name=name, version=version, title="Knee rehab, gentle", limbs=["leg"])
    data["pct_lop"] = {"leg": 70}
    data["exercises"][0]["sets"] = [{"reps": 20, "rest_after_s": 45}, {"reps": 10}]
    return validate_protocol_dict(data)


def test_custom_protocols_save_load_and_audit(store: Store) -> None:
    saved = protocols.save_custom_protocol(store, custom(), by="dr-a", reason="gentler start")
    assert saved.origin == "custom"
    path = store.data_dir / "protocols" / "knee-rehab.toml"
    assert path.is_file()
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files left
    found = protocols.installed_protocols(store.data_dir)
    assert PACKAGED | {"knee-rehab"} == set(found)
    assert found["knee-rehab"] == custom() and found["knee-rehab"].origin == "custom"

    with pytest.raises(ProtocolError, match="must be above the saved version 1"):
        protocols.save_custom_protocol(store, custom(version=1), by="dr-a")
    protocols.save_custom_protocol(store, custom(version=2), by="dr-b")
    assert protocols.installed_protocols(store.data_dir)["knee-rehab"].version == 2

    entries = audit.audit_trail(store, action=audit.PROTOCOL_SAVE)
    assert [(e.actor, e.subject, e.detail["version"]) for e in entries] == [
        ("dr-a", "protocol:knee-rehab", 1),
        ("dr-b", "protocol:knee-rehab", 2),
    ]
    assert entries[0].reason == "gentler start"
    assert entries[1].detail["previous_version"] == 1
    assert entries[1].detail["protocol"]["pct_lop"] == {"leg": 70.0}


def test_custom_protocol_may_not_take_a_packaged_name(store: Store) -> None:
    with pytest.raises(ProtocolError, match="packaged protocol"):
        protocols.save_custom_protocol(store, custom(name="standard-30-15-15-15"), by="dr-a")
    assert audit.audit_trail(store) == []


def test_a_bad_custom_file_is_reported_not_fatal(store: Store) -> None:
    protocols.save_custom_protocol(store, custom(), by="dr-a")
    folder = store.data_dir / "protocols"
    (folder / "broken.toml").write_text("schema = 1\n")
    shadow = protocols.protocol_to_toml(protocols.packaged_protocols()["aerobic-walk"])
    (folder / "aerobic-walk.toml").write_text(shadow)
    found, problems = protocols.load_custom_protocols(store.data_dir)
    assert set(found) == {"knee-rehab"}
    assert sorted(p.field for p in problems) == ["name", "name"]
    assert any("is a packaged protocol" in str(p) for p in problems)
    assert any("broken.toml: name: required" in str(p) for p in problems)
    assert "knee-rehab" in protocols.installed_protocols(store.data_dir)


# ---------------------------------------------------------------- `bfr protocols`


def test_cli_lists_protocols(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["protocols"]) == 0
    out = capsys.readouterr().out
    for name in PACKAGED:
        assert name in out
    assert "Standard resistance: 4 sets, 30-15-15-15 reps" in out
    assert "resistance" in out and "aerobic" in out and "passive" in out


def test_cli_lists_json_with_custom_ones(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    protocols.save_custom_protocol(store, custom(), by="dr-a")
    assert main(["protocols", "--json", "--data-dir", str(store.data_dir)]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert set(listed) == PACKAGED | {"knee-rehab"}
    assert listed["knee-rehab"]["origin"] == "custom"
    assert listed["standard-30-15-15-15"]["kind"] == "resistance"
    assert listed["standard-30-15-15-15"]["title"].startswith("Standard resistance")


def test_cli_reports_bad_custom_files(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    folder = store.data_dir / "protocols"
    folder.mkdir()
    (folder / "broken.toml").write_text("schema = 1\n")
    assert main(["protocols", "--data-dir", str(store.data_dir)]) == 1
    captured = capsys.readouterr()
    assert "standard-30-15-15-15" in captured.out
    assert "broken.toml: name: required" in captured.err
    assert main(["protocols", "--data-dir", str(store.data_dir / "missing")]) == 2
    assert "no such data directory" in capsys.readouterr().err
