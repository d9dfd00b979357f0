#!/usr/bin/env bash
# Builds the sanitizer tree: knode, its unit and netns tests and the libFuzzer targets
# (tests/fuzz/) with clang, AddressSanitizer and UndefinedBehaviorSanitizer, into
# <build>/san. The main tree's CTest then runs its tests too (labels asan, asan-ns, fuzz):
#
#   scripts/sanitize.sh && (cd build && ctest -L "asan|fuzz")
#   scripts/sanitize.sh --daemon-and-fuzz   # the knode daemon's netns tests and the fuzz
#                                           # targets only (what scripts/test.sh builds on a
#                                           # cold machine; the whole tree when warm)
#   scripts/sanitize.sh --optimized         # the same at -O1 into <build>/fuzz-opt, for long
#                                           # fuzz runs (scripts/fuzz.sh --optimized); not
#                                           # part of any CTest tier
#   scripts/sanitize.sh --fast              # the fuzz targets with UBSan alone at -O2 into
#                                           # <build>/fuzz-fast (scripts/fuzz.sh --fast), about
#                                           # twice as fast again; no ASan, so replay what it
#                                           # finds in an ASan tree (fuzz.sh --replay)
#
# Installs clang-16 and libFuzzer from Debian when missing; idempotent.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${KNODE_BUILD_DIR:-$repo/build}"
san="$build/san"
cache="${KNODE_CACHE_DIR:-/var/cache/knode}"
tests=ON
opt=-O0
sanitizers=address,undefined
if [ "${1:-}" = "--daemon-and-fuzz" ]; then
  # The unit and netns gtest binaries are half of this tree's build (about 12 more
  # minutes on 2 cores from cold), more than CI's 90 minutes leave on a new machine.
  tests=OFF
elif [ "${1:-}" = "--optimized" ]; then
  tests=OFF
  opt=-O1
  san="$build/fuzz-opt"
elif [ "${1:-}" = "--fast" ]; then
  tests=OFF
  opt=-O2
  sanitizers=undefined
  san="$build/fuzz-fast"
fi
log() { echo "sanitize.sh: $*" >&2; }

packages=(clang-16 libfuzzer-16-dev libclang-rt-16-dev llvm-16 ccache)
# shellcheck source=lib/packages.sh
source "$repo/scripts/lib/packages.sh"
ensure_packages "${packages[@]}"

werror=OFF
[ "${CI:-}" = "true" ] && werror=ON
cmake -S "$repo" -B "$san" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize \
  -DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16 \
  -DKNODE_SANITIZE=ON -DKNODE_SANITIZE_TESTS="$tests" -DKNODE_SANITIZE_OPT="$opt" -DKNODE_SANITIZERS_LIST="$sanitizers" -DKNODE_BUILD_BENCH=OFF -DKNODE_WERROR="$werror" \
  -DKNODE_CCACHE_DIR="$cache/ccache" >/dev/null
log "building in $san"
if [ "$san" = "$build/fuzz-fast" ]; then
  # Only the fuzz targets (and what they link): the daemon is not run from this tree.
  mapfile -t fuzzers < <(ninja -C "$san" -t targets all | sed -n 's|^\(tests/fuzz/fuzz_[a-z_]*\): .*|\1|p' | sort -u)
  ninja -C "$san" -j"$(nproc)" "${fuzzers[@]}"
else
  ninja -C "$san" -j"$(nproc)"
fi
# Only the sanitizer tiers may be here: a runtime, cluster or VM test would run twice.
others="$(cd "$san" && ctest -N -LE '^(asan|asan-ns|fuzz)$' | sed -n 's/^Total Tests: //p')"
if [ "$others" != "0" ]; then
  log "the sanitizer tree has $others tests outside the asan, asan-ns and fuzz tiers:"
  (cd "$san" && ctest -N -LE '^(asan|asan-ns|fuzz)$') >&2
  exit 1
fi
