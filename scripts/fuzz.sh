#!/usr/bin/env bash
# Runs the libFuzzer targets of the sanitizer tree (scripts/sanitize.sh builds them) and
# prints, per target, the executions, the inputs its corpus grew to and the crashes.
#
#   scripts/fuzz.sh                      # every target, 60 s each
#   scripts/fuzz.sh --seconds 600        # longer
#   scripts/fuzz.sh --runs 10000000      # until 10 million executions each
#   scripts/fuzz.sh --runs 10000000 --seconds 900   # whichever comes first
#   scripts/fuzz.sh --seconds 30 fuzz_kubeconfig fuzz_flags
#   setsid nice -n 19 scripts/fuzz.sh ...   # in the background, yielding to everything else
#   scripts/fuzz.sh --optimized --runs 10000000   # the -O1 tree (sanitize.sh --optimized)
#   scripts/fuzz.sh --fast --runs 10000000        # UBSan alone at -O2 (sanitize.sh --fast)
#   scripts/fuzz.sh --optimized --replay fuzz-fast  # every input the fast tree kept, once,
#                                                   # under ASan + UBSan
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
replay=""
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; seconds_given=1; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --optimized) tree=fuzz-opt; shift ;;
    --fast) tree=fuzz-fast; shift ;;
    --replay) replay="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
fuzzdir="$build/$tree/tests/fuzz"
if [ ! -d "$fuzzdir" ]; then
  case "$tree" in san) how="" ;; fuzz-opt) how=" --optimized" ;; *) how=" --fast" ;; esac
  echo "fuzz.sh: no $fuzzdir: run scripts/sanitize.sh$how first" >&2
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
# `nice` alone does not yield to other sessions' work where the kernel groups tasks by
# session (autogroup): a fuzz run started with setsid and nice gives its session the same
# nice value, so builds and tests started elsewhere get the CPU first.
n="$(nice)"
if [ "$n" -gt 0 ] && [ "$(ps -o sid= -p $$ | tr -d ' ')" = "$$" ] && [ -w /proc/$$/autogroup ]; then
  echo "$n" > /proc/$$/autogroup 2>/dev/null || true
fi
limit=(-max_total_time="$seconds")
if [ -n "$runs" ]; then
  limit=(-runs="$runs")
  [ -n "$seconds_given" ] && limit+=(-max_total_time="$seconds")
fi

failed=0
if [ -n "$replay" ]; then
  # Each input another tree's runs kept, executed once by this (ASan) tree's target.
  printf '%-24s %10s %8s\n' target inputs crashes
  for t in "${targets[@]}"; do
    kept="$build/$replay/tests/fuzz/scratch/${t#fuzz_}"
    [ -d "$kept" ] || continue
    log="$fuzzdir/logs/$t.replay.log"
    rc=0
    "$fuzzdir/$t" -runs=0 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$fuzzdir/crashes/$t-" "$kept" \
      >"$log" 2>&1 || rc=$?
    printf '%-24s %10s %8s\n' "$t" "$(find "$kept" -type f | wc -l)" "$([ "$rc" -eq 0 ] && echo 0 || echo 1)"
    [ "$rc" -ne 0 ] && { failed=1; echo "  $t failed (exit $rc): $log" >&2; }
  done
  exit "$failed"
fi
printf '%-24s %14s %10s %8s %8s\n' target executions "exec/s" corpus crashes
for t in "${targets[@]}"; do
  name="${t#fuzz_}"
  scratch="$fuzzdir/scratch/$name"
  mkdir -p "$scratch"
  dirs=("$scratch")
  # (Each tree also starts from what the other trees' runs found.)
  for d in "$repo/tests/fuzz/corpus/$name" "$repo/tests/fuzz/regressions/$name" \
           "$build"/{san,fuzz-opt,fuzz-fast}/tests/fuzz/scratch/"$name"; do
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
