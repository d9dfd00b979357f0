#!/usr/bin/env bash
# The main job on the embedded default: `knode agent` in standalone mode on the example
# manifests, inside a private network namespace (nothing touches the host's network).
# Prints where its endpoints answer and what it programmed, then runs until Ctrl-C
# (or for DEMO_SECONDS seconds).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${KNODE_BUILD_DIR:-$repo/build}"
manifests="${1:-$repo/examples/manifests}"

"$repo/scripts/setup.sh"

ns="knode-demo-$$"
log="$(mktemp -t knode-demo.XXXXXX.log)"
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

ip netns add "$ns"
ip -n "$ns" link set lo up
in_ns() { ip netns exec "$ns" "$@"; }

echo "== knode agent --manifest-dir $manifests  (in network namespace $ns; log: $log)"
in_ns "$build/cmd/knode/knode" agent --manifest-dir "$manifests" --cluster-cidr 10.244.0.0/16 \
  --hostname-override node-1 --proxy-mode=ipvs >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  grep -q '"knode ready"' "$log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "knode exited"; exit 1; }
  sleep 0.1
done
grep -E '"knode ready"|falling back' "$log" || { cat "$log"; echo "knode did not get ready"; exit 1; }

show() { echo; echo "\$ curl $1"; in_ns curl -s --max-time 2 "$1"; echo; }
show http://127.0.0.1:10248/healthz
show http://127.0.0.1:10256/healthz
show http://127.0.0.1:10256/livez
show http://127.0.0.1:10249/proxyMode
echo; echo "\$ curl http://127.0.0.1:10249/metrics | grep kubeproxy_sync_proxy_rules"
in_ns curl -s --max-time 2 http://127.0.0.1:10249/metrics | grep -E '^kubeproxy_sync_proxy_rules_(last_timestamp|iptables_total|duration_seconds_count)'
echo; echo "\$ iptables-legacy-save -t nat | grep -- '-A KUBE-SERVICES'"
in_ns iptables-legacy-save -t nat | grep -- '-A KUBE-SERVICES'

if [ -n "${DEMO_SECONDS:-}" ]; then
  sleep "$DEMO_SECONDS"
else
  echo; echo "knode is running; edit $manifests to see it follow changes. Ctrl-C stops it."
  wait "$pid"
fi
