// The IPVS proxy mode as the daemon runs it: ipvs::IpvsBackend (dataplane/ipvs/) over the
// kernel's netlink client, with the node's addresses for NodePorts and every service VIP
// held on the kube-ipvs0 dummy interface.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "knode/dataplane/ipset.h"
#include "knode/dataplane/ipvs.h"
#include "knode/net.h"
#include "knode/proxy_backend.h"

namespace knode {

struct IpvsModeConfig {
  std::vector<net::Cidr> exclude_cidrs;        // --ipvs-exclude-cidrs
  std::vector<net::Cidr> node_port_addresses;  // --nodeport-addresses; empty: all
  ipvs::Timeouts timeouts;                     // --ipvs-tcp/tcpfin/udp-timeout
  std::chrono::seconds drain_bound{900};
  std::string dummy = "kube-ipvs0";
  // --ipvs-strict-arp: arp_ignore=1 and arp_announce=2, so the node does not answer ARP
  // for the VIPs on kube-ipvs0 (what MetalLB-style load balancers need).
  bool strict_arp = false;
  // For the iptables companions: traffic to services from outside these is masqueraded
  // (--cluster-cidr; the first IPv4 one), or all of it with --masquerade-all.
  std::vector<net::Cidr> cluster_cidrs;
  bool masquerade_all = false;
  int masquerade_bit = 14;
  // The node's IP (--bind-address when set); invalid: the IPv4 addresses of the interface
  // with the default route. Decides whether LB source ranges let the node itself in.
  net::IPAddress node_ip;
};

// The mode over the IPVS netlink client and the ipset client (kube-proxy's KUBE-* sets
// and the iptables rules matching them: masquerade, hairpin, VIP filtering).
ProxyBackendPtr make_ipvs_backend(ipvs::IpvsPtr client, ipset::IpsetPtr sets,
                                  const IpvsModeConfig& config);

// Removes IPVS mode's ip sets (the rules using them must be gone first).
Status cleanup_ipvs_mode_sets(ipset::Ipset& sets);

// Every non-loopback IPv4 address of this netns, except those on `skip_iface`.
std::vector<net::IPAddress> local_ipv4_addresses(const std::string& skip_iface);

}  // namespace knode
