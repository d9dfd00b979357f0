#!/bin/sh
# The real daemon in IPVS mode on a kernel with ip_vs (runs inside the VM): knode proxy
# --proxy-mode=ipvs from manifests; checks ipvsadm -Ln, kube-ipvs0, the ipsets and
# iptables rules, traffic through the ClusterIP and the NodePort, masquerading, hairpin,
# no endpoints, the VIP filter, ClientIP affinity, an endpoint leaving without touching
# other services, and --cleanup.
set -u
fail() {
  echo "FAIL: $*"; echo "--- ipvsadm -Ln"; ipvsadm -Ln; echo "--- iptables"; iptables-legacy-save
  echo "--- knode log"; tail -40 /tmp/knode.log; exit 1
}
/knode/netns_topology.sh up 3 || fail "topology"
# The daemon must set what IPVS mode needs itself (the topology script turned it on).
echo 0 >/proc/sys/net/ipv4/vs/conntrack
# be1 also runs a server on 8082 that answers with the source address it sees.
cat >/tmp/who.sh <<'SH'
#!/bin/sh
# The remote address of the established connection to local port 8082 (0x1F92). busybox
# nc listens on [::], so IPv4 peers show in tcp6 as ::ffff:a.b.c.d; the last 8 hex digits
# are the IPv4 address, bytes in reverse.
cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | while read -r sl local remote st rest; do
  case "$local" in *:1F92) ;; *) continue ;; esac
  case "$st" in 01|08) ;; *) continue ;; esac  # established, or the client half-closed
  h=$(echo "${remote%%:*}" | sed 's/.*\(........\)$/\1/')
  echo "$((0x$(echo $h | cut -c7-8))).$((0x$(echo $h | cut -c5-6))).$((0x$(echo $h | cut -c3-4))).$((0x$(echo $h | cut -c1-2)))"
  break
done
SH
chmod +x /tmp/who.sh
/sbin/ip netns exec be1 nc -ll -p 8082 -e /tmp/who.sh >/dev/null 2>&1 &
# A server of the node's own, on all addresses: reachable on the node's address, but the
# VIPs on kube-ipvs0 must not expose it.
printf '#!/bin/sh\necho node\n' >/tmp/node.sh; chmod +x /tmp/node.sh
nc -ll -p 9999 -e /tmp/node.sh >/dev/null 2>&1 &
i=0
until /sbin/ip netns exec client nc -w 2 10.0.1.2 8082 </dev/null 2>/dev/null | grep -q . &&
      /sbin/ip netns exec client nc -w 2 10.0.0.1 9999 </dev/null 2>/dev/null | grep -q node; do
  i=$((i + 1)); [ $i -lt 50 ] || fail "the :8082 and :9999 servers do not answer"; sleep 0.1
done

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
---
apiVersion: v1
kind: Service
metadata: {name: self, namespace: default}
spec:
  clusterIP: 10.96.0.12
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec:
  clusterIP: 10.96.0.13
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: who, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.14
  ports: [{name: http, port: 80, targetPort: 8082, nodePort: 30082}]
---
apiVersion: v1
kind: Service
metadata: {name: who-local, namespace: default}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  clusterIP: 10.96.0.15
  ports: [{name: http, port: 80, targetPort: 8082, nodePort: 30083}]
---
apiVersion: v1
kind: Service
metadata: {name: lbfw, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.16
  loadBalancerSourceRanges: [198.51.100.0/24]
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30084}]
status:
  loadBalancer: {ingress: [{ip: 192.0.2.10}]}
