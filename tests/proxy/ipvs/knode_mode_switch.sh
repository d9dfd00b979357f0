#!/bin/sh
# Proxy mode switches IPVS <-> iptables under traffic (runs inside the VM, whose kernel has
# ip_vs): knode restarted 5 times in the other mode (SIGTERM, then start) with 201 Services,
# while a client in its own namespace holds 50 connections through a ClusterIP, talking
# through each in turn the whole time, and opens a new one every 500 ms. Counts what
# failed (target: nothing) and checks each mode's rules are in and the old mode's go:
# iptables mode's chains at once when IPVS mode is in; IPVS mode's sets, idle virtual
# servers and their VIPs at once when iptables mode is in, the busy one (the 50
# connections') after its last connection ended.
set -u
fail() {
  echo "FAIL: $*"; echo "--- ipvsadm -Ln"; ipvsadm -Ln; echo "--- ipset list -n"; ipset list -n
  echo "--- iptables nat"; iptables-legacy-save -t nat | grep -v -- '-A KUBE-S[EV][PC]-' | head -60
  echo "--- client"; tail -20 /tmp/conv.log; echo "--- knode log"; tail -30 /tmp/knode.log; exit 1
}
/knode/netns_topology.sh up 3 || fail "topology"
# Echo servers on :8090 (busybox nc runs cat per connection).
for b in 1 2 3; do /sbin/ip netns exec "be$b" nc -ll -p 8090 -e /bin/cat >/dev/null 2>&1 & done
for b in 1 2 3; do
  i=0
  until echo ping | /sbin/ip netns exec client nc -w 1 "10.0.$b.2" 8090 2>/dev/null | grep -q ping; do
    i=$((i + 1)); [ $i -lt 50 ] || fail "echo server on be$b does not answer"; sleep 0.1
  done
done

M=/tmp/manifests
mkdir -p $M
cat >$M/conv.yaml <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: conv, namespace: default}
spec:
  clusterIP: 10.96.0.20
  ports: [{name: echo, port: 80, targetPort: 8090}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: conv-1, namespace: default, labels: {kubernetes.io/service-name: conv}}
addressType: IPv4
ports: [{name: echo, port: 8090}]
endpoints:
- {addresses: [10.0.1.2], nodeName: node-1}
- {addresses: [10.0.2.2], nodeName: node-1}
- {addresses: [10.0.3.2], nodeName: node-1}
YAML
# 200 more Services, so that each sync is more than one Service.
i=1
while [ $i -le 200 ]; do
  b=$(( i % 3 + 1 ))
  cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: s$i, namespace: default}
spec:
  clusterIP: 10.96.1.$i
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s$i-1, namespace: default, labels: {kubernetes.io/service-name: s$i}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.0.$b.2], nodeName: node-1}
---
YAML
  i=$((i + 1))
done >$M/more.yaml

n=0
start_knode() {  # mode
  n=$((n + 1))
  /knode/knode proxy --proxy-mode="$1" --manifest-dir $M --hostname-override node-1 \
    --cluster-cidr=10.0.1.0/24 --file-check-frequency=1s --iptables-sync-period=2s -v=2 >/tmp/knode-$n.log 2>&1 &
  KPID=$!
  ln -sf /tmp/knode-$n.log /tmp/knode.log
  t0=$(date +%s)
  i=0
  until grep -q '"knode ready"' /tmp/knode-$n.log; do
    i=$((i + 1)); [ $i -lt 300 ] || fail "knode ($1) not ready in 60 s"; sleep 0.2
  done
  grep -q "proxyMode=$1" /tmp/knode-$n.log || fail "knode did not run in $1 mode"
  echo "switch $n: $1 mode ready in $(( $(date +%s) - t0 )) s"
}
start_knode ipvs
i=0
# (Asked with the client itself, whose connections end with a reset: one closed with FINs
# would stay in IPVS's table for 2 minutes, and with it the virtual server at the end.)
until /sbin/ip netns exec client /knode/conversations 10.96.0.20 80 1 1 /tmp/none 100 0 2>/dev/null |
      grep -q 'failed=0 exchanges=[1-9]'; do
  i=$((i + 1)); [ $i -lt 50 ] || fail "the ClusterIP does not answer in IPVS mode"; sleep 0.2
done
/sbin/ip netns exec client /knode/conversations 10.96.0.20 80 50 200 /tmp/stop 300 500 >/tmp/conv.log 2>&1 &
CPID=$!
i=0
until grep -q "connections open" /tmp/conv.log; do
  i=$((i + 1)); [ $i -lt 100 ] || fail "the client could not open its connections"; sleep 0.2
done

for mode in iptables ipvs iptables ipvs iptables; do
  kill -TERM $KPID; wait $KPID
  start_knode $mode
  sleep 5  # traffic through the new mode's rules (and the old mode's, for the old connections)
  if [ $mode = iptables ]; then
    iptables-legacy-save -t nat | grep -q -- '-A KUBE-SERVICES -d 10.96.0.20/32 .*-j KUBE-SVC-' \
      || fail "iptables mode: no KUBE-SERVICES rule for 10.96.0.20"
    # IPVS mode's leftovers: the sets and the idle services with their VIPs are gone; the
    # busy one stays, quiescent, with its VIP.
    ipset list -n | grep -q '^KUBE-' && fail "iptables mode: IPVS mode's ipsets left: $(ipset list -n)"
    ipvsadm -Ln -t 10.96.1.1:80 >/dev/null 2>&1 && fail "iptables mode: an idle IPVS virtual server was left"
    /sbin/ip addr show kube-ipvs0 | grep -q ' 10.96.1.1/32' && fail "iptables mode: an idle VIP was left on kube-ipvs0"
    /sbin/ip addr show kube-ipvs0 | grep -q ' 10.96.0.20/32' || fail "iptables mode: the busy VIP was removed"
    [ "$(ipvsadm -Ln -t 10.96.0.20:80 | grep -Ec ':8090 +Masq +0 ')" = 3 ] \
      || fail "iptables mode: the busy virtual server is not kept quiescent: $(ipvsadm -Ln -t 10.96.0.20:80)"
  else
    [ "$(ipvsadm -Ln -t 10.96.0.20:80 | grep -Ec ':8090 +Masq +1 ')" = 3 ] \
      || fail "IPVS mode: 10.96.0.20 has not its 3 real servers at weight 1: $(ipvsadm -Ln -t 10.96.0.20:80)"
    ipvsadm -Ln -t 10.96.1.1:80 | grep -q '10.0.2.2:8080' || fail "IPVS mode: no virtual server for 10.96.1.1"
    iptables-legacy-save -t nat | grep -q -- '-A KUBE-SVC-' && fail "IPVS mode: iptables mode's KUBE-SVC- chains left"
  fi
done
touch /tmp/stop
wait $CPID
cat /tmp/conv.log
result=$(grep '^connections=' /tmp/conv.log) || fail "the client printed no result"
echo "RESULT $result"
case "$result" in
  *" failed=0 "*) ;;
  *) fail "established connections failed across the switches" ;;
esac
case "$result" in
  *" new_failed=0") ;;
  *) fail "new connections failed across the switches" ;;
esac
# The client is gone (its connections reset): the last IPVS leftovers go within a few
# resyncs (every 2 s here).
i=0
while ipvsadm -Ln | grep -q '^TCP' || /sbin/ip link show kube-ipvs0 >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 60 ] || fail "IPVS mode's last virtual server or kube-ipvs0 left 30 s after its connections ended"
  sleep 0.5
done
echo "IPVS leftovers gone $((i / 2)) s after the last connection"
echo "PASS: 5 mode switches under traffic"
