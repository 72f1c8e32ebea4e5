"""Release bundles: a tar of the wheel (and optional dependency wheels), a manifest, a signature.

Layout: `manifest.json` lists every other member with its SHA-256 and size; `manifest.sig` is
`hmac-sha256 <key id> <hex>` over the manifest's exact bytes, with the fleet key kept in
/etc/bfr/update.key on each device. Only members named in the signed manifest are extracted, by
their checked names, so a bundle cannot write outside its directory or smuggle in a file.

Threat model (docs/technician.md): the signature proves the bundle was made by someone holding
the fleet key and arrived intact. It is a shared secret: anyone with root on any device can read
it and sign bundles; anyone with root on a device can install anything anyway. It does not make
a stolen device or a leaked key safe.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import re
import secrets
import shutil
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.technician.errors import TechnicianError
from appliance.technician.release_tree import check_version

FORMAT = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SCHEME = "hmac-sha256"
DEFAULT_KEY_PATH = Path("/etc/bfr/update.key")
MIN_KEY_BYTES = 32
MAX_BUNDLE_BYTES = 1 << 30
_WHEEL = re.compile(r"^bfr_appliance-(?P<version>[^-]+)-py3-none-any\.whl$")
_MEMBER = re.compile(r"^(wheels/)?[A-Za-z0-9][A-Za-z0-9._+-]*\.whl$")


@dataclass(frozen=True)
class Candidate:
    """A release ready to install: extracted, checked and, unless a bare wheel, signed."""

    version: str
    wheel: Path
    wheelhouse: Path | None
    signed: bool
    key_id: str | None
    sha256: str
    manifest: dict[str, Any]


def load_key(path: Path) -> bytes:
    try:
        text = path.read_bytes().strip()
    except FileNotFoundError:
        raise TechnicianError(
            f"no update key at {path}",
            "the fleet key is installed with the image; copy it there (mode 0600) or pass --key",
        ) from None
    except PermissionError:
        raise TechnicianError(f"cannot read {path}", "run with sudo") from None
    try:
        key = bytes.fromhex(text.decode())
    except (UnicodeDecodeError, ValueError):
        key = text
    if len(key) < MIN_KEY_BYTES:
        raise TechnicianError(
            f"{path} holds {len(key)} bytes; at least {MIN_KEY_BYTES} are needed",
            "make a key with `python -m appliance.technician.release --new-key FILE`",
        )
    return key


def new_key(path: Path) -> str:
    """Write a fresh random key (hex, mode 0600); return its id."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(MIN_KEY_BYTES) + "\n")
    return key_id(load_key(path))


def key_id(key: bytes) -> str:
    """Names a key without revealing it, so a mismatch can be told from a forgery."""
    return hashlib.sha256(b"bfr-update-key:" + key).hexdigest()[:12]


def sign(manifest: bytes, key: bytes) -> str:
    return f"{SCHEME} {key_id(key)} {hmac.new(key, manifest, hashlib.sha256).hexdigest()}\n"


def build_bundle(
    out: Path, wheel: Path, key: bytes, wheelhouse: list[Path] | None = None, **meta: Any
) -> Path:
    """Write the bundle for `wheel` (and dependency wheels) into directory `out`."""
    match = _WHEEL.match(wheel.name)
    if not match:
        raise TechnicianError(f"{wheel.name} is not a bfr-appliance wheel")
    version = check_version(match["version"])
    members = {wheel.name: wheel, **{f"wheels/{w.name}": w for w in wheelhouse or []}}
    manifest = {
        "format": FORMAT,
        "name": "bfr-appliance",
        "version": version,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wheel": wheel.name,
        "key_id": key_id(key),
        "files": {
            name: {"sha256": _sha256(path), "size": path.stat().st_size}
            for name, path in sorted(members.items())
        },
        **meta,
    }
    manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bfr-appliance-{version}.bfr"
    tmp = path.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        _add_bytes(tar, MANIFEST, manifest_bytes)
        _add_bytes(tar, SIGNATURE, sign(manifest_bytes, key).encode())
        for name, source in sorted(members.items()):
            tar.add(source, arcname=name, recursive=False, filter=_plain)
    os.replace(tmp, path)
    return path


