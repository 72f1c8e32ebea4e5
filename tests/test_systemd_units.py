"""The appliance's systemd units: `systemd-analyze verify` clean, exposure limits, safety settings.

`systemd-analyze verify` needs every program a unit starts to exist, so the units are checked
against a temporary root holding systemd's own units and stub executables. The image build runs
the same script against the real root.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
UNITS = PROJECT / "systemd"
VERIFY = PROJECT / "image" / "verify-units.sh"
SIM_DROPIN = PROJECT / "image" / "boot-test" / "controller-sim.conf"
SYSTEM_UNITS = next(
    (p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()),
    None,
)

needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or SYSTEM_UNITS is None,
    reason="needs systemd-analyze and systemd's units",
)


def parse_unit(path: Path) -> dict[str, list[str]]:
    """`Section.Key` -> values in order; continuation lines joined; an empty value resets."""
    result: dict[str, list[str]] = {}
    section = ""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if pending:
            line = pending + " " + line
            pending = ""
        if line.endswith("\\"):
            pending = line[:-1].strip()
            continue
        logical.append(line)
    for line in logical:
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        values = result.setdefault(f"{section}.{key.strip()}", [])
        if value.strip():
            values.append(value.strip())
        else:
            values.clear()
    return result


def one(unit: dict[str, list[str]], key: str) -> str:
    values = unit.get(key, [])
    assert len(values) == 1, f"{key}: expected one value, got {values}"
    return values[0]


def words(unit: dict[str, list[str]], key: str) -> set[str]:
    return {word for value in unit.get(key, []) for word in value.split()}


def executables(unit_file: Path) -> set[str]:
    """Absolute programs started by a unit (after systemd's -@:+! prefixes)."""
    found = set()
    for key, values in parse_unit(unit_file).items():
        if re.match(r"Service\.Exec(Start|Stop|Reload)", key):
            for value in values:
                found.add(value.lstrip("-@:+!").split()[0])
    return found


def stub_root(tmp: Path) -> Path:
    """A root with systemd's units, the appliance units and stubs for every program they start."""
    root = tmp / "root"
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    target = root / "usr/lib/systemd/system"
    unit_files = [*UNITS.glob("*.service"), *UNITS.glob("*.mount")]
    for unit in unit_files:
        shutil.copy(unit, target / unit.name)
    release = root / "opt/bfr/releases/0.0.0"
    release.mkdir(parents=True)
    (root / "opt/bfr/current").symlink_to("releases/0.0.0")
    programs = {p for unit in unit_files for p in executables(unit)}
    programs |= executables(SIM_DROPIN)
    for program in programs:
        stub = root / program.lstrip("/")
        if stub.exists():
            continue
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stub_root(tmp_path_factory.mktemp("units"))


def run_verify(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(VERIFY), str(root)], capture_output=True, text=True)


@needs_systemd
def test_units_verify_without_any_output(root: Path) -> None:
    result = run_verify(root)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "units verified" in result.stdout


@needs_systemd
def test_verify_fails_on_a_warning(tmp_path: Path) -> None:
    """systemd-analyze only warns on an unknown key; the check must still fail."""
    bad_root = stub_root(tmp_path)
    unit = bad_root / "usr/lib/systemd/system/bfr-web.service"
    unit.write_text(unit.read_text().replace("[Service]\n", "[Service]\nRestartt=always\n"))
    result = run_verify(bad_root)
    assert result.returncode != 0
    assert "Restartt" in result.stderr


@needs_systemd
def test_sim_dropin_verifies(root: Path) -> None:
    dropin = root / "etc/systemd/system/bfr-controller.service.d"
    dropin.mkdir(parents=True)
    shutil.copy(SIM_DROPIN, dropin / "sim.conf")
    try:
        result = run_verify(root)
    finally:
        shutil.rmtree(dropin)
    assert result.returncode == 0 and result.stderr == "", result.stderr


@needs_systemd
@pytest.mark.parametrize(
    ("unit", "limit"),
    [("bfr-controller.service", 1.5), ("bfr-web.service", 2.0), ("bfr-kiosk.service", 5.5)],
)
def test_exposure_score(root: Path, unit: str, limit: float) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", f"--root={root}", unit],
        capture_output=True,
        text=True,
        cwd="/",
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= limit


def test_controller_is_a_watched_notify_service() -> None:
    unit = parse_unit(UNITS / "bfr-controller.service")
    assert one(unit, "Service.Type") == "notify"
    assert one(unit, "Service.NotifyAccess") == "main"
    assert one(unit, "Service.WatchdogSec") == "2s"
    assert one(unit, "Service.Restart") == "always"
    assert one(unit, "Service.ExecStart") == (
        "/opt/bfr/current/bin/bfr controller --config /etc/bfr/bfr.toml"
    )
    assert "GPIOZERO_PIN_FACTORY=lgpio" in words(unit, "Service.Environment")
    assert "bfr-web.service" in words(unit, "Unit.Before")


