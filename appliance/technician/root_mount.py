"""The read-only root: made writable for the few seconds an update writes to /opt/bfr."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from appliance.technician.errors import TechnicianError
from appliance.technician.progress import Progress

Runner = Callable[..., subprocess.CompletedProcess]


def mount_point(path: Path) -> Path:
    path = path.resolve()
    while not os.path.ismount(path):
        path = path.parent
    return path


@contextlib.contextmanager
def writable(path: Path, progress: Progress, run: Runner = subprocess.run) -> Iterator[None]:
    """Remount the file system holding `path` read-write if it is read-only, and back after."""
    if not os.statvfs(path).f_flag & os.ST_RDONLY:
        yield
        return
    where = mount_point(path)
    progress.note(f"remounting {where} read-write")
    done = run(["mount", "-o", "remount,rw", str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        raise TechnicianError(
            f"cannot remount {where} read-write: {done.stderr.strip()}", "run with sudo"
        )
    try:
        yield
    finally:
        os.sync()
        done = run(["mount", "-o", "remount,ro", str(where)], capture_output=True, text=True)
        if done.returncode != 0:
            # Busy: a file is still open for writing. Harmless now, gone after the next boot.
            progress.warn(f"{where} stays writable until the next reboot: {done.stderr.strip()}")
        else:
            progress.note(f"{where} is read-only again")
