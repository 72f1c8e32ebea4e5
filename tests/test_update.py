"""Updates and rollbacks in a temporary release tree: bundles are checked, a good release is
switched to atomically with its database migrated, a broken one is rolled back with the database
restored, and a manual rollback restores the database only when the old release needs it.

systemd, the health URL and the release's own Python are fakes; one test builds a real bundle and
installs it into a real (pip-less, seeded) virtualenv."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.store import DB_NAME, Store, migrations, records
from appliance.store.audit import audit_trail
from appliance.store.db import connect
from appliance.technician import release as release_tool
from appliance.technician.bundle import build_bundle, new_key, open_bundle
from appliance.technician.errors import TechnicianError
from appliance.technician.install import InstallRequest, install_release
from appliance.technician.progress import Progress
from appliance.technician.release_tree import ReleaseTree
from appliance.technician.services import HealthCheck
from appliance.technician.update import (
    RollbackFailed,
    UpdateFailed,
    UpdateHost,
    read_last_update,
    rollback,
    update,
)
from tests.clinic import start_running_session

EXTRA = migrations.Migration(3, "a table of a newer release", ("CREATE TABLE extra (x INTEGER)",))


def make_wheel(directory: Path, version: str) -> Path:
    """A minimal real wheel of bfr_appliance whose `bfr` prints its version."""
    dist = f"bfr_appliance-{version}.dist-info"
    files = {
        "appliance/__init__.py": f'__version__ = "{version}"\n',
        "appliance/cli.py": "from appliance import __version__\n\n\n"
        "def main():\n    print('bfr', __version__)\n    return 0\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: bfr-appliance\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
        f"{dist}/entry_points.txt": "[console_scripts]\nbfr = appliance.cli:main\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"bfr_appliance-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        zf.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return path


class FakeSystemctl:
    """Units are up after a start unless the release `current` points to is marked broken."""

    def __init__(self, tree: ReleaseTree) -> None:
        self.tree = tree
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.running = True

    def available(self) -> bool:
        return True

    def stop(self, units) -> None:
        self.calls.append(("stop", tuple(units)))
        self.running = False

    def start(self, units) -> None:
        self.calls.append(("start", tuple(units)))
        self.running = True

    def show(self, unit: str, properties) -> dict[str, str]:
        if not self.running:
            return {"ActiveState": "inactive", "SubState": "dead"}
        current = self.tree.path(self.tree.current() or "none")
        if unit == "bfr-controller.service" and (current / "controller-crashes").exists():
            return {"ActiveState": "failed", "SubState": "failed", "Result": "exit-code"}
        return {"ActiveState": "active", "SubState": "running", "NRestarts": "0"}


class FakeDatabase:
    """A release's migrations: the real ones, plus a third if its directory says so."""

    def _known(self, release: Path) -> tuple[migrations.Migration, ...]:
        return (
            (*migrations.MIGRATIONS, EXTRA)
            if (release / "schema-3").exists()
            else (migrations.MIGRATIONS)
        )

    def migrate(self, release: Path, db: Path) -> int:
        if (release / "migration-fails").exists():
            raise TechnicianError("database migration by the release failed: no such column")
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            return migrations.migrate(conn, migrations=self._known(release))
        finally:
            conn.close()

    def supported(self, release: Path) -> int:
        return len(self._known(release))