def open_bundle(
    path: Path, dest: Path, *, key_path: Path = DEFAULT_KEY_PATH, allow_unsigned: bool = False
) -> Candidate:
    """Check `path` (a bundle, or a bare wheel when allowed) and extract it into `dest`."""
    if not path.is_file():
        raise TechnicianError(f"no such file: {path}", "copy the bundle over first (scp)")
    digest = _sha256(path)
    if path.suffix == ".whl":
        return _bare_wheel(path, dest, digest, allow_unsigned)
    if path.stat().st_size > MAX_BUNDLE_BYTES:
        raise TechnicianError(f"{path} is larger than {MAX_BUNDLE_BYTES >> 20} MiB")
    try:
        with tarfile.open(path, "r:*") as tar:
            return _extract(tar, dest, digest, load_key(key_path))
    except (tarfile.TarError, EOFError) as exc:
        raise TechnicianError(
            f"{path} is not a readable bundle: {exc}", "copy it again; check its size"
        ) from exc


def _bare_wheel(path: Path, dest: Path, digest: str, allow_unsigned: bool) -> Candidate:
    match = _WHEEL.match(path.name)
    if not match:
        raise TechnicianError(f"{path.name} is not a bfr-appliance wheel")
    if not allow_unsigned:
        raise TechnicianError(
            f"{path.name} is a bare wheel: nothing proves where it comes from",
            "install a signed bundle from `make release`, or pass --allow-unsigned "
            "(recorded in the audit trail)",
        )
    version = check_version(match["version"])
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / path.name
    shutil.copyfile(path, wheel)
    return Candidate(version, wheel, None, False, None, digest, {"version": version})


def _extract(tar: tarfile.TarFile, dest: Path, digest: str, key: bytes) -> Candidate:
    members = {m.name: m for m in tar.getmembers()}
    manifest_bytes = _read(tar, members, MANIFEST, 1 << 20)
    signature = _read(tar, members, SIGNATURE, 4096).decode(errors="replace").split()
    if len(signature) != 3 or signature[0] != SCHEME:
        raise TechnicianError("the bundle's signature is malformed", "rebuild it with make release")
    expected = sign(manifest_bytes, key).split()
    if signature[1] != expected[1]:
        raise TechnicianError(
            f"the bundle is signed with key {signature[1]}, this device has key {expected[1]}",
            "use a bundle signed with this fleet's key",
        )
    if not hmac.compare_digest(signature[2], expected[2]):
        raise TechnicianError(
            "the bundle's signature does not match: it was altered or damaged",
            "do not install it; copy it again from the release server",
        )
    manifest = json.loads(manifest_bytes)
    if manifest.get("format") != FORMAT:
        raise TechnicianError(f"unknown bundle format {manifest.get('format')!r}", "update bfr")
    files: dict[str, dict[str, Any]] = manifest["files"]
    extra = set(members) - set(files) - {MANIFEST, SIGNATURE}
    if extra:
        raise TechnicianError(f"the bundle holds unlisted files: {sorted(extra)}")
    version = check_version(str(manifest["version"]))
    match = _WHEEL.match(str(manifest.get("wheel", "")))
    if not match or match["version"] != version or manifest["wheel"] not in files:
        raise TechnicianError("the manifest's wheel does not match its version")
    dest.mkdir(parents=True, exist_ok=True)
    for name, meta in files.items():
        if not _MEMBER.match(name):
            raise TechnicianError(f"the bundle names an unsafe file {name!r}")
        data = _read(tar, members, name, MAX_BUNDLE_BYTES)
        if hashlib.sha256(data).hexdigest() != meta["sha256"] or len(data) != meta["size"]:
            raise TechnicianError(f"{name} in the bundle does not match its manifest")
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    wheelhouse = dest / "wheels" if any(n.startswith("wheels/") for n in files) else None
    return Candidate(
        version, dest / manifest["wheel"], wheelhouse, True, expected[1], digest, manifest
    )


def _read(
    tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str, limit: int
) -> bytes:
    member = members.get(name)
    if member is None or not member.isfile():
        raise TechnicianError(f"the bundle has no {name}", "rebuild it with make release")
    if member.size > limit:
        raise TechnicianError(f"{name} in the bundle is too large")
    f = tar.extractfile(member)
    assert f is not None
    return f.read()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    return info


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
