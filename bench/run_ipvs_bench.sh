#!/bin/bash
# Boots the test VM (Debian's kernel, which has IPVS) and runs knode_ipvs_bench there.
#   bench/run_ipvs_bench.sh [--services 1000,10000] [--endpoints 10]
# Needs a build (scripts/setup.sh) and the VM kernel (scripts/vm/prepare.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/bench/knode_ipvs_bench"
[ -x "$bin" ] || { echo "build first: cmake --build $root/build --target knode_ipvs_bench" >&2; exit 1; }
log="$(mktemp /tmp/knode-ipvs-bench.XXXXXX)"
"$root/scripts/vm/run.sh" --quiet --memory 3072 --timeout 3000 --log "$log" \
  --file "$bin" --run "/knode/knode_ipvs_bench $*" || { echo "VM run failed; console log: $log" >&2; exit 1; }
grep -a 'KNODE-MEASURE' "$log" | tr -d '\r' | sed 's/^KNODE-MEASURE //'
