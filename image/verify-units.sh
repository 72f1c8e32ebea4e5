#!/bin/bash
# Check the appliance units against a root file system: `systemd-analyze verify` must print
# nothing (it exits 0 on unknown keys and bad values, so any output is a failure), and the
# services must stay under their exposure limits of `systemd-analyze security`.
# Usage: verify-units.sh <root>. The root must hold the units and every program they start.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "${1:?root}" && pwd)"
units=()
for unit in "$here"/../systemd/*.service "$here"/../systemd/*.mount; do units+=("$(basename "$unit")"); done

# Exposure limits on systemd's 0-100 scale (shown as 0.0-10.0).
declare -A max_exposure=([bfr-controller.service]=15 [bfr-web.service]=20 [bfr-kiosk.service]=55)

# Relative unit names would be looked up in the working directory first.
cd /
output="$(systemd-analyze verify --root="$root" "${units[@]}" 2>&1)" || true
if [ -n "$output" ]; then
    printf 'systemd-analyze verify:\n%s\n' "$output" >&2
    exit 1
fi
for unit in "${!max_exposure[@]}"; do
    if ! report="$(systemd-analyze security --offline=yes --root="$root" \
        --threshold="${max_exposure[$unit]}" "$unit" 2>&1)"; then
        printf '%s\n%s is above exposure %s\n' "$report" "$unit" "${max_exposure[$unit]}" >&2
        exit 1
    fi
    printf '%s\n' "$report" | grep 'Overall exposure' | sed 's/^→ //'
done
echo "units verified: ${units[*]}"
