#!/bin/bash
# Boots the test VM (Debian's kernel, which has IPVS) once per measurement and runs
# knode_ipvs_bench there; prints one table. Deleted IPVS real servers linger in the
# kernel for minutes and slow every later add, so nothing shares a boot.
#   bench/run_ipvs_bench.sh [--services 1000,10000] [--endpoints 10]
#                           [--phases table,restore,mode,daemon]
# Needs a build (scripts/setup.sh) and the VM kernel (scripts/vm/prepare.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/bench/knode_ipvs_bench"
knode="$root/build/cmd/knode/knode"
[ -x "$bin" ] && [ -x "$knode" ] || { echo "build first: cmake --build $root/build --target knode_ipvs_bench knode" >&2; exit 1; }
sizes=1000,10000
endpoints=10
phases=table,restore,mode,daemon
while [ $# -gt 0 ]; do
  case "$1" in
    --services) sizes="$2"; shift 2 ;;
    --endpoints) endpoints="$2"; shift 2 ;;
    --phases) phases="$2"; shift 2 ;;
    *) echo "usage: $0 [--services N[,N...]] [--endpoints M] [--phases P[,P...]]" >&2; exit 2 ;;
  esac
done
results="$(mktemp /tmp/knode-ipvs-bench.XXXXXX)"
for n in ${sizes//,/ }; do
  for phase in ${phases//,/ }; do
    log="$results.$n.$phase.log"
    extra=()
    [ "$phase" = daemon ] && extra=(--file "$knode")
    "$root/scripts/vm/run.sh" --quiet --memory 3072 --timeout 3000 --log "$log" --file "$bin" ${extra[@]+"${extra[@]}"} \
      --run "/knode/knode_ipvs_bench --phase $phase --services $n --endpoints $endpoints" \
      || { echo "VM run failed ($phase, $n services); console log: $log" >&2; exit 1; }
    line="$(grep -a 'KNODE-MEASURE' "$log" | tr -d '\r' | sed 's/^.*KNODE-MEASURE //' || true)"
    [ -n "$line" ] || { echo "no measurement in the console log ($phase, $n services): $log" >&2; exit 1; }
    echo "$line" >>"$results"
  done
done
# key=value fields -> one table row per size.
awk '
  function v(line, key,   i, n, f) { n = split(line, f, " "); for (i = 1; i <= n; i++) if (f[i] ~ "^" key "=") return substr(f[i], length(key) + 2); return "" }
  !($2 in seen)   { seen[$2] = 1; order[++k] = $2; ep = $3 }
  $1 == "table"   { t[$2] = $0 }
  $1 == "restore" { r[$2] = $0 }
  $1 == "mode"    { m[$2] = $0 }
  $1 == "daemon"  { d[$2] = $0 }
  END {
    print "| services x endpoints | knode full sync | ipvsadm -R | ratio | one endpoint added / removed, median (slowest) of 20 | full resync, no change | whole mode: full sync | alone: VIPs on kube-ipvs0, ipsets + rules | whole mode: one endpoint added, median (slowest) of 20 | daemon: start to programmed | daemon: EndpointSlice file renamed to real server in the kernel, median (slowest) of 20 | daemon peak RSS |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= k; i++) { n = order[i]
      ratio = (v(t[n], "full_s") > 0 && v(r[n], "full_s") != "") ? sprintf("%.1fx faster", v(r[n], "full_s") / v(t[n], "full_s")) : "n/a"
      printf "| %s x %s | %s s | %s s | %s | %s (%s) ms / %s (%s) ms (%s + %s kernel changes) | %s s | %s s | %s s, %s s | %s (%s) ms | %s s | %s (%s) ms | %s MB |\n", n, ep,
        v(t[n], "full_s"), v(r[n], "full_s"), ratio, v(t[n], "add_ms"), v(t[n], "add_max_ms"), v(t[n], "remove_ms"),
        v(t[n], "remove_max_ms"), v(t[n], "add_changes"), v(t[n], "remove_changes"), v(t[n], "resync_s"),
        v(m[n], "full_s"), v(m[n], "vips_s"), v(m[n], "sets_s"), v(m[n], "one_ms"), v(m[n], "one_max_ms"),
        v(d[n], "ready_s"), v(d[n], "one_ms"), v(d[n], "one_max_ms"), v(d[n], "rss_mb")
    }
  }' "$results"
