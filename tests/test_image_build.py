"""Logic of the image build: build inputs, partition layout, manifest, templated files, scripts.

The build itself (`make image`) and the QEMU boot (`make image-test`) are slow and marked `image`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
IMAGE = PROJECT / "image"
sys.path.insert(0, str(IMAGE))

from imagebuild import config, layout, manifest, render  # noqa: E402

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBuildTestKeyOnlyForTheTestsXXXXXXXXXXXXXX tech@laptop"


def load(text: str = "", environ: dict[str, str] | None = None, base: Path | None = None):
    return config.load(text, environ or {}, base_dir=base)


# --- build inputs -------------------------------------------------------------------------------


def test_shipped_build_env_is_valid() -> None:
    cfg = load((IMAGE / "build.env").read_text(), base=IMAGE)
    assert cfg["DEBIAN_SUITE"] == "bookworm"
    assert isinstance(cfg["SOURCE_DATE_EPOCH"], int)


def test_defaults_and_quoting() -> None:
    cfg = load(
        'CLINIC_NAME="Praxis Dr. Müller" # front desk\nHOSTNAME=bfr-07\nSOURCE_DATE_EPOCH=0\n'
    )
    assert cfg["CLINIC_NAME"] == "Praxis Dr. Müller"
    assert cfg["HOSTNAME"] == "bfr-07"
    assert cfg["ROOT_SIZE_MIB"] == 2560


def test_unknown_key_is_named() -> None:
    with pytest.raises(config.ConfigError, match="HOSTNAM: unknown"):
        load("CLINIC_NAME=x\nSOURCE_DATE_EPOCH=1\nHOSTNAM=bfr\n")


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("HOSTNAME=BFR_01", "HOSTNAME"),
        ("HOSTNAME=-bfr", "HOSTNAME"),
        ("ROOT_SIZE_MIB=512", "ROOT_SIZE_MIB"),
        ("BOOT_SIZE_MIB=lots", "BOOT_SIZE_MIB"),
        ("TECH_USER=root", "TECH_USER"),
        ("TECH_USER=kiosk", "TECH_USER"),
        ("DEBIAN_MIRROR=ftp://mirror", "DEBIAN_MIRROR"),
        ("DEBIAN_SNAPSHOT=2025-05-20", "DEBIAN_SNAPSHOT"),
        ("TIMEZONE=berlin", "TIMEZONE"),
        ("UI_LANGUAGE=english", "UI_LANGUAGE"),
        ("CLINIC_NAME=", "CLINIC_NAME"),
    ],
)
def test_out_of_range_values_name_their_key(line: str, key: str) -> None:
    with pytest.raises(config.ConfigError, match=f"^{key}:"):
        load(f"CLINIC_NAME=Clinic\nSOURCE_DATE_EPOCH=1\n{line}\n")


def test_malformed_line() -> None:
    with pytest.raises(config.ConfigError, match="line 2"):
        load("CLINIC_NAME=x\nthis is not a setting\n")
    with pytest.raises(config.ConfigError, match="CLINIC_NAME: quote"):
        load("CLINIC_NAME=two words\n")


def test_environment_overrides_only_known_bfr_keys() -> None:
    cfg = load(
        "CLINIC_NAME=A\nSOURCE_DATE_EPOCH=1\n",
        {"BFR_HOSTNAME": "bfr-02", "HOSTNAME": "buildhost", "BFR_NOT_A_KEY": "x"},
    )
    assert cfg["HOSTNAME"] == "bfr-02"


def test_snapshot_pins_mirrors_and_epoch() -> None:
    cfg = load("CLINIC_NAME=A\nDEBIAN_SNAPSHOT=20250520T000000Z\n")
    assert cfg["DEBIAN_MIRROR"] == "http://snapshot.debian.org/archive/debian/20250520T000000Z"
    assert cfg["DEBIAN_SECURITY_MIRROR"].endswith("/debian-security/20250520T000000Z")
    assert cfg["SOURCE_DATE_EPOCH"] == 1747699200


def test_source_date_epoch_required_without_snapshot() -> None:
    with pytest.raises(config.ConfigError, match="SOURCE_DATE_EPOCH: required"):
        load("CLINIC_NAME=A\n")


def test_authorized_keys_file(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text(f"# technicians\n{KEY}\n\n")
    cfg = load("CLINIC_NAME=A\nSOURCE_DATE_EPOCH=1\nSSH_AUTHORIZED_KEYS_FILE=keys\n", base=tmp_path)
    assert cfg.ssh_keys == (KEY,)
    (tmp_path / "bad").write_text("password123\n")
    with pytest.raises(config.ConfigError, match="bad:1 is not a public key"):
        load("CLINIC_NAME=A\nSOURCE_DATE_EPOCH=1\nSSH_AUTHORIZED_KEYS_FILE=bad\n", base=tmp_path)
    with pytest.raises(config.ConfigError, match="does not exist"):
        load("CLINIC_NAME=A\nSOURCE_DATE_EPOCH=1\nSSH_AUTHORIZED_KEYS_FILE=none\n", base=tmp_path)


def test_shell_exports_round_trip() -> None:
    cfg = load('CLINIC_NAME="O\'Brien & Sons"\nSOURCE_DATE_EPOCH=5\n')
    script = cfg.shell_exports() + 'printf "%s|%s" "$CLINIC_NAME" "$SOURCE_DATE_EPOCH"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout == "O'Brien & Sons|5"


def test_cli_reports_errors_with_status_2(tmp_path: Path) -> None:
    env_file = tmp_path / "build.env"
    env_file.write_text("CLINIC_NAME=A\nSOURCE_DATE_EPOCH=1\nROOT_SIZE=1\n")
    result = subprocess.run(
        [sys.executable, "-m", "imagebuild", "config", str(env_file)],
        capture_output=True,
        text=True,
        cwd=IMAGE,
        env={**os.environ, "PYTHONPATH": str(IMAGE)},
    )
    assert result.returncode == 2
    assert "ROOT_SIZE: unknown" in result.stderr


# --- partition layout ---------------------------------------------------------------------------


def test_layout_four_aligned_partitions() -> None:
    plan = layout.plan(256, 2560, 1024)
    names = [p.name for p in plan.partitions]
    assert names == ["boot", "root-a", "root-b", "data"]
    for part in plan.partitions:
        assert part.start_mib % layout.ALIGN_MIB == 0
        assert part.size_mib % layout.ALIGN_MIB == 0
    for before, after in zip(plan.partitions, plan.partitions[1:], strict=False):
        assert after.start_mib == before.start_mib + before.size_mib
    assert plan.by_name("root-a").size_mib == plan.by_name("root-b").size_mib
    assert plan.by_name("root-b").label == ""  # blank until an A/B update writes it
    assert plan.partitions[0].start_sector == 8192
    assert plan.size_mib == 4 + 256 + 2 * 2560 + 1024


def test_layout_rounds_up_and_rejects_nonsense() -> None:
    plan = layout.plan(65, 1025, 130)
    assert [p.size_mib for p in plan.partitions] == [68, 1028, 1028, 132]
    with pytest.raises(ValueError, match="boot must be at least"):
        layout.plan(32, 1024, 128)
    with pytest.raises(ValueError, match="data size"):
        layout.plan(256, 1024, 0)


def test_disk_id_is_stable() -> None:
    assert (
        layout.plan(256, 2048, 512, seed="x").disk_id
        == layout.plan(256, 2048, 512, seed="x").disk_id
    )
    assert layout.disk_id_for("a") != layout.disk_id_for("b")


def test_sfdisk_script() -> None:
    script = layout.sfdisk_script(layout.plan(256, 2048, 512, seed="s"))
    lines = script.splitlines()
    assert lines[0] == "label: dos"
    assert lines[4] == "start=8192, size=524288, type=c, bootable"
    assert lines[5].endswith("type=83")
    assert len([line for line in lines if line.startswith("start=")]) == 4


@pytest.mark.skipif(shutil.which("sfdisk") is None, reason="needs sfdisk")
def test_sfdisk_accepts_the_script_on_an_image_file(tmp_path: Path) -> None:
    plan = layout.plan(64, 1024, 128, seed="t")
    disk = tmp_path / "disk.img"
    with disk.open("wb") as f:
        f.truncate(plan.size_mib * layout.MIB)
    subprocess.run(
        ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(disk)],
        input=layout.sfdisk_script(plan),
        text=True,
        check=True,
    )
    table = json.loads(
        subprocess.run(
            ["sfdisk", "--json", str(disk)], capture_output=True, text=True, check=True
        ).stdout
    )
    parts = table["partitiontable"]["partitions"]
    assert [(p["start"], p["size"]) for p in parts] == [
        (p.start_sector, p.size_sectors) for p in plan.partitions
    ]
    assert table["partitiontable"]["id"] == plan.disk_id


def test_shell_vars() -> None:
    text = layout.shell_vars(layout.plan(256, 2048, 512))
    assert "PART_ROOT_A_START_MIB=260" in text
    assert "PART_DATA_LABEL=bfr-data" in text
    assert "PART_BOOT_LABEL=BFR-BOOT" in text


def test_labels_match_the_root_configuration() -> None:
    """fstab, raspi-firmware and data.mount find the partitions by these labels."""
    plan = layout.plan(256, 2048, 512)
    fstab = (IMAGE / "overlay/etc/fstab").read_text()
    assert f"LABEL={plan.by_name('boot').label} " in fstab
    assert f"LABEL={plan.by_name('root-a').label} " in fstab
    raspi = (IMAGE / "overlay/etc/default/raspi-firmware").read_text()
    assert f'ROOTPART="LABEL={plan.by_name("root-a").label}"' in raspi
    data_mount = (PROJECT / "systemd/data.mount").read_text()
    assert f"What=/dev/disk/by-label/{plan.by_name('data').label}" in data_mount


# --- manifest -----------------------------------------------------------------------------------


def test_manifest_sorted_sections() -> None:
    text = manifest.render(
        {"release": "0.1.0", "image": "bfr-appliance-0.1.0"},
        "systemd\t252.39-1~deb12u1\tarm64\nchromium\t140.0\tarm64\n",
        "# comment\nnumpy==2.4.6\nFlask==3.1.3\n",
    )
    lines = text.splitlines()
    assert lines.index("image = bfr-appliance-0.1.0") < lines.index("release = 0.1.0")
    dpkg_at = lines.index("[dpkg] 2 packages")
    assert lines[dpkg_at + 1].split() == ["chromium", "140.0", "arm64"]
    assert lines[dpkg_at + 2].split() == ["systemd", "252.39-1~deb12u1", "arm64"]
    pip_at = lines.index("[pip] 2 distributions")
    assert lines[pip_at + 1 :] == ["Flask==3.1.3", "numpy==2.4.6"]


def test_manifest_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="dpkg-query"):
        manifest.parse_dpkg("just-a-name\n")


# --- templated files ----------------------------------------------------------------------------


def test_rendered_files(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text(KEY + "\n")
    cfg = load(
        'CLINIC_NAME="The \\"Best\\" Clinic"\nSOURCE_DATE_EPOCH=1\nHOSTNAME=bfr-09\n'
        "SSH_AUTHORIZED_KEYS_FILE=keys\nTECH_USER=service\nSELFTEST_MAX_AGE_H=24\n",
        base=tmp_path,
    )
    root = tmp_path / "root"
    render.write(root, render.files(cfg, IMAGE / "templates", "0.1.0"))
    site = tomllib.loads((root / "etc/bfr/site.toml").read_text())
    assert site["clinic_name"] == 'The "Best" Clinic'
    assert site["hostname"] == "bfr-09"
    appliance = tomllib.loads((root / "etc/bfr/bfr.toml").read_text())
    assert appliance["paths"]["data_dir"] == "/data/bfr"
    assert appliance["readiness"]["selftest_max_age_h"] == 24
    assert (root / "etc/hostname").read_text() == "bfr-09\n"
    assert "127.0.1.1\tbfr-09" in (root / "etc/hosts").read_text()
    assert (root / "etc/ssh/authorized_keys/service").read_text() == KEY + "\n"
    sshd = (root / "etc/ssh/sshd_config.d/bfr.conf").read_text()
    for line in ("PasswordAuthentication no", "PermitRootLogin no", "AllowUsers service"):
        assert line in sshd.splitlines()
    assert (root / "etc/sudoers.d/bfr-technician").stat().st_mode & 0o777 == 0o440


# --- scripts ------------------------------------------------------------------------------------

SCRIPTS = sorted([*IMAGE.glob("*.sh"), *(IMAGE / "hooks").iterdir()], key=lambda p: p.name)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_and_are_executable(script: Path) -> None:
    shell = "bash" if script.read_text().startswith("#!/bin/bash") else "sh"
    subprocess.run([shell, "-n", str(script)], check=True)
    assert os.access(script, os.X_OK)


def test_hooks_are_named_for_mmdebstrap() -> None:
    for hook in (IMAGE / "hooks").iterdir():
        assert hook.name.startswith(("setup", "extract", "essential", "customize")), hook.name


def test_packages_list() -> None:
    lines = (IMAGE / "packages.txt").read_text().splitlines()
    packages = [line for line in lines if line and not line.startswith("#")]
    assert len(packages) == len(set(packages))
    for needed in ("linux-image-arm64", "raspi-firmware", "cage", "chromium", "python3-systemd"):
        assert needed in packages


def test_constraints_pin_every_distribution() -> None:
    lines = (IMAGE / "constraints.txt").read_text().splitlines()
    pins = [line for line in lines if line and not line.startswith("#")]
    assert pins and all("==" in pin for pin in pins)
    assert any(pin.startswith("lgpio==") for pin in pins)


# --- the real build (make image / make image-test) ----------------------------------------------


@pytest.mark.image
def test_image_builds_and_boots() -> None:
    subprocess.run(["make", "-C", str(PROJECT), "image", "image-test"], check=True, timeout=7200)


def test_appliance_config_is_accepted_by_the_strict_loader(tmp_path: Path) -> None:
    from appliance.config import parse_config

    cfg = load("CLINIC_NAME=A\nSOURCE_DATE_EPOCH=1\nSELFTEST_MAX_AGE_H=24\n", base=tmp_path)
    rendered = render.files(cfg, IMAGE / "templates", "0")
    config = parse_config(tomllib.loads(rendered["etc/bfr/bfr.toml"][0]))
    assert config.readiness.selftest_max_age_s == 24 * 3600.0
