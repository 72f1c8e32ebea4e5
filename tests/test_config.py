"""The appliance's TOML configuration: strict, typed, ranged; every error names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import ApplianceConfig, ConfigError, load_config, parse_config


def test_defaults_without_a_file() -> None:
    config = load_config(None)
    assert config == ApplianceConfig()
    assert config.readiness.selftest_max_age_s is None  # a passed self-test does not expire
    assert config.paths.technician_socket == "/run/bfr/technician.sock"


def test_a_site_file_sets_the_clinics_self_test_age_limit(tmp_path: Path) -> None:
    path = tmp_path / "bfr.toml"
    path.write_text('[readiness]\nselftest_max_age_h = 24\n[paths]\ndata_dir = "/srv/bfr"\n')
    config = load_config(path)
    assert config.readiness.selftest_max_age_s == 24 * 3600.0
    assert config.paths.data_dir == "/srv/bfr"
    assert config.paths.socket == "/run/bfr/controller.sock"  # the rest stays default


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ({"readiness": {"selftest_max_age_h": -1}}, "[readiness] selftest_max_age_h: must be 0"),
        ({"readiness": {"selftest_max_age_h": 9000}}, "to 8760 hours"),
        ({"readiness": {"selftest_max_age_h": "24"}}, "expected a number"),
        ({"readiness": {"selftest_max_age_h": True}}, "expected a number"),
        ({"readiness": {"max_age": 24}}, "[readiness] max_age: unknown key"),
        ({"readiness": 24}, "[readiness] must be a table"),
        ({"policy": {}}, "unknown section(s): policy"),
        ({"paths": {"socket": 5}}, "[paths] socket: expected text"),
        ({"hardware": {"gain": 2}}, "readings would clip below the 300 mmHg cap"),
    ],
)
def test_bad_values_are_refused_naming_the_key(document: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(document)
    assert needle in str(info.value)


def test_a_missing_or_broken_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[readiness\n")
    with pytest.raises(ConfigError, match="broken.toml"):
        load_config(broken)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[readiness]\nselftest_max_age_h = -2\n")
    with pytest.raises(ConfigError, match=r"wrong\.toml: \[readiness\] selftest_max_age_h"):
        load_config(wrong)