class Device:
    """A temporary appliance: release tree, data directory with a database, fakes around it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.tree = ReleaseTree(tmp / "opt" / "bfr")
        (self.tree.releases / "0.1.0" / "bin").mkdir(parents=True)
        self.tree.switch("0.1.0", previous=None)
        self.data = tmp / "data"
        with Store.open(self.data) as store:
            records.insert_patient(store, clinic_id="BEFORE")
        self.key = tmp / "update.key"
        new_key(self.key)
        self.traits: dict[str, set[str]] = {}
        self.web_broken: set[str] = set()
        self.controller: dict | None = {"state": "IDLE"}
        self.systemctl = FakeSystemctl(self.tree)
        self.out = io.StringIO()
        self.ticks = 0.0

    def install(self, request: InstallRequest, progress: Progress) -> None:
        if "install-fails" in self.traits.get(request.version, set()):
            raise TechnicianError("pip install failed: no matching distribution")
        (request.target / "bin").mkdir(parents=True)
        for trait in self.traits.get(request.version, set()):
            (request.target / trait).touch()

    def clock(self) -> float:
        self.ticks += 0.5
        return self.ticks

    def host(self) -> UpdateHost:
        health = HealthCheck(
            self.systemctl,  # type: ignore[arg-type]
            health_url="http://127.0.0.1:8080/healthz",
            http_check=lambda url: self.tree.current() not in self.web_broken,
            ready_timeout_s=10.0,
            settle_s=0.0,
            sleep=lambda s: None,
            clock=self.clock,
        )
        return UpdateHost(
            tree=self.tree,
            data_dir=self.data,
            systemctl=self.systemctl,  # type: ignore[arg-type]
            health=health,
            controller_status=lambda: self.controller,
            progress=Progress(self.out),
            actor="tess",
            install=self.install,
            database=FakeDatabase(),  # type: ignore[arg-type]
        )

    def bundle(self, version: str, *traits: str) -> Path:
        self.traits[version] = set(traits)
        wheel = make_wheel(self.tmp / "wheels" / version, version)
        return build_bundle(self.tmp / "dist", wheel, bytes.fromhex(self.key.read_text()))

    def update(self, version: str, *traits: str, **kwargs) -> dict:
        return update(self.host(), self.bundle(version, *traits), key_path=self.key, **kwargs)

    def schema(self) -> int:
        conn = sqlite3.connect(self.data / DB_NAME)
        try:
            return conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()

    def patients(self, db: Path | None = None) -> list[str]:
        conn = sqlite3.connect(db or self.data / DB_NAME)
        try:
            return [r[0] for r in conn.execute("SELECT clinic_id FROM patients ORDER BY id")]
        finally:
            conn.close()

    def audit(self, action: str) -> list:
        # Without Store.open: the database may be at a newer schema than this code.
        with Store(connect(self.data / DB_NAME, create=False), self.data) as store:
            return audit_trail(store, action=action)


@pytest.fixture
def device(tmp_path: Path) -> Iterator[Device]:
    yield Device(tmp_path)


def test_an_update_switches_migrates_and_keeps_a_backup(device: Device) -> None:
    record = device.update("0.2.0", "schema-3")
    assert record["result"] == "installed"
    assert (device.tree.current(), device.tree.previous()) == ("0.2.0", "0.1.0")
    assert device.schema() == 3 and device.patients() == ["BEFORE"]
    backup = Path(record["backup"])
    assert backup.is_file()  # the database as it was before the migration
    conn = sqlite3.connect(backup)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()
    assert device.systemctl.calls == [
        ("stop", ("bfr-kiosk.service", "bfr-web.service", "bfr-controller.service")),
        ("start", ("bfr-controller.service", "bfr-web.service", "bfr-kiosk.service")),
    ]
    assert record["schema_before"] == 2 and record["schema_after"] == 3
    assert read_last_update(device.data)["to"] == "0.2.0"
    (entry,) = device.audit("technician.update")
    assert entry.actor == "tess" and entry.reason == "installed" and entry.detail["signed"]


def test_the_switch_is_a_rename_of_a_relative_symlink(device: Device) -> None:
    device.update("0.2.0")
    link = device.tree.root / "current"
    assert link.is_symlink() and link.readlink() == Path("releases/0.2.0")
    assert sorted(p.name for p in device.tree.root.iterdir()) == ["current", "previous", "releases"]
    info = (device.tree.path("0.2.0") / "bfr-release.json").read_text()
    assert '"installed_by": "tess"' in info


@pytest.mark.parametrize("broken", ["controller", "web"])
def test_a_broken_release_is_rolled_back_with_its_database(device: Device, broken: str) -> None:
    traits = ("schema-3", "controller-crashes") if broken == "controller" else ("schema-3",)
    if broken == "web":
        device.web_broken.add("0.2.0")
    with pytest.raises(UpdateFailed, match="0.1.0 runs again") as info:
        device.update("0.2.0", *traits)
    assert "bfr logs" in info.value.advice
    assert device.tree.current() == "0.1.0"
    assert device.tree.previous() is None
    assert "0.2.0" not in device.tree.versions()
    assert device.schema() == 2  # the migration to 3 was undone by the restore
    assert device.patients() == ["BEFORE"]
    starts = [c for c in device.systemctl.calls if c[0] == "start"]
    assert len(starts) == 2  # the new release, then the old one again
    assert read_last_update(device.data)["result"] == "rolled back"
    (entry,) = device.audit("technician.update")
    assert entry.reason == "rolled back"
    log = device.out.getvalue()
    assert "going back to 0.1.0" in log and "0.1.0 is running and healthy" in log


def test_a_failing_migration_stops_before_anything_is_touched(device: Device) -> None:
    with pytest.raises(UpdateFailed, match="migration") as info:
        device.update("0.2.0", "migration-fails")
    assert "0.1.0 still runs" in info.value.message
    assert device.systemctl.calls == []
    assert device.tree.current() == "0.1.0" and device.tree.versions() == ["0.1.0"]
    assert device.schema() == 2
    assert not list((device.data / "updates").glob("migration-test*"))


def test_a_failed_install_changes_nothing(device: Device) -> None:
    with pytest.raises(UpdateFailed, match="nothing was changed"):
        device.update("0.2.0", "install-fails")
    assert device.systemctl.calls == [] and device.tree.versions() == ["0.1.0"]


def test_when_going_back_fails_too_it_says_so(device: Device) -> None:
    (device.tree.path("0.1.0") / "controller-crashes").touch()
    with pytest.raises(RollbackFailed, match="DO NOT TREAT PATIENTS"):
        device.update("0.2.0", "controller-crashes")
    assert device.tree.current() == "0.1.0"


def test_no_update_while_the_cuff_may_be_in_use(device: Device) -> None:
    device.controller = {"state": "HOLDING"}
    with pytest.raises(TechnicianError, match="cuff is in use"):
        device.update("0.2.0")
    device.controller = None
    with pytest.raises(TechnicianError, match="does not answer") as info:
        device.update("0.2.0")
    assert "--allow-controller-down" in info.value.advice
    device.controller = {"state": "IDLE"}
    with Store.open(device.data) as store:
        patient = records.find_patient(store, "BEFORE")
        start_running_session(store, patient.id)
    with pytest.raises(TechnicianError, match="session 1 .* is running"):
        device.update("0.2.0")
    assert device.systemctl.calls == [] and device.tree.current() == "0.1.0"


def test_bundles_are_checked(device: Device, tmp_path: Path) -> None:
    good = device.bundle("0.2.0")
    dest = tmp_path / "x"
    assert open_bundle(good, dest / "1", key_path=device.key).version == "0.2.0"
    # Tampered wheel, manifest and signature untouched.
    tampered = tmp_path / "tampered.bfr"
    with tarfile.open(good) as src, tarfile.open(tampered, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name.endswith(".whl"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(member, io.BytesIO(data))
    with pytest.raises(TechnicianError, match="does not match its manifest"):
        open_bundle(tampered, dest / "2", key_path=device.key)
    # Signed with another fleet's key.
    other = tmp_path / "other.key"
    new_key(other)
    with pytest.raises(TechnicianError, match="signed with key"):
        open_bundle(good, dest / "3", key_path=other)
    # A bare wheel only when asked for, and then recorded as unsigned.
    wheel = make_wheel(tmp_path / "bare", "0.2.0")
    with pytest.raises(TechnicianError, match="bare wheel") as info:
        open_bundle(wheel, dest / "4", key_path=device.key)
    assert "--allow-unsigned" in info.value.advice
    record = update(device.host(), wheel, key_path=device.key, allow_unsigned=True)
    assert record["signed"] is False and device.tree.current() == "0.2.0"


def test_manual_rollback_restores_the_database_only_when_needed(device: Device) -> None:
    device.update("0.2.0", "schema-3")
    conn = sqlite3.connect(device.data / DB_NAME)
    conn.execute("INSERT INTO patients (clinic_id, created_at) VALUES ('AFTER', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(TechnicianError, match="cannot read the database") as info:
        rollback(device.host())
    assert "--restore-database" in info.value.advice and "bfr export" in info.value.advice
    record = rollback(device.host(), restore_database=True)
    assert (device.tree.current(), device.tree.previous()) == ("0.1.0", "0.2.0")
    assert device.schema() == 2 and device.patients() == ["BEFORE"]
    assert device.patients(Path(record["set_aside"])) == ["BEFORE", "AFTER"]
    (entry,) = device.audit("technician.rollback")
    assert entry.detail["database"].startswith("restored from")
    # Forward again: release 0.2.0 reads schema 2, so the database stays as it is.
    record = rollback(device.host())
    assert device.tree.current() == "0.2.0" and record["database"] == "kept (schema 2)"


def test_rollback_keeps_the_database_when_the_schema_did_not_change(device: Device) -> None:
    device.update("0.1.1")
    with Store.open(device.data) as store:
        records.insert_patient(store, clinic_id="AFTER")
    rollback(device.host())
    assert device.tree.current() == "0.1.0"
    assert device.patients() == ["BEFORE", "AFTER"]


def test_nothing_to_roll_back_to_and_no_reinstall_of_the_running_release(device: Device) -> None:
    with pytest.raises(TechnicianError, match="no previous release"):
        rollback(device.host())
    with pytest.raises(TechnicianError, match="already running"):
        device.update("0.1.0")


def test_a_real_bundle_installs_into_a_real_seeded_virtualenv(tmp_path: Path) -> None:
    """`make release` path and the installer, with real venv and pip (no network, ~5 s)."""
    key = tmp_path / "k"
    assert release_tool.main(["--new-key", str(key)]) == 0
    wheel = make_wheel(tmp_path / "w", "0.2.0")
    assert (
        release_tool.main(["--wheel", str(wheel), "--key", str(key), "--out", str(tmp_path)]) == 0
    )
    candidate = open_bundle(tmp_path / "bfr-appliance-0.2.0.bfr", tmp_path / "x", key_path=key)
    assert candidate.manifest["schema_version"] == len(migrations.MIGRATIONS)
    # The running release: a pip-less venv given pip, as the image's has one.
    current = tmp_path / "releases" / "0.1.0"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(current)], check=True)
    import pip

    site = next(current.glob("lib/python3*/site-packages"))
    shutil.copytree(Path(pip.__file__).parent, site / "pip")
    target = tmp_path / "releases" / "0.2.0"
    with contextlib.redirect_stderr(io.StringIO()):
        install_release(
            InstallRequest(
                version="0.2.0", wheel=candidate.wheel, target=target, seed_from=current
            ),
            Progress(io.StringIO()),
        )
    done = subprocess.run([str(target / "bin" / "bfr")], capture_output=True, text=True)
    assert done.stdout.strip() == "bfr 0.2.0"
    assert (next(target.glob("lib/python3*/site-packages")) / "pip").is_dir()  # for next time


def test_a_failed_update_does_not_hide_the_backup_a_rollback_needs(device: Device) -> None:
    device.update("0.2.0", "schema-3")
    with pytest.raises(UpdateFailed):
        device.update("0.3.0", "schema-3", "controller-crashes")
    assert read_last_update(device.data)["result"] == "rolled back"
    assert device.tree.current() == "0.2.0" and device.schema() == 3
    rollback(device.host(), restore_database=True)
    assert device.tree.current() == "0.1.0" and device.schema() == 2
