// The IPVS proxy mode as the daemon runs it: ipvs::IpvsBackend (dataplane/ipvs/) over the
// kernel's netlink client, with the node's addresses for NodePorts and every service VIP
// held on the kube-ipvs0 dummy interface.
#pragma once

#include <chrono>
#include <string>
#include <vector>

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
};

ProxyBackendPtr make_ipvs_backend(ipvs::IpvsPtr client, const IpvsModeConfig& config);

// Every non-loopback IPv4 address of this netns, except those on `skip_iface`.
std::vector<net::IPAddress> local_ipv4_addresses(const std::string& skip_iface);

}  // namespace knode
