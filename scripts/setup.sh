#!/usr/bin/env bash
# Installs what knode needs to build and test (Debian packages), idempotently, then
# configures and builds it. Safe to run again: only missing packages are installed.
#
#   scripts/setup.sh            # packages + build into ./build
#   KNODE_BUILD_DIR=dir scripts/setup.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${KNODE_BUILD_DIR:-$repo/build}"
log() { echo "setup.sh: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi

packages=(
  # toolchain (ccache: see KNODE_CCACHE_DIR below)
  build-essential cmake ninja-build pkg-config ccache
  # libraries knode links
  libboost-dev libyaml-dev nlohmann-json3-dev libsystemd-dev libssl-dev
  libnl-3-dev libnl-genl-3-dev libnl-route-3-dev libip4tc-dev libiptc-dev libmnl-dev
  libnftnl-dev libnetfilter-conntrack-dev
  # container log rotation gzips rotated logs (kubelet/logs/)
  zlib1g-dev
  # the CRI client (kubelet/cri/): gRPC++ and protobuf, with their code generators
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev python3 curl procps file
  iproute2 iptables nftables conntrack ipset systemd
  # VM tier: qemu + a stock kernel's tools; CNI reference plugins for the CNI benchmark
  qemu-system-x86 busybox-static ipvsadm cpio kmod containernetworking-plugins
  # runtime tier: a real containerd + runc, and a registry to pull from
  containerd runc docker-registry
)
# shellcheck source=lib/packages.sh
source "$repo/scripts/lib/packages.sh"
if [ -z "$(missing_packages "${packages[@]}")" ]; then
  log "all packages present"
else
  ensure_packages "${packages[@]}"
fi

werror=OFF
[ "${CI:-}" = "true" ] && werror=ON
# Compiled objects are cached under /var/cache/knode/ccache (keyed by content, paths
# relative to the checkout), so a fresh clone of a built commit compiles nothing.
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKNODE_WERROR="$werror" \
  -DKNODE_CCACHE_DIR="${KNODE_CACHE_DIR:-/var/cache/knode}/ccache" >/dev/null
log "building in $build"
ninja -C "$build" -j"$(nproc)"
