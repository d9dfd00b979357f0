#!/usr/bin/env bash
# Runs the libFuzzer targets of the sanitizer tree (scripts/sanitize.sh builds them) and
# prints, per target, the executions, the inputs its corpus grew to and the crashes.
#
#   scripts/fuzz.sh                      # every target, 60 s each
#   scripts/fuzz.sh --seconds 600        # longer
#   scripts/fuzz.sh --runs 10000000      # until 10 million executions each
#   scripts/fuzz.sh --runs 10000000 --seconds 900   # whichever comes first
#   scripts/fuzz.sh --seconds 30 fuzz_kubeconfig fuzz_flags
#   scripts/fuzz.sh --optimized --runs 10000000   # the -O1 tree (sanitize.sh --optimized)
#
# Each target starts from its seeds (tests/fuzz/corpus/<name>) and regressions
# (tests/fuzz/regressions/<name>) and keeps what it finds in
# <build>/san/tests/fuzz/scratch/<name>, so a later run goes on from there. A crashing
# input is saved to <build>/san/tests/fuzz/crashes/; copy it into
# tests/fuzz/regressions/<name>/ once the bug is fixed. Exits non-zero on any crash.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${KNODE_BUILD_DIR:-$repo/build}"
tree=san
seconds=60
seconds_given=""
runs=""
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; seconds_given=1; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --optimized) tree=fuzz-opt; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
fuzzdir="$build/$tree/tests/fuzz"
if [ ! -d "$fuzzdir" ]; then
  echo "fuzz.sh: no $fuzzdir: run scripts/sanitize.sh$([ "$tree" = san ] || echo " --optimized") first" >&2
  exit 1
fi
if [ ${#targets[@]} -eq 0 ]; then
  while IFS= read -r f; do targets+=("$(basename "$f")"); done \
    < <(find "$fuzzdir" -maxdepth 1 -type f -name 'fuzz_*' -executable | sort)
fi
mkdir -p "$fuzzdir/crashes" "$fuzzdir/logs"
# Targets that work in a private directory per input (the IPAM store's) run 3x faster on
# tmpfs than on this machine's disk.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
limit=(-max_total_time="$seconds")
if [ -n "$runs" ]; then
  limit=(-runs="$runs")
  [ -n "$seconds_given" ] && limit+=(-max_total_time="$seconds")
fi

printf '%-24s %14s %10s %8s %8s\n' target executions "exec/s" corpus crashes
failed=0
for t in "${targets[@]}"; do
  name="${t#fuzz_}"
  scratch="$fuzzdir/scratch/$name"
  mkdir -p "$scratch"
  dirs=("$scratch")
  # (The -O1 tree also starts from what the -O0 tree's runs found.)
  for d in "$repo/tests/fuzz/corpus/$name" "$repo/tests/fuzz/regressions/$name" "$build/san/tests/fuzz/scratch/$name"; do
    [ "$d" = "$scratch" ] && continue
    [ -d "$d" ] && dirs+=("$d")
  done
  log="$fuzzdir/logs/$t.log"
  rc=0
  "$fuzzdir/$t" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$fuzzdir/crashes/$t-" "${dirs[@]}" >"$log" 2>&1 || rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  corpus="$(find "$scratch" -type f | wc -l)"
  crashes=0
  if [ "$rc" -ne 0 ]; then
    crashes=1
    failed=1
  fi
  printf '%-24s %14s %10s %8s %8s\n' "$t" "${execs:-?}" "${rate:-?}" "$corpus" "$crashes"
  [ "$rc" -ne 0 ] && { echo "  $t failed (exit $rc): $log" >&2; grep -m3 -E "ERROR|SUMMARY|runtime error" "$log" >&2 || true; }
done
exit "$failed"
