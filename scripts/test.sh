#!/usr/bin/env bash
# Runs every test tier (unit, netns, vm, runtime, cluster, conformance, and the sanitizer
# tree's asan, asan-ns and fuzz) through CTest, after installing what they need and
# building. As root on a fresh Debian 12 machine:  scripts/test.sh
#   extra arguments go to ctest, e.g. scripts/test.sh -L unit
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${KNODE_BUILD_DIR:-$repo/build}"

"$repo/scripts/setup.sh"
# The sanitizer tree (clang, ASan + UBSan, libFuzzer) in $build/san: the unit and netns
# tests under the sanitizers (labels asan, asan-ns) and short fuzz runs (fuzz) are part of
# the ctest below. The unit and netns gtest binaries are half of that tree: about 12
# minutes of building on 2 cores from cold, under a minute from the shared ccache. They
# are built whenever the main tree's build above was warm (under 10 minutes), as on CI's
# machine; on a new machine, where the Go builds below take most of CI's 90 minutes, only
# the knode daemon's netns tests and the fuzz targets are (`scripts/sanitize.sh` later
# builds the rest; then `ctest -L asan`). KNODE_SAN_TESTS=1 builds them always, 0 never.
san_tests="${KNODE_SAN_TESTS:-auto}"
case "$san_tests" in
  auto|0|1) ;;
  *) echo "test.sh: KNODE_SAN_TESTS is auto, 0 or 1, not $san_tests" >&2; exit 2 ;;
esac
if [ "$san_tests" = auto ]; then
  san_tests=0
  [ "$SECONDS" -lt 600 ] && san_tests=1
fi
if [ "$san_tests" = 1 ]; then
  "$repo/scripts/sanitize.sh"
else
  echo "test.sh: the sanitizer tree without its unit and netns gtests (the build took $((SECONDS / 60)) min: a cold machine)" >&2
  "$repo/scripts/sanitize.sh" --daemon-and-fuzz
fi
# The Go builds below (cold on a new machine: about 50 CPU-minutes) run before any test:
# they may use every core (one Go build at a time still; the default is -p=1).
export KNODE_GO_PROCS="${KNODE_GO_PROCS:-$(nproc)}"
# The VM tier's stock Debian kernel (with ip_vs), fetched and unpacked, never installed.
"$repo/scripts/vm/prepare.sh"
# The runtime tier's containerd (v2 from its module, Debian's 1.6), crictl, registry and
# test images, cached under ${KNODE_CACHE_DIR:-/var/cache/knode}; quick when warm.
"$repo/scripts/runtime/install.sh"
# The cluster tier's control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl; kube-proxy for the benchmarks) built from Go modules into
# ${KNODE_CACHE_DIR:-/var/cache/knode}/kubernetes-<v>/bin; about a second when warm.
"$repo/scripts/cluster/build-control-plane.sh" >/dev/null
# The conformance tier's e2e.test, agnhost and CoreDNS, from their Go modules into the same
# cache (cold: about 14 minutes of one core; warm: a second).
"$repo/scripts/conformance/build-e2e.sh" >/dev/null

cd "$build"
ctest --output-on-failure --timeout 900 "$@"
