#!/usr/bin/env bash
# Starts or stops a private containerd (and the local test registry) in a network
# namespace, for trying things by hand or from a shell test. As root:
#
#   scripts/runtime/containerd.sh start --dir /tmp/rt1 [--flavor v2|debian] [--netns NAME]
#                                       [--cni-bin-dir DIR ...] [--cni-conf-dir DIR] [--no-registry]
#   scripts/runtime/containerd.sh stop --dir /tmp/rt1 [--keep]
#
# start prints KNODE_RT_NETNS=, CONTAINER_RUNTIME_ENDPOINT=, KNODE_RT_CGROUP_PARENT= and
# KNODE_RT_CRICTL= (crictl inside the netns, on the private socket) lines; stop kills
# containerd, its shims and containers, unmounts everything under DIR, removes the netns
# start made, then DIR. The Python API behind it: tests/runtime/knode_runtime.py.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
exec python3 "$repo/tests/runtime/knode_runtime.py" "$@"
