#!/usr/bin/env bash
# Builds the upstream kubelet from the Go module k8s.io/kubernetes, for the side-by-side
# benchmark (bench/kubelet/). Idempotent: a second run checks the cached binary's
# version and exits.
#
#   scripts/build-upstream-kubelet.sh            # prints the binary's path on stdout
#   KUBE_VERSION=v1.37.2 KNODE_CACHE_DIR=/var/cache/knode scripts/build-upstream-kubelet.sh
#
# The build module, the cache layout and the flags are scripts/lib/kubernetes-module.sh's,
# shared with scripts/cluster/build-control-plane.sh: the binary lands in
# $KNODE_CACHE_DIR/kubernetes-<v>/bin/kubelet. cgo on (the kubelet is not in
# KUBE_STATIC_BINARIES). Cold, on 2 shared cores: about 9 CPU-minutes (nice -n 10, -p 1).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/kubernetes-module.sh
. "$repo/scripts/lib/kubernetes-module.sh"
kube_init "${KUBE_VERSION:-v1.37.2}" "${KNODE_CACHE_DIR:-/var/cache/knode}" build-upstream-kubelet.sh

if kube_built kubelet; then
  kube_log "kubelet $KUBE_VERSION already built"
  echo "$KUBE_BIN/kubelet"
  exit 0
fi

kube_find_go
kube_lock
if ! kube_built kubelet; then  # another run may have built it while we waited
  kube_module
  kube_get kubelet
  kube_build kubelet 1
fi
echo "$KUBE_BIN/kubelet"
