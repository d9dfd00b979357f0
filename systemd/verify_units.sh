#!/usr/bin/env bash
# systemd-analyze verify must accept the unit with no warnings at all.
set -u
unit=$1
if ! command -v systemd-analyze >/dev/null; then echo "systemd-analyze not installed"; exit 77; fi
out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$unit" 2>&1)
rc=$?
# Only lines about our unit count; the host's own units may be noisy in a container.
ours=$(printf '%s\n' "$out" | grep -F "$(basename "$unit")" || true)
printf '%s\n' "$out"
if [ $rc -ne 0 ] || [ -n "$ours" ]; then echo "FAIL: systemd-analyze verify reported problems"; exit 1; fi
# And the unit says what the product promises: the lines given after the unit (each the
# start of a line in it), or knode.service's.
shift
wants=("$@")
[ ${#wants[@]} -gt 0 ] || wants=('Type=notify' 'Restart=always' 'KillMode=process' 'Delegate=yes' 'LimitNOFILE=' 'WatchdogSec=' 'EnvironmentFile=-/etc/default/knode')
for want in "${wants[@]}"; do
  awk -v w="$want" 'index($0, w) == 1 { found = 1 } END { exit !found }' "$unit" || { echo "FAIL: $unit lacks $want"; exit 1; }
done
echo "ok: $unit"
