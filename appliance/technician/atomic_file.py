"""Write a small file so that readers see the old content or the new, never a torn one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: str | bytes, mode: int = 0o640) -> None:
    """tmp file in the same directory, fsync, rename(2) over `path`, fsync the directory.

    The directory fsync makes the rename itself survive a power cut: on ext4 with data=journal
    (the data partition) the file content is durable after its fsync, the new name only after
    the directory's.
    """
    raw = data.encode() if isinstance(data, str) else data
    # A fresh, unguessable name created exclusively: the data directory is shared with the
    # web's group, and a name someone could plant a symlink under would let this process
    # truncate and chmod whatever the link points at.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), mode)  # the umask must not narrow what the web may read
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_path(path.parent)


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory so that the names in it are durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
