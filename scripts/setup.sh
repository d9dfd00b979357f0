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
  # toolchain
  build-essential cmake ninja-build pkg-config
  # libraries knode links
  libboost-dev libyaml-cpp-dev nlohmann-json3-dev libsystemd-dev libssl-dev
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
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "all packages present"
fi

werror=OFF
[ "${CI:-}" = "true" ] && werror=ON
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKNODE_WERROR="$werror" >/dev/null
log "building in $build"
ninja -C "$build" -j"$(nproc)"