YAML
slice() {  # name service [port] endpoints...
  name=$1; svc=$2; shift 2
  port=8080; case "$1" in 80*) port=$1; shift ;; esac
  {
    echo "apiVersion: discovery.k8s.io/v1"
    echo "kind: EndpointSlice"
    echo "metadata: {name: $name, namespace: default, labels: {kubernetes.io/service-name: $svc}}"
    echo "addressType: IPv4"
    echo "ports: [{name: http, port: $port}]"
    echo "endpoints:"
    for ep in "$@"; do echo "- {addresses: [$ep], nodeName: node-1}"; done
  } >"$M/.$name.tmp"
  mv "$M/.$name.tmp" "$M/$name.yaml"
}
slice web-1 web 10.0.1.2 10.0.2.2 10.0.3.2
slice sticky-1 sticky 10.0.1.2 10.0.2.2 10.0.3.2
slice self-1 self 10.0.1.2
slice who-1 who 8082 10.0.1.2
slice who-local-1 who-local 8082 10.0.1.2
slice lbfw-1 lbfw 10.0.2.2

/knode/knode proxy --proxy-mode=ipvs --manifest-dir $M --hostname-override node-1 \
  --cluster-cidr=10.0.1.0/24 --ipvs-min-sync-period=0s --file-check-frequency=1s --ipvs-strict-arp -v=2 \
  >/tmp/knode.log 2>&1 &
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
# web and sticky: 2 cluster IPs + 4 node addresses (10.0.0.1, 10.0.1-3.1) for the NodePort,
# 3 real servers each; self: 1; lbfw: cluster IP, LB IP and 4 node ports, 1 each.
[ "$n" -eq 25 ] || fail "expected 25 masq real servers of weight 1 to :8080, saw $n"
grep -Eq '^TCP  10\.96\.0\.13:80 rr *$' /tmp/ipvs.txt || fail "a service without endpoints still gets its virtual server"
/sbin/ip addr show kube-ipvs0 | grep -q '10.96.0.10/32' || fail "10.96.0.10 not on kube-ipvs0"
[ "$(cat /proc/sys/net/ipv4/conf/all/arp_ignore)" = 1 ] || fail "--ipvs-strict-arp did not set arp_ignore=1"
[ "$(cat /proc/sys/net/ipv4/conf/all/arp_announce)" = 2 ] || fail "--ipvs-strict-arp did not set arp_announce=2"
/sbin/ip addr show kube-ipvs0 | grep -q '10.96.0.11/32' || fail "10.96.0.11 not on kube-ipvs0"

# The ipsets and the iptables rules that match on them.
ipset list KUBE-CLUSTER-IP | grep -qx '10.96.0.10,tcp:80' || fail "KUBE-CLUSTER-IP lacks 10.96.0.10,tcp:80"
ipset list KUBE-NODE-PORT-TCP | grep -qx '30080' || fail "KUBE-NODE-PORT-TCP lacks 30080"
ipset list KUBE-NODE-PORT-LOCAL-TCP | grep -qx '30083' || fail "KUBE-NODE-PORT-LOCAL-TCP lacks 30083"
ipset list KUBE-LOOP-BACK | grep -qx '10.0.1.2,tcp:8080,10.0.1.2' || fail "KUBE-LOOP-BACK lacks be1"
ipset list KUBE-IPVS-IPS | grep -qx '10.96.0.13' || fail "KUBE-IPVS-IPS lacks 10.96.0.13"
ipset list KUBE-LOAD-BALANCER-FW | grep -qx '192.0.2.10,tcp:80' || fail "KUBE-LOAD-BALANCER-FW lacks the LB IP"
[ "$(cat /proc/sys/net/ipv4/vs/conntrack)" = 1 ] || fail "net.ipv4.vs.conntrack not set"
iptables-legacy-save -t nat >/tmp/nat.txt
grep -qx -- '-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE' /tmp/nat.txt \
  || fail "no hairpin MASQUERADE rule"
grep -qx -- '-A KUBE-SERVICES ! -s 10.0.1.0/24 -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ' /tmp/nat.txt \
  || fail "no off-cluster masquerade rule"
# The node (10.0.0.1, ...) is outside lbfw's source ranges: it must not reach the LB IP.
iptables-legacy-save -t filter | grep -qx -- '-A KUBE-IPVS-OUT-FILTER -s 192.0.2.10/32 -m ipvs --vproto 6 --vaddr 192.0.2.10 --vport 80 -j DROP' \
  || fail "no KUBE-IPVS-OUT-FILTER rule for the LB IP"

