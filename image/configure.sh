#!/bin/bash
# Stage 2: turn the package root into the appliance: files, users, units, the Python release.
# Usage: configure.sh <root> <wheel> <build.env>. Runs arm64 programs in the root via qemu-user.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
project="$(dirname "$here")"
root="${1:?root}"
wheel="${2:?wheel}"
env_file="${3:?build.env}"
: "${SOURCE_DATE_EPOCH:?}" "${TIMEZONE:?}" "${TECH_USER:?}"
python="${PYTHON:-python3}"
version="$(basename "$wheel" | cut -d- -f2)"

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 \
    SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" "$@"; }

mounts=()
cleanup() {
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -R "${mounts[i]}" || true; done
    rm -f "$root/etc/resolv.conf"
}
trap cleanup EXIT
for fs in proc sys dev; do
    mount --rbind "/$fs" "$root/$fs" && mount --make-rslave "$root/$fs"
    mounts+=("$root/$fs")
done
# Name resolution for pip inside the root during the build only.
cp -L /etc/resolv.conf "$root/etc/resolv.conf"

echo "== static files"
cp -a --no-preserve=ownership "$here/overlay/." "$root/"
PYTHONPATH="$here" "$python" -m imagebuild render "$env_file" "$root" --version "$version"
ln -sfn "/usr/share/zoneinfo/$TIMEZONE" "$root/etc/localtime"
install -D -m 0644 "$project/systemd/watchdog.conf" "$root/usr/lib/systemd/system.conf.d/bfr-watchdog.conf"
install -D -m 0644 "$project/systemd/journald.conf" "$root/usr/lib/systemd/journald.conf.d/bfr.conf"
install -D -m 0644 "$project/systemd/bfr.tmpfiles" "$root/usr/lib/tmpfiles.d/bfr.conf"
install -D -m 0644 "$project/systemd/bfr.sysusers" "$root/usr/lib/sysusers.d/bfr.conf"
for unit in "$project"/systemd/*.service "$project"/systemd/*.mount; do
    install -m 0644 "$unit" "$root/usr/lib/systemd/system/"
done
install -D -m 0644 "$project/README.md" "$root/usr/share/doc/bfr-appliance/README.md" 2>/dev/null ||
    install -D -m 0644 "$here/README.md" "$root/usr/share/doc/bfr-appliance/README.md"
# Mount points on the read-only root.
mkdir -p "$root/data" "$root/var/lib/systemd/timesync" "$root/var/lib/systemd/linger"

echo "== users"
in_root systemd-sysusers
if ! in_root id -u "$TECH_USER" >/dev/null 2>&1; then
    in_root useradd --create-home --shell /bin/bash --groups sudo,systemd-journal "$TECH_USER"
fi
# "*": no password can ever match, but the account is not locked, so key login works.
in_root usermod --password '*' "$TECH_USER"
in_root passwd --lock root >/dev/null

echo "== appliance release $version"
release="/opt/bfr/releases/$version"
mkdir -p "$root/tmp/wheels"
cp "$wheel" "$here/constraints.txt" "$root/tmp/wheels/"
# The build machine's CA bundle: networks that inspect TLS re-sign PyPI with their own CA.
cp -L /etc/ssl/certs/ca-certificates.crt "$root/tmp/wheels/build-ca.crt"
# --system-site-packages: Debian's python3-systemd instead of compiling systemd-python, which
# would put gcc and headers into the image. Binary wheels only: nothing compiles under emulation.
in_root python3 -m venv --system-site-packages "$release"
in_root "$release/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check \
    --cert /tmp/wheels/build-ca.crt --only-binary=:all: --constraint /tmp/wheels/constraints.txt \
    "/tmp/wheels/$(basename "$wheel")[device]" 2>&1 ||
    { echo "pip install into the release failed" >&2; exit 1; }
rm -rf "$root/tmp/wheels"
# A relative link, switched by rename(2) on update (mv -T), never rewritten in place.
ln -sfn "releases/$version" "$root/opt/bfr/current"

echo "== units"
systemctl --root="$root" enable bfr-controller.service bfr-web.service bfr-kiosk.service \
    bfr-ssh-hostkeys.service data.mount var-log-journal.mount var-lib-systemd-timesync.mount \
    ssh.service systemd-networkd.service systemd-timesyncd.service
systemctl --root="$root" disable getty@tty1.service systemd-networkd-wait-online.service \
    apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer 2>/dev/null || true
systemctl --root="$root" set-default graphical.target

echo "== read-only root"
# Identical on every device: host keys come from /data, the machine ID is made up at each boot.
rm -f "$root"/etc/ssh/ssh_host_*
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
ln -s /etc/machine-id "$root/var/lib/dbus/machine-id"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*