def test_controller_deflates_when_stopped() -> None:
    unit = parse_unit(UNITS / "bfr-controller.service")
    # The controller deflates on SIGTERM; stop must not escalate to SIGKILL before it can.
    assert one(unit, "Service.KillSignal") == "SIGTERM"
    assert 2 <= int(one(unit, "Service.TimeoutStopSec").rstrip("s")) <= 10
    stop_post = one(unit, "Service.ExecStopPost")
    assert stop_post.startswith("-/opt/bfr/current/bin/bfr deflate --force")


def test_controller_sandbox() -> None:
    unit = parse_unit(UNITS / "bfr-controller.service")
    assert one(unit, "Service.User") == "bfr-ctl"
    assert words(unit, "Service.SupplementaryGroups") == {"i2c", "gpio"}
    assert one(unit, "Service.ProtectSystem") == "strict"
    assert one(unit, "Service.ProtectHome") == "yes"
    assert one(unit, "Service.PrivateTmp") == "yes"
    assert one(unit, "Service.NoNewPrivileges") == "yes"
    assert unit["Service.CapabilityBoundingSet"] == []
    assert one(unit, "Service.ReadWritePaths") == "/data/bfr"
    assert one(unit, "Service.RuntimeDirectory") == "bfr"
    assert one(unit, "Service.WorkingDirectory") == "/run/bfr"
    assert one(unit, "Service.RestrictAddressFamilies") == "AF_UNIX"
    assert one(unit, "Service.DevicePolicy") == "closed"
    assert set(unit["Service.DeviceAllow"]) == {"/dev/i2c-1 rw", "char-gpiochip rw"}
    assert unit["Service.SystemCallFilter"][0] == "@system-service"


def test_web_service() -> None:
    unit = parse_unit(UNITS / "bfr-web.service")
    assert one(unit, "Service.ExecStart") == (
        "/opt/bfr/current/bin/bfr web --config /etc/bfr/bfr.toml --host 127.0.0.1 --port 8080"
    )
    assert one(unit, "Service.User") == "bfr-web"
    assert "bfr-controller.service" in words(unit, "Unit.After")
    assert "bfr-controller.service" in words(unit, "Unit.Wants")
    assert one(unit, "Service.ReadWritePaths") == "/data/bfr"
    assert one(unit, "Service.ProtectSystem") == "strict"
    assert unit["Service.CapabilityBoundingSet"] == []
    assert one(unit, "Service.IPAddressDeny") == "any"


def test_kiosk_service() -> None:
    unit = parse_unit(UNITS / "bfr-kiosk.service")
    start = one(unit, "Service.ExecStart").split()
    assert start[0] == "/usr/bin/cage"
    assert "/usr/bin/chromium" in start
    assert start[start.index("--kiosk") + 1] == "http://127.0.0.1:8080/"
    for flag in (
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--noerrdialogs",
        "--disable-translate",
        "--overscroll-history-navigation=0",
    ):
        assert flag in start, flag
    assert one(unit, "Service.User") == "kiosk"
    assert one(unit, "Service.TTYPath") == "/dev/tty1"
    assert one(unit, "Service.Restart") == "always"
    assert "getty@tty1.service" in words(unit, "Unit.Conflicts")


def test_hardware_watchdog() -> None:
    conf = parse_unit(UNITS / "watchdog.conf")
    seconds = int(one(conf, "Manager.RuntimeWatchdogSec").rstrip("s"))
    assert 5 <= seconds <= 15  # bcm2835_wdt cannot count beyond about 15 s


def test_journal_is_bounded() -> None:
    conf = parse_unit(UNITS / "journald.conf")
    assert one(conf, "Journal.Storage") == "persistent"
    assert one(conf, "Journal.SystemMaxUse").endswith("M")
    bind = parse_unit(UNITS / "var-log-journal.mount")
    assert one(bind, "Mount.What") == "/data/journal"
    assert one(bind, "Mount.Where") == "/var/log/journal"


def test_data_mount_survives_power_cuts() -> None:
    unit = parse_unit(UNITS / "data.mount")
    assert one(unit, "Mount.Where") == "/data"
    assert one(unit, "Mount.Type") == "ext4"
    options = one(unit, "Mount.Options").split(",")
    assert "data=journal" in options
    assert "errors=remount-ro" in options
    assert any(opt.startswith("commit=") for opt in options)
    assert any(dep.startswith("systemd-fsck@") for dep in words(unit, "Unit.Requires"))
    # Wanted, not required: a broken data partition must not drop the boot into emergency mode.
    assert one(unit, "Install.WantedBy") == "local-fs.target"


def test_data_directories_and_users() -> None:
    tmpfiles = (UNITS / "bfr.tmpfiles").read_text()
    assert re.search(r"^d /data/bfr 2770 bfr-ctl bfr", tmpfiles, re.M)
    sysusers = (UNITS / "bfr.sysusers").read_text()
    memberships = re.findall(r"^m bfr-ctl (\S+)", sysusers, re.M)
    assert sorted(memberships) == ["gpio", "i2c"]
