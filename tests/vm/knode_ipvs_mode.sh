#!/bin/sh
# The real daemon in IPVS mode on a kernel with ip_vs (runs inside the VM): knode proxy
# --proxy-mode=ipvs from manifests; checks ipvsadm -Ln, kube-ipvs0, traffic through the
# ClusterIP and the NodePort, ClientIP affinity, an endpoint leaving, and --cleanup.
set -u
fail() { echo "FAIL: $*"; echo "--- ipvsadm -Ln"; ipvsadm -Ln; echo "--- knode log"; tail -40 /tmp/knode.log; exit 1; }
/knode/netns_topology.sh up 3 || fail "topology"

M=/tmp/manifests
mkdir -p $M
cat >$M/services.yaml <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: sticky, namespace: default}
spec:
  clusterIP: 10.96.0.11
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
  ports: [{name: http, port: 80, targetPort: 8080}]
YAML
slice() {  # name service endpoints...
  name=$1; svc=$2; shift 2
  {
    echo "apiVersion: discovery.k8s.io/v1"
    echo "kind: EndpointSlice"
    echo "metadata: {name: $name, namespace: default, labels: {kubernetes.io/service-name: $svc}}"
    echo "addressType: IPv4"
    echo "ports: [{name: http, port: 8080}]"
    echo "endpoints:"
    for ep in "$@"; do echo "- {addresses: [$ep], nodeName: node-1}"; done
  } >"$M/.$name.tmp"
  mv "$M/.$name.tmp" "$M/$name.yaml"
}
slice web-1 web 10.0.1.2 10.0.2.2 10.0.3.2
slice sticky-1 sticky 10.0.1.2 10.0.2.2 10.0.3.2

/knode/knode proxy --proxy-mode=ipvs --manifest-dir $M --hostname-override node-1 \
  --ipvs-min-sync-period=0s --file-check-frequency=1s --ipvs-strict-arp -v=2 >/tmp/knode.log 2>&1 &
KPID=$!
i=0
until grep -q '"knode ready"' /tmp/knode.log; do
  i=$((i + 1)); [ $i -lt 120 ] || fail "knode not ready in 60 s"; sleep 0.5
done
grep -q 'proxyMode=ipvs' /tmp/knode.log || fail "knode did not run in ipvs mode"

# 1. ipvsadm -Ln shows exactly what the manifests ask for.
ipvsadm -Ln >/tmp/ipvs.txt
grep -Eq '^TCP  10\.96\.0\.10:80 rr *$' /tmp/ipvs.txt || fail "no rr virtual server for the ClusterIP"
grep -Eq '^TCP  10\.96\.0\.11:80 rr persistent 600' /tmp/ipvs.txt || fail "no persistent virtual server for ClientIP affinity"
grep -Eq '^TCP  10\.0\.0\.1:30080 rr' /tmp/ipvs.txt || fail "no NodePort virtual server on the node address"
n=$(grep -Ec '^  -> 10\.0\.[123]\.2:8080 +Masq +1 ' /tmp/ipvs.txt)
# 2 cluster IPs + 4 node addresses (10.0.0.1, 10.0.1-3.1) for the NodePort, 3 real servers each.
[ "$n" -eq 18 ] || fail "expected 18 masq real servers of weight 1, saw $n"
/sbin/ip addr show kube-ipvs0 | grep -q '10.96.0.10/32' || fail "10.96.0.10 not on kube-ipvs0"
[ "$(cat /proc/sys/net/ipv4/conf/all/arp_ignore)" = 1 ] || fail "--ipvs-strict-arp did not set arp_ignore=1"
[ "$(cat /proc/sys/net/ipv4/conf/all/arp_announce)" = 2 ] || fail "--ipvs-strict-arp did not set arp_announce=2"
/sbin/ip addr show kube-ipvs0 | grep -q '10.96.0.11/32' || fail "10.96.0.11 not on kube-ipvs0"

# 2. Traffic: the ClusterIP spreads over all three, the NodePort answers, affinity sticks.
ask() { /sbin/ip netns exec client nc -w 3 "$1" "$2" </dev/null 2>/dev/null; }
: >/tmp/hits
for k in $(seq 1 30); do ask 10.96.0.10 80 >>/tmp/hits; done
for b in be1 be2 be3; do grep -q "^$b\$" /tmp/hits || fail "ClusterIP never reached $b: $(sort /tmp/hits | uniq -c)"; done
ask 10.0.0.1 30080 | grep -q '^be[123]$' || fail "NodePort did not answer"
: >/tmp/sticky
for k in $(seq 1 10); do ask 10.96.0.11 80 >>/tmp/sticky; done
[ "$(sort -u /tmp/sticky | wc -l)" -eq 1 ] || fail "ClientIP affinity spread: $(sort /tmp/sticky | uniq -c)"

# 3. An endpoint leaves: it stops getting new connections and its real server goes.
slice web-1 web 10.0.1.2 10.0.2.2
i=0
while ipvsadm -Ln -t 10.96.0.10:80 | grep -Eq '10\.0\.3\.2:8080 +Masq +1 '; do
  i=$((i + 1)); [ $i -lt 60 ] || fail "be3 still weighted after 30 s"; sleep 0.5
done
: >/tmp/hits2
for k in $(seq 1 12); do ask 10.96.0.10 80 >>/tmp/hits2; done
grep -q '^be3$' /tmp/hits2 && fail "be3 got new connections after it left"
ipvsadm -Ln -t 10.96.0.10:80 | grep -Eq '10\.0\.3\.2:8080 +Masq +0 ' || fail "be3 should drain at weight 0 while its connections expire"
# A real server with no connections left goes at once: sticky's clients all used one
# backend, so drop one of the others from sticky.
used=$(sort -u /tmp/sticky)
other=be1; [ "$used" = be1 ] && other=be2
oip="10.0.${other#be}.2"
rest=""; for b in 1 2 3; do [ "10.0.$b.2" = "$oip" ] || rest="$rest 10.0.$b.2"; done
slice sticky-1 sticky $rest
i=0
while ipvsadm -Ln -t 10.96.0.11:80 | grep -q "$oip:8080"; do
  i=$((i + 1)); [ $i -lt 60 ] || fail "idle real server $oip not deleted"; sleep 0.5
done

# 4. SIGTERM leaves the table in place; --cleanup removes it all.
kill $KPID; wait $KPID
ipvsadm -Ln | grep -q '10.96.0.10:80' || fail "SIGTERM removed the virtual servers"
/knode/knode proxy --cleanup >>/tmp/knode.log 2>&1 || fail "cleanup failed"
/knode/knode proxy --cleanup >>/tmp/knode.log 2>&1 || fail "second cleanup failed"
[ "$(ipvsadm -Ln | grep -c '^TCP')" -eq 0 ] || fail "virtual servers left after cleanup"
/sbin/ip link show kube-ipvs0 >/dev/null 2>&1 && fail "kube-ipvs0 left after cleanup"
echo "PASS: knode in IPVS mode"
