// --proxy-mode=ipvs: one proxier owning everything the mode programs, in the order a
// sync applies it: kube-proxy's ip sets and the iptables rules matching them
// (companion_sync.h), the IPVS virtual and real servers (virtual_servers.h), and the
// VIPs on kube-ipvs0 (vips.h). The sysctls the mode needs are set at the first sync.
#pragma once

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "host.h"
#include "knode/dataplane/ipset.h"
#include "knode/dataplane/ipvs.h"
#include "knode/net.h"
#include "knode/proxy/backend.h"

namespace knode::ipvs_proxy {

struct IpvsConfig {
  std::string scheduler = "rr";                // --ipvs-scheduler
  std::vector<net::Cidr> exclude_cidrs;        // --ipvs-exclude-cidrs
  std::vector<net::Cidr> node_port_addresses;  // --nodeport-addresses; empty: all
  ipvs::Timeouts timeouts;                     // --ipvs-tcp/tcpfin/udp-timeout
  std::chrono::seconds drain_bound{900};
  std::string dummy = "kube-ipvs0";
  // --ipvs-strict-arp: arp_ignore=1 and arp_announce=2, so the node does not answer ARP
  // for the VIPs on kube-ipvs0 (what MetalLB-style load balancers need).
  bool strict_arp = false;
  // Traffic to services from outside these is masqueraded (--cluster-cidr; the first
  // IPv4 one), or all of it with --masquerade-all.
  std::vector<net::Cidr> cluster_cidrs;
  bool masquerade_all = false;
  int masquerade_bit = 14;
  // The node's IP (--bind-address when set); invalid: the IPv4 addresses of the interface
  // with the default route. Decides whether LB source ranges let the node itself in.
  net::IPAddress node_ip;
};

ProxyBackendPtr make_ipvs_proxier(ipvs::IpvsPtr client, ipset::IpsetPtr sets, const IpvsConfig& config,
                                  proxy::Host& host = proxy::system_host());

// Removes IPVS mode's ip sets (the rules using them must be gone first).
[[nodiscard]] Status cleanup_ipvs_sets(ipset::Ipset& sets);

// What IPVS mode left, when knode now runs in another mode whose rules are in (its NAT
// runs before IPVS, so no new connection reaches a virtual server any more). The first
// pass takes the virtual servers there are (but those in exclude_cidrs) as IPVS mode's:
// later passes touch only those, never one someone else added meanwhile. Each pass
// deletes the ones without connections, and UDP and SCTP ones at once (a flow of
// datagrams never ends, as IPVS mode's own retiring has it); a TCP one still carrying
// connections is kept, its real servers at weight 0, so that switching modes cuts none,
// until they end or `bound` has passed since the first pass.
struct VirtualServerDrain {
  size_t deleted = 0;
  std::set<net::IPAddress> busy;  // the addresses of the virtual servers kept
  Status error;                   // the first failure; what it concerned counts as busy
};
class LeftoverDrain {
 public:
  LeftoverDrain(std::vector<net::Cidr> exclude_cidrs, std::chrono::seconds bound)
      : exclude_(std::move(exclude_cidrs)), bound_(bound) {}
  VirtualServerDrain pass(ipvs::Ipvs& ipvs, std::chrono::steady_clock::time_point now);
  size_t remaining() const { return scope_.size(); }

 private:
  std::vector<net::Cidr> exclude_;
  std::chrono::seconds bound_;
  bool started_ = false;
  std::chrono::steady_clock::time_point first_{};
  std::vector<ipvs::VirtualServer> scope_;  // IPVS mode's, not deleted yet
};

// The whole of IPVS mode's leftovers, drained as above, one pass per call: its ip sets
// (the other mode's first sync replaced the rules using them), the virtual servers, and
// the VIPs on config.dummy, each kept while a virtual server on it is kept; the interface
// goes with the last. No virtual server is touched when config.dummy is absent (IPVS mode
// never ran, or was cleaned up). *done is true when nothing is left to look at again.
[[nodiscard]] Status drain_ipvs_leftovers(ipvs::Ipvs& ipvs, ipset::Ipset* sets, const IpvsConfig& config,
                                          LeftoverDrain& drain, bool* done);

}  // namespace knode::ipvs_proxy
