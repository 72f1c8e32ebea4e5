"""Install a release into its own virtualenv, offline, beside the running one.

The device has no network access to PyPI. The new virtualenv (`--system-site-packages`, like the
image's, for Debian's python3-systemd) is made without pip, then:
- a bundle with a wheelhouse (dependency wheels for the device) installs from it with the normal
  resolver, `--no-index`;
- a bundle without one is seeded with the current release's packages (pip among them), minus the
  old appliance itself, and the new wheel goes in with `--no-deps`; `pip check` then proves the
  new release's requirements are met, else the install fails before anything is switched.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.technician.errors import TechnicianError
from appliance.technician.progress import Progress

DIST_NAME = "bfr_appliance"
Runner = Callable[..., subprocess.CompletedProcess]


@dataclass(frozen=True)
class InstallRequest:
    version: str
    wheel: Path
    target: Path  # /opt/bfr/releases/<version>, the final place: venv scripts embed their path
    seed_from: Path | None  # the current release
    wheelhouse: Path | None = None
    extras: str = "device"
    python: str = getattr(sys, "_base_executable", sys.executable)


Installer = Callable[[InstallRequest, Progress], None]


def install_release(
    request: InstallRequest, progress: Progress, run: Runner = subprocess.run
) -> None:
    target = request.target
    progress.note(f"creating the virtualenv {target}")
    _call(
        run, [request.python, "-m", "venv", "--without-pip", "--system-site-packages", str(target)]
    )
    python = str(target / "bin" / "python")
    spec = f"{request.wheel}[{request.extras}]" if request.extras else str(request.wheel)
    if request.wheelhouse is not None:
        progress.note("installing from the bundle's wheels")
        pip = _seed_pip(request, run)
        _call(run, [*pip, "install", "--no-index", "--find-links", str(request.wheelhouse), spec])
    else:
        if request.seed_from is None:
            raise TechnicianError(
                "no current release to take the dependencies from",
                "use a bundle built with a wheelhouse (`make release RELEASE_WHEELHOUSE=DIR`)",
            )
        progress.note(f"copying dependencies from {request.seed_from.name}")
        _seed_site_packages(request.seed_from, target)
        progress.note("installing the appliance")
        _call(run, [python, "-m", "pip", "install", "--no-index", "--no-deps", str(request.wheel)])
        _check_requirements(run, python, target)
    progress.note("checking the new release starts")
    done = _call(run, [str(target / "bin" / "bfr"), "--version"])
    if request.version not in done.stdout:
        raise TechnicianError(
            f"the new release reports {done.stdout.strip()!r}, expected {request.version}",
            "rebuild the bundle",
        )


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise TechnicianError(f"{venv} is not a virtualenv (no site-packages)", "reinstall it")
    return found[-1]


def _seed_site_packages(source_venv: Path, target: Path) -> None:
    """Copy the current release's packages except the appliance's own files (listed in RECORD)."""
    source = site_packages(source_venv)
    dest = site_packages(target)
    own: set[str] = set()
    for record in source.glob(f"{DIST_NAME}-*.dist-info/RECORD"):
        own |= {line.split(",")[0].split("/")[0] for line in record.read_text().splitlines()}
    own |= {p.name for p in source.glob(f"{DIST_NAME}-*.dist-info")}
    own |= {p.name for p in source.glob("__editable__*")}
    for entry in source.iterdir():
        if entry.name in own or entry.name == "__pycache__":
            continue
        if entry.is_dir():
            shutil.copytree(entry, dest / entry.name, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(entry, dest / entry.name)


def _seed_pip(request: InstallRequest, run: Runner) -> list[str]:
    """pip inside the new venv (copied from the current release), so the next update has one."""
    python = str(request.target / "bin" / "python")
    if request.seed_from is not None:
        source = site_packages(request.seed_from)
        entries = [source / "pip", *source.glob("pip-*.dist-info")]
        if entries[0].is_dir():
            dest = site_packages(request.target)
            for entry in entries:
                shutil.copytree(entry, dest / entry.name, symlinks=True, dirs_exist_ok=True)
            return [python, "-m", "pip"]
    return [sys.executable, "-m", "pip", "--python", python]


def _check_requirements(run: Runner, python: str, target: Path) -> None:
    """`pip check`, limited to what this release installs (Debian's own packages are not ours)."""
    done = run([python, "-m", "pip", "check"], capture_output=True, text=True, timeout=300)
    if done.returncode == 0:
        return
    ours = {_norm(p.name.split("-")[0]) for p in site_packages(target).glob("*.dist-info")}
    problems = [
        line for line in done.stdout.splitlines() if line.split() and _norm(line.split()[0]) in ours
    ]
    if problems:
        raise TechnicianError(
            "the new release needs packages the current one does not have: " + "; ".join(problems),
            "build the bundle with its dependency wheels (`make release RELEASE_WHEELHOUSE=DIR`)",
        )


def _norm(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def _call(run: Runner, argv: list[str]) -> subprocess.CompletedProcess:
    try:
        done = run(argv, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TechnicianError(f"{argv[0]} failed: {exc}", "see the message above") from exc
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise TechnicianError(f"{' '.join(argv[:4])} ... failed:\n{tail}", "nothing was switched")
    return done
