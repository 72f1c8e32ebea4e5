"""Install a release over SSH with an automatic way back, and go back by hand.

Update, in order (docs/technician.md):
 1. check the bundle (signature, hashes) and refuse during a session (controller not IDLE, or an
    open session in the store);
 2. install the release into its own virtualenv beside the running one;
 3. migrate a copy of the clinic database with the new release: a failing migration stops here;
 4. stop the services, back the database up, migrate it, switch `current` by rename(2);
 5. start the services and wait for the controller's READY, its socket and the web health URL;
 6. if any of 4-5 fails: stop, switch back, restore the backup, start, check again.
Nothing of the running release is touched before step 4, so a failure up to there changes
nothing. A rollback by hand runs 4-6 towards the previous release, restoring the database backup
of the update when the previous release cannot read the migrated schema.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.store import DB_NAME
from appliance.technician import audit_entry
from appliance.technician.atomic_file import write_atomically
from appliance.technician.bundle import DEFAULT_KEY_PATH, Candidate, open_bundle
from appliance.technician.database import (
    ReleaseDatabase,
    copy_database,
    restore_database,
    schema_version,
)
from appliance.technician.errors import TechnicianError
from appliance.technician.install import Installer, InstallRequest, install_release
from appliance.technician.preflight import require_idle, require_no_session
from appliance.technician.progress import Progress
from appliance.technician.release_tree import ReleaseTree
from appliance.technician.root_mount import writable
from appliance.technician.services import START_ORDER, STOP_ORDER, HealthCheck, Systemctl

UPDATES_DIR = "updates"  # in the data directory: backups, the last update's record, the lock
LAST_UPDATE = "last-update.json"
HISTORY = "history.jsonl"  # every update and rollback, one JSON object per line
RELEASE_INFO = "bfr-release.json"  # in each release directory
KEEP_BACKUPS = 5


class UpdateFailed(TechnicianError):
    """The new release was not kept; the previous one runs again."""


class RollbackFailed(TechnicianError):
    """Going back failed too: the appliance may not be usable."""


@dataclass
class UpdateHost:
    """Everything an update touches outside this process; tests hand in fakes."""

    tree: ReleaseTree
    data_dir: Path
    systemctl: Systemctl
    health: HealthCheck
    # The controller's status, None when it does not answer.
    controller_status: Callable[[], dict[str, Any] | None]
    progress: Progress
    actor: str
    install: Installer = install_release
    database: ReleaseDatabase = field(default_factory=ReleaseDatabase)
    remount: Callable[[Path, Progress], contextlib.AbstractContextManager[None]] = writable
    wall: Callable[[], float] = time.time

    @property
    def db(self) -> Path:
        return self.data_dir / DB_NAME

    @property
    def updates(self) -> Path:
        return self.data_dir / UPDATES_DIR


def update(
    host: UpdateHost,
    bundle: Path,
    *,
    key_path: Path = DEFAULT_KEY_PATH,
    allow_unsigned: bool = False,
    allow_controller_down: bool = False,
    extras: str = "device",
) -> dict[str, Any]:
    """Install `bundle` and switch to it; raise UpdateFailed (rolled back) or RollbackFailed."""
    p = host.progress
    current = host.tree.current()
    if current is None:
        raise TechnicianError(
            f"no current release in {host.tree.root}", "is this an appliance? pass --root"
        )
    with _locked(host), tempfile.TemporaryDirectory(dir=host.updates) as work:
        p.step(f"checking {bundle.name}")
        candidate = open_bundle(
            bundle, Path(work), key_path=key_path, allow_unsigned=allow_unsigned
        )
        version = candidate.version
        how = f"signed, key {candidate.key_id}" if candidate.signed else "UNSIGNED"
        p.note(f"release {version} ({how})")
        if version == current:
            raise TechnicianError(f"release {version} is already running", "nothing to do")
        if version == host.tree.previous():
            raise TechnicianError(
                f"release {version} is the previous release", "use `bfr rollback` to go back"
            )
        _preflight(host, "update", allow_controller_down)
        with host.remount(host.tree.root, p):
            target = host.tree.path(version)
            _install(host, candidate, current, extras)
            try:
                schema = _test_migration(host, target)
                _preflight(host, "update", allow_controller_down)  # a session may have begun
            except (TechnicianError, OSError, sqlite3.Error) as exc:
                host.tree.remove(version)
                message = exc.message if isinstance(exc, TechnicianError) else str(exc)
                raise UpdateFailed(
                    f"{message}; release {version} removed, {current} still runs",
                    getattr(exc, "advice", "") or "check the data partition (`bfr status`)",
                ) from exc
            record = {
                "from": current,
                "to": version,
                "at": _iso(host.wall()),
                "bundle_sha256": candidate.sha256,
                "signed": candidate.signed,
                "key_id": candidate.key_id,
                "schema_before": schema[0],
                "schema_after": schema[1],
            }
            try:
                backup = _switch_over(
                    host,
                    to=version,
                    back=current,
                    change_db=lambda db: _migrate_live(host, target, db),
                    label="update",
                )
            except UpdateFailed as exc:
                host.tree.remove(version)
                _finish(host, {**record, "result": "rolled back", "error": exc.message})
                raise
            except RollbackFailed as exc:
                _finish(host, {**record, "result": "rollback failed", "error": exc.message})
                raise
            record.update(result="installed", backup=str(backup) if backup else None)
            removed = host.tree.prune()
            if removed:
                p.note(f"removed old releases: {', '.join(removed)}")
        _finish(host, record)
    p.step(f"release {version} is running (was {current}); `bfr rollback` goes back")
    return record


def rollback(
    host: UpdateHost, *, restore_database: bool = False, allow_controller_down: bool = False
) -> dict[str, Any]:
    """Switch back to the previous release by hand, restoring the database when it must."""
    p = host.progress
    current, previous = host.tree.current(), host.tree.previous()
    if current is None or previous is None or not host.tree.path(previous).is_dir():
        raise TechnicianError(
            f"no previous release to go back to in {host.tree.root}",
            "install the wanted release with `bfr update BUNDLE`",
        )
    with _locked(host):
        _preflight(host, "rollback", allow_controller_down)
        change_db, detail = _rollback_database(host, current, previous, restore_database)
        record = {"from": current, "to": previous, "at": _iso(host.wall()), **detail}
        p.step(f"going back from {current} to {previous}")
        with host.remount(host.tree.root, p):
            try:
                backup = _switch_over(
                    host, to=previous, back=current, change_db=change_db, label="rollback"
                )
            except (UpdateFailed, RollbackFailed) as exc:
                failed = {**record, "result": "rollback failed", "error": exc.message}
                _finish(host, failed, action=audit_entry.ROLLBACK)
                raise
        record.update(result="rolled back by hand", set_aside=str(backup) if backup else None)
        _finish(host, record, action=audit_entry.ROLLBACK)
    p.step(f"release {previous} is running again (was {current})")
    return record


# ---- steps --------------------------------------------------------------------------------


def _preflight(host: UpdateHost, action: str, allow_controller_down: bool) -> None:
    status = host.controller_status()
    if status is None:
        if not allow_controller_down:
            raise TechnicianError(
                f"{action}: the controller does not answer, so it cannot confirm the cuff is idle",
                "check `bfr status`; if the controller is down and no patient is connected, "
                "rerun with --allow-controller-down",
            )
        host.progress.warn("the controller does not answer; going ahead as asked")
    else:
        require_idle(status, action)
    for stale in require_no_session(host.data_dir, host.wall(), action):
        host.progress.warn(f"session {stale.id} was never ended (left over from a crash?)")


def _install(host: UpdateHost, candidate: Candidate, current: str, extras: str) -> None:
    target = host.tree.path(candidate.version)
    host.progress.step(f"installing {candidate.version} into {target}")
    if target.exists():
        host.tree.remove(candidate.version)  # an older copy: neither current nor previous
    try:
        host.install(
            InstallRequest(
                version=candidate.version,
                wheel=candidate.wheel,
                target=target,
                seed_from=host.tree.path(current),
                wheelhouse=candidate.wheelhouse,
                extras=extras,
            ),
            host.progress,
        )
        info = {
            "version": candidate.version,
            "installed_at": _iso(host.wall()),
            "installed_by": host.actor,
            "bundle_sha256": candidate.sha256,
            "signed": candidate.signed,
            "key_id": candidate.key_id,
        }
        write_atomically(target / RELEASE_INFO, json.dumps(info, indent=2) + "\n", 0o644)
    except (TechnicianError, OSError) as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise UpdateFailed(
            f"installing {candidate.version} failed: {exc}; nothing was changed, {current} still "
            "runs",
            "see the message above",
        ) from exc


def _test_migration(host: UpdateHost, release: Path) -> tuple[int | None, int | None]:
    """Migrate a throw-away copy with the new release; return (schema before, after)."""
    if not host.db.is_file():
        host.progress.note("no clinic database yet: nothing to migrate")
        return None, None
    host.progress.step("migrating a copy of the clinic database with the new release")
    copy = host.updates / "migration-test.sqlite3"
    try:
        copy_database(host.db, copy)
        before = schema_version(copy)
        after = host.database.migrate(release, copy)
    finally:
        for leftover in copy.parent.glob(copy.name + "*"):
            leftover.unlink()
    host.progress.note(f"schema {before} -> {after}: ok")
    return before, after


def _migrate_live(host: UpdateHost, release: Path, db: Path) -> None:
    host.progress.note("migrating the clinic database")
    host.database.migrate(release, db)


def _rollback_database(
    host: UpdateHost, current: str, previous: str, restore: bool
) -> tuple[Callable[[Path], None], dict[str, Any]]:
    """Keep the live database if the previous release can read it; else restore the backup."""
    if not host.db.is_file():
        return lambda db: None, {"database": "none"}
    live = schema_version(host.db)
    supported = host.database.supported(host.tree.path(previous))
    if live <= supported:
        return lambda db: None, {"database": f"kept (schema {live})"}
    last = _installing_update(host, previous, current)
    backup = Path(last["backup"]) if last and last.get("backup") else None
    if last is None or backup is None:
        raise TechnicianError(
            f"the database has schema {live}, release {previous} reads up to {supported}, and "
            "there is no backup from the update between them",
            "do not roll back: install a fixed release with `bfr update`",
        )
    if not backup.is_file():
        raise TechnicianError(f"the database backup {backup} is missing", "install a fixed release")
    if not restore:
        raise TechnicianError(
            f"release {previous} cannot read the database as {current} migrated it; going back "
            f"means restoring the backup taken at the update ({last['at']}). Records made since "
            "then leave the live database (they are kept in a file beside the backups)",
            "export what is needed (`bfr export`), then rerun with --restore-database",
        )
    return (
        lambda db: restore_database(backup, db),
        {"database": f"restored from {backup}", "schema_before": live, "schema_after": supported},
    )


def _switch_over(
    host: UpdateHost,
    *,
    to: str,
    back: str,
    change_db: Callable[[Path], None],
    label: str,
) -> Path | None:
    """Stop, back up and change the database, switch, start, verify; undo all of it on failure.

    Returns the database backup taken with the services stopped (None without a database).
    """
    p = host.progress
    old_previous = host.tree.previous()
    backup: Path | None = None
    try:
        p.step("stopping the appliance services")
        host.systemctl.stop(STOP_ORDER)
        if host.db.is_file():
            backup = host.updates / f"{DB_NAME}.{_stamp(host.wall())}.{back}"
            p.note(f"backing the database up to {backup}")
            copy_database(host.db, backup)
            change_db(host.db)
        p.step(f"switching {host.tree.root / 'current'} to {to}")
        host.tree.switch(to, previous=back)
        p.step("starting the appliance services")
        host.systemctl.start(START_ORDER)
        problems = host.health.verify(p)
        if problems:
            raise TechnicianError("; ".join(problems))
    except BaseException as exc:  # Ctrl-C half-way must still go back
        reason = str(exc) or type(exc).__name__
        p.step(f"{label} failed: {reason}")
        p.step(f"going back to {back}")
        _revert(host, back, old_previous, backup)
        raise UpdateFailed(
            f"{label} to {to} failed ({reason}); {back} runs again",
            f"see `bfr logs --since 1h`; report it with the release {to}",
        ) from exc
    _prune_backups(host)
    return backup


def _revert(host: UpdateHost, back: str, old_previous: str | None, backup: Path | None) -> None:
    p = host.progress
    try:
        with contextlib.suppress(TechnicianError):
            host.systemctl.stop(STOP_ORDER)
        host.tree.switch(back, previous=old_previous)
        if backup is not None:
            p.note("restoring the database backup")
            restore_database(backup, host.db)
        host.systemctl.start(START_ORDER)
        problems = host.health.verify(p)
    except Exception as exc:
        problems = [str(exc)]
    if problems:
        raise RollbackFailed(
            f"going back to {back} failed as well: {'; '.join(problems)}. The appliance may not "
            "be usable: DO NOT TREAT PATIENTS",
            "run `bfr status` and `bfr logs --since 1h`; call the manufacturer's service",
        )
    p.note(f"{back} is running and healthy")


def _finish(host: UpdateHost, record: dict[str, Any], action: str = audit_entry.UPDATE) -> None:
    text = json.dumps(record)
    try:
        with (host.updates / HISTORY).open("a") as history:
            history.write(text + "\n")
            history.flush()
            os.fsync(history.fileno())
        write_atomically(host.updates / LAST_UPDATE, json.dumps(record, indent=2) + "\n")
    except OSError as exc:
        host.progress.warn(f"cannot record the update: {exc}")
    problem = audit_entry.audit(
        host.data_dir,
        actor=host.actor,
        action=action,
        subject=f"release:{record.get('to')}",
        reason=str(record.get("result", "")),
        detail=record,
    )
    if problem:
        host.progress.warn(problem)


def read_last_update(data_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((data_dir / UPDATES_DIR / LAST_UPDATE).read_text())
    except (OSError, ValueError):
        return None


def _installing_update(host: UpdateHost, old: str, new: str) -> dict[str, Any] | None:
    """The newest successful update from `old` to `new` (it holds the database backup)."""
    try:
        lines = (host.updates / HISTORY).read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("result") == "installed" and (record.get("from"), record.get("to")) == (
            old,
            new,
        ):
            return record
    return None


def _prune_backups(host: UpdateHost) -> None:
    """Keep the newest few backups; the one named in the last update record always stays."""
    current, previous = host.tree.current(), host.tree.previous()
    needed = _installing_update(host, previous, current) if current and previous else None
    backups = sorted(host.updates.glob(f"{DB_NAME}.*"), key=lambda b: b.stat().st_mtime)
    for old in backups[:-KEEP_BACKUPS]:
        if needed is None or str(old) != needed.get("backup"):
            old.unlink()


@contextlib.contextmanager
def _locked(host: UpdateHost) -> Iterator[None]:
    """One update or rollback at a time."""
    try:
        host.updates.mkdir(parents=True, exist_ok=True)
        lock = (host.updates / ".lock").open("w")
    except OSError as exc:
        raise TechnicianError(
            f"cannot use {host.updates}: {exc}", "run with sudo; check the data partition"
        ) from exc
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TechnicianError(
                "another update or rollback is running", "wait for it to finish"
            ) from None
        yield


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
