#!/usr/bin/env bash
# The main job on the embedded default: one standalone node. In a private network
# namespace "node" (nothing touches the host's network), Debian's containerd and
# `knode agent` run three replicas of the kubia pod and their Service (ClusterIP and
# NodePort) from examples/demo. It prints the pods with their IPs and status, the rules
# knode programmed, and ten requests to the ClusterIP answered by the three pods; then
# it stops everything it started (DEMO_SECONDS=N keeps it running N seconds first;
# DEMO_SECONDS=wait until Ctrl-C).
#
#   ./scripts/demo.sh              # as root
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${KNODE_BUILD_DIR:-$repo/build}"
manifests="${1:-$repo/examples/demo}"
rt="$repo/tests/runtime/knode_runtime.py"

# Packages and the build (the demo's own test sets KNODE_DEMO_NO_SETUP: it runs from a build).
[ -n "${KNODE_DEMO_NO_SETUP:-}" ] || "$repo/scripts/setup.sh"
# Debian's containerd 1.6, runc, the registry and the test images (no Go build).
"$repo/scripts/runtime/install.sh" --debian-only >/dev/null

wd="$(mktemp -d /tmp/knode-demo.XXXXXX)"
ns="knode-demo-$$"
knode_pid=""
cleanup() {
  set +e
  if [ -n "$knode_pid" ] && kill -0 "$knode_pid" 2>/dev/null; then
    kill -TERM "$knode_pid"
    for _ in $(seq 1 100); do kill -0 "$knode_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$knode_pid" 2>/dev/null
    wait "$knode_pid" 2>/dev/null
  fi
  # containerd, its shims and containers, the registry, mounts, cgroups, the namespace.
  python3 "$rt" stop --dir "$wd" >/dev/null 2>&1
  ip netns del "$ns" 2>/dev/null
  rm -rf "$wd"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== a node in network namespace $ns (work dir $wd)"
ip netns add "$ns"
ip -n "$ns" link set lo up
# Like any node, a default route (into a veth whose other end stays here): traffic from
# the node to a ClusterIP needs one before the proxy rewrites it.
ip -n "$ns" link add uplink type veth peer name uplink-peer
ip -n "$ns" addr add 192.168.255.1/24 dev uplink
ip -n "$ns" link set uplink up
ip -n "$ns" link set uplink-peer up
ip -n "$ns" route add default via 192.168.255.254 dev uplink

# Pods' network: knode-cni on a bridge, 10.88.0.0/24, reservations kept in the work dir.
mkdir -p "$wd/net.d" "$wd/manifests"
"$build/cni/knode-cni" --write-conflist --pod-cidr 10.88.0.0/24 --data-dir "$wd/ipam" \
  --out "$wd/net.d/10-knode.conflist"
eval "$(python3 "$rt" start --dir "$wd" --flavor debian --netns "$ns" --cni-bin-dir "$build/cni" \
  --cni-conf-dir "$wd/net.d" 2>"$wd/runtime-start.log" | grep -E '^(CONTAINER_RUNTIME_ENDPOINT|KNODE_RT_CGROUP_PARENT)=')"
echo "== containerd $(containerd --version | awk '{print $3}') on $CONTAINER_RUNTIME_ENDPOINT, registry on 127.0.0.1:5000"

cp "$manifests"/*.yaml "$wd/manifests/"
echo "== knode agent --manifest-dir $manifests (log: $wd/knode.log)"
ip netns exec "$ns" "$build/cmd/knode/knode" agent --manifest-dir "$wd/manifests" \
  --container-runtime-endpoint "$CONTAINER_RUNTIME_ENDPOINT" --cgroup-root "$KNODE_RT_CGROUP_PARENT" \
  --root-dir "$wd/kubelet" --log-root "$wd/logs" --hostname-override node1 \
  --proxy-mode=ipvs --cluster-cidr 10.88.0.0/16 >"$wd/knode.log" 2>&1 &
knode_pid=$!

in_ns() { ip netns exec "$ns" "$@"; }
pods_json() { in_ns curl -s --max-time 2 http://127.0.0.1:10255/pods; }
ready_pods() {
  pods_json | python3 -c 'import json,sys
try: items = json.load(sys.stdin)["items"]
except Exception: items = []
print(sum(1 for p in items if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))))'
}
deadline=$((SECONDS + 60))
while [ "$SECONDS" -lt "$deadline" ]; do
  kill -0 "$knode_pid" 2>/dev/null || { cat "$wd/knode.log"; echo "knode exited"; exit 1; }
  [ "$(ready_pods 2>/dev/null || echo 0)" = 3 ] && break
  sleep 0.2
done
[ "$(ready_pods)" = 3 ] || { tail -30 "$wd/knode.log"; echo "the pods did not get ready within 60 s"; exit 1; }
grep -E '"knode ready"|falling back' "$wd/knode.log" | cut -c1-220

echo; echo "\$ curl http://127.0.0.1:10255/pods   (NAME, IP, PHASE, READY, RESTARTS, CONTAINER)"
pods_json | python3 -c 'import json,sys
for p in json.load(sys.stdin)["items"]:
    s = p["status"]; c = s["containerStatuses"][0]
    ready = next(x["status"] for x in s["conditions"] if x["type"] == "Ready")
    row = (p["metadata"]["name"], s.get("podIP", ""), s["phase"], ready, c["restartCount"], c["containerID"][:25])
    print("%-14s %-12s %-8s %-6s %-3s %s" % row)'

if in_ns ipvsadm -Ln >/dev/null 2>&1; then
  echo; echo "\$ ipvsadm -Ln"; in_ns ipvsadm -Ln
else
  echo; echo "\$ iptables-legacy-save -t nat | grep kubia"
  in_ns iptables-legacy-save -t nat | grep kubia | cut -c1-160
fi

echo; echo "\$ for i in \$(seq 10); do curl http://10.96.0.10/; done"
answers="$(for _ in $(seq 10); do in_ns curl -s --max-time 2 http://10.96.0.10/; done)"
echo "$answers"
echo; echo "\$ curl http://192.168.255.1:30080/   (the NodePort)"
in_ns curl -s --max-time 2 http://192.168.255.1:30080/
distinct="$(echo "$answers" | sort -u | grep -c "You've hit kubia-" || true)"
echo; echo "== $distinct of 3 pods answered through the ClusterIP"

case "${DEMO_SECONDS:-0}" in
  0) ;;
  wait) echo "knode is running (log $wd/knode.log); Ctrl-C stops everything."; wait "$knode_pid" ;;
  *) sleep "$DEMO_SECONDS" ;;
esac
echo "== stopping: knode, containerd and its containers, the registry, namespace $ns"