# 2. Traffic: the ClusterIP spreads over all three, the NodePort answers, affinity sticks.
ask() { /sbin/ip netns exec client nc -w 3 "$1" "$2" </dev/null 2>/dev/null; }
: >/tmp/hits
for k in $(seq 1 30); do ask 10.96.0.10 80 >>/tmp/hits; done
for b in be1 be2 be3; do grep -q "^$b\$" /tmp/hits || fail "ClusterIP never reached $b: $(sort /tmp/hits | uniq -c)"; done
ask 10.0.0.1 30080 | grep -q '^be[123]$' || fail "NodePort did not answer"
: >/tmp/sticky
for k in $(seq 1 10); do ask 10.96.0.11 80 >>/tmp/sticky; done
[ "$(sort -u /tmp/sticky | wc -l)" -eq 1 ] || fail "ClientIP affinity spread: $(sort /tmp/sticky | uniq -c)"

# Hairpin: be1 reaches itself through a service (masqueraded, so the reply returns via IPVS).
got=$(/sbin/ip netns exec be1 nc -w 3 10.96.0.12 80 </dev/null 2>&1)
[ "$got" = be1 ] || fail "hairpin: be1 -> 10.96.0.12:80 -> be1 answered '$got'"
# Masquerade: from outside the cluster CIDR through a NodePort the backend sees the node;
# with externalTrafficPolicy=Local it sees the client.
got=$(ask 10.0.0.1 30082)
[ -n "$got" ] || got=unknown
[ "$got" = 10.0.1.1 ] || fail "NodePort (Cluster policy): backend saw source '$got', want the node's 10.0.1.1"
got=$(ask 10.0.0.1 30083)
[ "$got" = 10.0.0.2 ] || fail "NodePort (Local policy): backend saw source '$got', want the client's 10.0.0.2"
got=$(ask 10.96.0.14 80)
[ "$got" = 10.0.1.1 ] || fail "ClusterIP from outside the cluster CIDR: backend saw '$got', want 10.0.1.1"
# No endpoints: refused at once (IPVS answers ICMP port unreachable), not a timeout.
start=$(date +%s)
err=$(/sbin/ip netns exec client nc -w 5 10.96.0.13 80 </dev/null 2>&1)
[ $(( $(date +%s) - start )) -le 2 ] || fail "no-endpoint service: took more than 2 s ($err)"
echo "$err" | grep -qi refused || fail "no-endpoint service: want connection refused, got '$err'"
# The VIP filter: the node's own server answers on the node's address, not on a VIP.
ask 10.0.0.1 9999 | grep -qx node || fail "the node's server on :9999 does not answer on 10.0.0.1"
err=$(/sbin/ip netns exec client nc -w 3 10.96.0.10 9999 </dev/null 2>&1)
echo "$err" | grep -qi refused || fail "VIP 10.96.0.10:9999 (no such service port) was not refused: '$err'"
# The LB IP with source ranges: the client (10.0.0.2) is outside them: dropped.
got=$(ask 192.0.2.10 80)
[ -z "$got" ] || fail "client outside loadBalancerSourceRanges reached the LB IP: '$got'"
sticky_conns() { ipvsadm -Ln --stats -t 10.96.0.11:80 | awk '$1 == "TCP" {print $3}'; }
before=$(sticky_conns)
[ "${before:-0}" -ge 10 ] || fail "sticky's connection counter is '$before' after 10 connections"

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
# Changing web left sticky's virtual server alone (a re-created one starts from 0).
[ "$(sticky_conns)" = "$before" ] || fail "sticky's counters changed ($before -> $(sticky_conns)) when only web changed"
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
ipset list -n | grep -q '^KUBE-' && fail "ipsets left after cleanup: $(ipset list -n)"
iptables-legacy-save | grep -q 'KUBE-' && fail "KUBE- rules left after cleanup"
echo "PASS: knode in IPVS mode"
