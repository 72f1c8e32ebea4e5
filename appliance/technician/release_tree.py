"""Releases on the device: `/opt/bfr/releases/<version>` virtualenvs, `current` and `previous`.

The unit files run `/opt/bfr/current/bin/bfr`, so switching releases is replacing one symlink.
It is done with rename(2) of a new link over the old one: at every instant `current` points to a
complete release. (`ln -sfn` unlinks and re-creates: a crash between the two leaves none.)
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from appliance.technician.atomic_file import fsync_path
from appliance.technician.errors import TechnicianError

DEFAULT_ROOT = Path("/opt/bfr")
RELEASES = "releases"
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")


def check_version(version: str) -> str:
    """A version is also a directory name: no separators, no dot-dot, nothing hidden."""
    if not _VERSION.match(version) or ".." in version:
        raise TechnicianError(f"invalid release version {version!r}", "rebuild the bundle")
    return version


class ReleaseTree:
    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.root = root
        self.releases = root / RELEASES

    def path(self, version: str) -> Path:
        return self.releases / check_version(version)

    def current(self) -> str | None:
        return self._target(self.root / "current")

    def previous(self) -> str | None:
        return self._target(self.root / "previous")

    def versions(self) -> list[str]:
        if not self.releases.is_dir():
            return []
        return sorted(
            p.name for p in self.releases.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def switch(self, version: str, previous: str | None) -> None:
        """Point `previous` (first) and then `current`, each by one rename(2).

        `previous=None` removes the `previous` link: there is then nothing to go back to.
        """
        if not self.path(version).is_dir():
            raise TechnicianError(f"release {version} is not installed in {self.releases}")
        if previous is not None:
            self._point("previous", previous)
        elif (self.root / "previous").is_symlink():
            (self.root / "previous").unlink()
        self._point("current", version)

    def remove(self, version: str) -> None:
        if version in (self.current(), self.previous()):
            raise AssertionError(f"refusing to remove the active release {version}")
        shutil.rmtree(self.path(version), ignore_errors=True)

    def prune(self) -> list[str]:
        """Remove releases other than current and previous (the root partition is small)."""
        keep = {self.current(), self.previous()}
        removed = [v for v in self.versions() if v not in keep]
        for version in removed:
            self.remove(version)
        return removed

    def _target(self, link: Path) -> str | None:
        try:
            target = os.readlink(link)
        except OSError:
            return None
        return Path(target).name

    def _point(self, name: str, version: str) -> None:
        link = self.root / name
        tmp = self.root / f".{name}.{os.getpid()}.new"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        # Relative, so the tree stays valid when the image is mounted elsewhere for inspection.
        os.symlink(f"{RELEASES}/{check_version(version)}", tmp)
        os.replace(tmp, link)
        fsync_path(self.root)
