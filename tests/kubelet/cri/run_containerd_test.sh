#!/usr/bin/env bash
# Runtime tier: runs the CRI client's containerd test (containerd_test.cc) against a real
# containerd + runc. Everything lives in a private directory and a network namespace of
# this run: containerd's root, state, socket, config and runc state, a registry on the
# namespace's 127.0.0.1:5000 holding a busybox image, the pods' logs, and their cgroup
# parent. On exit it stops what it started, removes leftover containers, unmounts what
# containerd mounted under the directory, and deletes the namespace and the cgroups.
#
#   run_containerd_test.sh path/to/knode_cri_containerd_test [gtest args...]
#
# Exits 77 (skip) when not root or when containerd, runc, docker-registry or a static
# busybox is missing. containerd 1.6 keeps its shims' sockets in /run/containerd/s
# whatever its configuration says; they go when the shims exit.
set -uo pipefail

test_bin="$1"
shift
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
skip() { echo "SKIP: $*" >&2; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "needs root (containerd, network namespaces)"
for tool in containerd runc docker-registry ip nsenter python3 curl; do
  command -v "$tool" >/dev/null || skip "$tool is missing (scripts/setup.sh installs it)"
done
[ -x /bin/busybox ] || skip "/bin/busybox is missing (busybox-static)"
if ldd /bin/busybox >/dev/null 2>&1; then skip "/bin/busybox is not static (busybox-static)"; fi

dir="$(mktemp -d /tmp/knode-cri-rt.XXXXXX)"
ns="knode-cri-$$"
cgparent="knode-cri-test-$$"
registry="127.0.0.1:5000"
containerd_pid="" registry_pid=""

in_ns() { nsenter --net="/run/netns/$ns" "$@"; }

cleanup() {
  local rc=$?
  # Containers the test left behind: kill them through runc, whose state is ours.
  if [ -d "$dir/runc/k8s.io" ]; then
    for id in $(runc --root "$dir/runc/k8s.io" list -q 2>/dev/null); do
      runc --root "$dir/runc/k8s.io" delete -f "$id" >/dev/null 2>&1
    done
  fi
  if [ -n "$containerd_pid" ]; then
    kill -TERM "$containerd_pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$containerd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$containerd_pid" 2>/dev/null
    wait "$containerd_pid" 2>/dev/null
  fi
  # Shims of this containerd (their command line names its socket).
  for p in /proc/[0-9]*; do
    if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "-address $dir/containerd.sock"; then
      kill -KILL "${p#/proc/}" 2>/dev/null
    fi
  done
  if [ -n "$registry_pid" ]; then
    kill -TERM "$registry_pid" 2>/dev/null
    wait "$registry_pid" 2>/dev/null
  fi
  # Mounts containerd made under the directory (sandbox shm, rootfs), deepest first.
  awk -v d="$dir/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null
  for c in /sys/fs/cgroup/*/"$cgparent" /sys/fs/cgroup/"$cgparent"; do
    [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    echo "--- containerd log (last 40 lines) ---" >&2
    tail -n 40 "$dir/containerd.log" >&2 2>/dev/null
  fi
  rm -rf "$dir"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$dir"/{root,state,opt,runc,cni-bin,cni-conf,registry,logs}
cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$registry/pause:3.10"
  # Without CAP_SYS_RESOURCE (a container host) runc cannot lower oom_score_adj.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    # overlay on this host's overlay root does not mount; native copies instead.
    snapshotter = "native"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$dir/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$dir/cni-bin"
    conf_dir = "$dir/cni-conf"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$registry"]
    endpoint = ["http://$registry"]
EOF
cat >"$dir/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/registry
http:
  addr: $registry
EOF

ip netns add "$ns" || { echo "cannot create network namespace $ns" >&2; exit 1; }
in_ns ip link set lo up

# nsenter execs its command, so $! is the daemon itself (not so through a function).
nsenter --net="/run/netns/$ns" docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
registry_pid=$!
nsenter --net="/run/netns/$ns" containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
containerd_pid=$!

ready=""
for _ in $(seq 1 200); do
  if [ -S "$dir/containerd.sock" ] && in_ns curl -fs -o /dev/null "http://$registry/v2/"; then
    ready=1
    break
  fi
  kill -0 "$containerd_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$ready" ] || { echo "containerd or the registry did not come up" >&2; exit 1; }

in_ns python3 "$here/push_image.py" "$registry" pause 3.10 >/dev/null || exit 1
in_ns python3 "$here/push_image.py" "$registry" busybox 1.37 >/dev/null || exit 1

in_ns env \
  KNODE_CRI_ENDPOINT="unix://$dir/containerd.sock" \
  KNODE_CRI_IMAGE="$registry/busybox:1.37" \
  KNODE_CRI_REGISTRY="$registry" \
  KNODE_CRI_LOG_DIR="$dir/logs" \
  KNODE_CRI_CGROUP_PARENT="/$cgparent" \
  "$test_bin" "$@"
