"""The image manifest: what went in (Debian packages, Python distributions) and from where."""

from __future__ import annotations

from collections.abc import Mapping


def parse_dpkg(text: str) -> list[tuple[str, str, str]]:
    """Rows of `dpkg-query -W -f '${Package}\\t${Version}\\t${Architecture}\\n'`, sorted."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not all(fields):
            raise ValueError(f"unexpected dpkg-query line: {line!r}")
        rows.append((fields[0], fields[1], fields[2]))
    return sorted(rows)


def parse_pip_freeze(text: str) -> list[str]:
    """`pip freeze` requirement lines, sorted case-insensitively; comments dropped."""
    lines = [line.strip() for line in text.splitlines()]
    return sorted((line for line in lines if line and not line.startswith("#")), key=str.lower)


def render(meta: Mapping[str, str], dpkg_text: str, pip_text: str) -> str:
    """A plain-text manifest that diffs well between two builds."""
    out = ["# Appliance image manifest", ""]
    out += [f"{key} = {meta[key]}" for key in sorted(meta)]
    packages = parse_dpkg(dpkg_text)
    out += ["", f"[dpkg] {len(packages)} packages"]
    width = max((len(name) for name, _, _ in packages), default=0)
    out += [f"{name:<{width}}  {version}  {arch}" for name, version, arch in packages]
    requirements = parse_pip_freeze(pip_text)
    out += ["", f"[pip] {len(requirements)} distributions"]
    out += requirements
    return "\n".join(out) + "\n"
