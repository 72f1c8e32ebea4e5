"""Files of the root that depend on build inputs: host name, clinic settings, technician keys."""

from __future__ import annotations

from pathlib import Path
from string import Template

from imagebuild.config import BuildConfig


def toml_string(value: str) -> str:
    """A TOML basic string; build inputs are free text (the clinic name)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def files(config: BuildConfig, templates: Path, version: str) -> dict[str, tuple[str, int]]:
    """Relative path in the root -> (content, mode)."""
    hostname = str(config["HOSTNAME"])
    user = str(config["TECH_USER"])
    appliance = Template((templates / "bfr.toml.in").read_text()).substitute(
        selftest_max_age_h=int(str(config["SELFTEST_MAX_AGE_H"]))
    )
    site = Template((templates / "site.toml.in").read_text()).substitute(
        clinic_name=toml_string(str(config["CLINIC_NAME"])),
        hostname=toml_string(hostname),
        timezone=toml_string(str(config["TIMEZONE"])),
        language=toml_string(str(config["UI_LANGUAGE"])),
    )
    sshd = Template((templates / "sshd_config.in").read_text()).substitute(tech_user=user)
    keys = "".join(f"{key}\n" for key in config.ssh_keys)
    return {
        "etc/hostname": (f"{hostname}\n", 0o644),
        "etc/hosts": (f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\tlocalhost\n", 0o644),
        "etc/timezone": (f"{config['TIMEZONE']}\n", 0o644),
        "etc/bfr/bfr.toml": (appliance, 0o644),
        "etc/bfr/site.toml": (site, 0o644),
        "etc/bfr/release": (f"{version}\n", 0o644),
        "etc/ssh/sshd_config.d/bfr.conf": (sshd, 0o644),
        f"etc/ssh/authorized_keys/{user}": (keys, 0o644),
        "etc/sudoers.d/bfr-technician": (f"{user} ALL=(ALL) NOPASSWD: ALL\n", 0o440),
    }


def write(root: Path, rendered: dict[str, tuple[str, int]]) -> None:
    for relative, (content, mode) in rendered.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(mode)
