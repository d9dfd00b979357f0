#!/bin/sh
# A small cluster-like topology inside the VM (never on a host): the VM's own namespace
# is the node; backend namespaces be1..beN hang off it by veth, each running a TCP
# server on port 8080 that answers its own name; a client namespace "client" routes
# everything through the node. kube-ipvs0 (dummy) holds the service VIPs. Port 8081
# answers the same after 3 s, for tests that need a connection to stay open.
#
#   netns_topology.sh up N        backends be1..beN at 10.0.<i>.2, client at 10.0.0.2
#   netns_topology.sh vip ADDR    adds ADDR/32 to kube-ipvs0
#   netns_topology.sh down
set -e
IP=/sbin/ip

up() {
  n="$1"
  echo 1 >/proc/sys/net/ipv4/ip_forward
  # IPVS in NAT mode needs conntrack to un-NAT replies that come back through the node.
  echo 1 >/proc/sys/net/ipv4/vs/conntrack 2>/dev/null || true
  $IP link add kube-ipvs0 type dummy
  $IP link set kube-ipvs0 up
  $IP netns add client
  $IP link add veth-client type veth peer name eth0 netns client
  $IP addr add 10.0.0.1/24 dev veth-client
  $IP link set veth-client up
  $IP -n client addr add 10.0.0.2/24 dev eth0
  $IP -n client link set eth0 up
  $IP -n client link set lo up
  $IP -n client route add default via 10.0.0.1
  i=1
  while [ "$i" -le "$n" ]; do
    ns="be$i"
    $IP netns add "$ns"
    $IP link add "veth-$ns" type veth peer name eth0 netns "$ns"
    $IP addr add "10.0.$i.1/24" dev "veth-$ns"
    $IP link set "veth-$ns" up
    $IP -n "$ns" addr add "10.0.$i.2/24" dev eth0
    $IP -n "$ns" link set eth0 up
    $IP -n "$ns" link set lo up
    $IP -n "$ns" route add default via "10.0.$i.1"
    printf '#!/bin/sh\necho %s\n' "$ns" >"/tmp/name-$ns.sh"
    chmod +x "/tmp/name-$ns.sh"
    # busybox nc: -ll with -e keeps listening, one PROG per connection.
    $IP netns exec "$ns" nc -ll -p 8080 -e "/tmp/name-$ns.sh" >/dev/null 2>&1 &
    printf '#!/bin/sh\nsleep 3\necho %s\n' "$ns" >"/tmp/slow-$ns.sh"
    chmod +x "/tmp/slow-$ns.sh"
    $IP netns exec "$ns" nc -ll -p 8081 -e "/tmp/slow-$ns.sh" >/dev/null 2>&1 &
    i=$((i + 1))
  done
  # Wait until every server answers directly.
  i=1
  while [ "$i" -le "$n" ]; do
    tries=0
    until $IP netns exec client nc -w 2 "10.0.$i.2" 8080 </dev/null 2>/dev/null | grep -q "be$i"; do
      tries=$((tries + 1))
      [ "$tries" -lt 50 ] || { echo "backend be$i does not answer" >&2; exit 1; }
      sleep 0.1
    done
    i=$((i + 1))
  done
}

case "$1" in
  up) up "${2:-2}" ;;
  vip) $IP addr add "$2/32" dev kube-ipvs0 ;;
  down)
    for ns in $($IP netns list | awk '{print $1}'); do $IP netns del "$ns"; done
    $IP link del kube-ipvs0 2>/dev/null || true
    ;;
  *) echo "usage: $0 up N | vip ADDR | down" >&2; exit 2 ;;
esac
