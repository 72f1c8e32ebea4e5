"""The clinic database around an update: consistent copies, restores, and migrations run by the
release that needs them (its own `appliance.store.migrations`, not the running code's)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from pathlib import Path

from appliance.technician.atomic_file import fsync_path
from appliance.technician.errors import TechnicianError

# Runs inside a release's interpreter; only needs `appliance.store.migrations`, which every
# release has, so it works for going forward and back.
_MIGRATE = (
    "import sqlite3, sys\n"
    "from appliance.store import migrations\n"
    "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "print(migrations.migrate(conn))\n"
    "conn.close()\n"
)
_SUPPORTED = "from appliance.store import migrations\nprint(len(migrations.MIGRATIONS))\n"


def schema_version(db: Path) -> int:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
    finally:
        conn.close()
    return int(version)


def copy_database(source: Path, dest: Path) -> None:
    """A consistent copy through SQLite's backup API (a file copy could catch a torn WAL)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        dest.unlink()
    _backup(sqlite3.connect(source), dest)
    match_owner(source)
    os.chmod(dest, 0o640)
    fsync_path(dest)


def restore_database(backup: Path, db: Path) -> None:
    """Write `backup` into the live database file in place: owner and mode stay the services'."""
    _backup(sqlite3.connect(f"{backup.resolve().as_uri()}?mode=ro", uri=True), db)
    fsync_path(db)
    match_owner(db)


def _backup(src: sqlite3.Connection, dest: Path) -> None:
    """Copy `src` page by page into the database file `dest`; closes both connections."""
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def match_owner(db: Path) -> None:
    """Give -wal/-shm files a root process left behind the database's owner and mode."""
    st = db.stat()
    for suffix in ("-wal", "-shm"):
        side = db.with_name(db.name + suffix)
        if side.exists() and os.geteuid() == 0:
            os.chown(side, st.st_uid, st.st_gid)
            os.chmod(side, st.st_mode & 0o777)


class ReleaseDatabase:
    """Migrations as a given release knows them, run in that release's Python."""

    def migrate(self, release_dir: Path, db: Path) -> int:
        """Bring `db` to the schema of the release; return its new version."""
        out = self._run(release_dir, _MIGRATE, str(db))
        if db.exists():
            match_owner(db)
        return out

    def supported(self, release_dir: Path) -> int:
        """The newest schema the release can open."""
        return self._run(release_dir, _SUPPORTED)

    def _run(self, release_dir: Path, script: str, *args: str) -> int:
        python = release_dir / "bin" / "python"
        try:
            done = subprocess.run(
                [str(python), "-c", script, *args], capture_output=True, text=True, timeout=600
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TechnicianError(f"cannot run {python}: {exc}", "reinstall the release") from exc
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["no message"]
            raise TechnicianError(
                f"database migration by {release_dir.name} failed: {tail[0]}",
                "the release cannot use this clinic's database; keep the current one and "
                "report this with `bfr logs`",
            )
        try:
            return int(done.stdout.split()[-1])
        except (IndexError, ValueError) as exc:
            raise TechnicianError(f"unexpected answer from {python}: {done.stdout!r}") from exc
