#!/usr/bin/env bash
# One fuzz target's short run (the fuzz tier): run_fuzzer.sh BINARY SECONDS SCRATCH DIR...
# Every input in the DIRs (seeds, regressions) runs first, then libFuzzer mutates for
# SECONDS; new inputs go to SCRATCH (the build tree), never to the committed corpus.
# Exit status: libFuzzer's (non-zero on a crash, a sanitizer report, a leak, an input that
# takes over 10 s or a run over 2 GB); the crashing input is left in SCRATCH/../crashes.
set -euo pipefail
bin="$1" secs="$2" scratch="$3"
shift 3
dirs=()
for d in "$@"; do
  [ -d "$d" ] && dirs+=("$d")
done
crashes="$(dirname "$scratch")/crashes"
mkdir -p "$scratch" "$crashes"
# (A private directory per input, as the IPAM store's target makes, is 3x faster on tmpfs.)
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
exec "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$crashes/$(basename "$bin")-" "$scratch" "${dirs[@]}"
