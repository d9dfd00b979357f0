// kube-proxy's nftables layout, generated from the neutral model: a pure description of
// table `ip kube-proxy`, streamed into a TableSink (the reconciler, or values for tests).
//
//   base chains  filter-prerouting-pre-dnat, filter-output-pre-dnat (filter, -110):
//                  ct state new jump firewall-check   (LB source ranges: @firewall-ips)
//                filter-input/-forward/-output (filter, 0): ct state new jump
//                  service-endpoints-check / nodeport-endpoints-check (reject or drop what
//                  has no endpoints: @no-endpoint-services, @no-endpoint-nodeports) and
//                  cluster-ips-check (reject other ports of a cluster IP: @cluster-ips)
//                nat-prerouting/-output (nat, -100): jump services
//                  ip daddr . meta l4proto . th dport vmap @service-ips
//                  <node address> meta l4proto . th dport vmap @service-nodeports
//                nat-postrouting (nat, 100): jump masquerading (masquerade marked packets,
//                  and a pod reaching itself: @hairpin-connections)
//   per service port: service-/local- (the endpoints: `dnat to` one, or
//                `dnat ip addr . port to numgen random mod N map { ... }`; with ClientIP
//                affinity, a jump per endpoint through its affinity- set and a numgen vmap
//                over the endpoint- chains), external- (node ports, external and LB IPs),
//                firewall- (LB source ranges); endpoint- chains (affinity only: update the
//                set, DNAT).
//
// This is kube-proxy's layout as of v1.37: no chain per endpoint unless affinity needs
// one. Every rule change makes the kernel validate the whole chain graph from the base
// chains at commit, so the number of chains sets the cost of a one-endpoint change: at
// 10,000 services x 10 endpoints, 10,000 chains instead of 110,000.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "knode/dataplane/nftables/reconciler.h"
#include "knode/net.h"
#include "knode/proxy/model.h"

namespace knode::nftables_proxy {

inline constexpr const char* kTable = "kube-proxy";

struct RulesConfig {
  std::vector<net::Cidr> cluster_cidrs;  // traffic from outside is masqueraded; pods short-circuit
  bool masquerade_all = false;
  uint32_t masquerade_mark = 0x4000;     // 1 << --iptables-masquerade-bit
  // --nodeport-addresses: empty, node ports on every local address but 127.0.0.0/8;
  // else on node_port_ips (the node's addresses within those CIDRs).
  bool node_ports_on_all_addresses = true;
  std::vector<net::IPAddress> node_port_ips;
  // The node's own IPs: a load balancer whose source ranges include one also lets the
  // node reach it through its own LB IPs.
  std::set<net::IPAddress> node_ips;
  // How a policy chain picks among several endpoints. kMap is kube-proxy's
  // `dnat ip addr . port to numgen random mod N map { 0 : ip . port, ... }`: one rule, and
  // one anonymous map per service port. Creating a set costs the kernel walks of every set
  // in the table (by name) and of the whole transaction (to bind it), so a sync that
  // creates them all is quadratic: 1.0 s at 3,000 service ports, 2.8 s at 5,000, 15-43 s
  // at 10,000 (x 10 endpoints). kCascade is one rule per endpoint,
  // `numgen random mod (N-i) 0 meta l4proto tcp dnat to ip:port` (the last without the
  // numgen): the same uniform choice, no sets, 2.5 s at 10,000; but each commit then
  // validates ten times the rules, so a change costs about 3x more (83 ms against 26 ms
  // at 10,000). The proxier turns to it above NftablesConfig::large_cluster_maps (5,000).
  enum class EndpointPick { kMap, kCascade } endpoint_pick = EndpointPick::kMap;
};

// Service ports with several endpoints: what large-cluster mode is decided on (an
// approximation of the maps kMap would create: affinity's vmaps count too).
size_t endpoint_maps(const proxy::ProxyState& state);

// The table, its shared sets, maps and chains (owner ""), then each service port (owner:
// its name). With `only`, just the named service ports, no shared objects (a partial sync).
void describe(nftables::TableSink& sink, const proxy::ProxyState& state, const RulesConfig& config,
              const std::set<std::string>* only = nullptr);
// One service port's sets, chains and map elements (not its hairpin elements).
void describe_service(nftables::TableSink& sink, const proxy::ServicePort& sp, const RulesConfig& config);

// @hairpin-connections holds (ip, ip, protocol, port) of each local endpoint, once however
// many service ports use it: each element is its own owner, named by this. A partial sync
// of service ports also names the owners of their endpoints, before and after.
std::string hairpin_owner(const proxy::ServicePort& sp, const proxy::Endpoint& ep);
void hairpin_owners(const proxy::ServicePort& sp, std::set<std::string>* out);

// The whole table as values, in the order a sync into an empty table creates it.
nftables::TableContent generate(const proxy::ProxyState& state, const RulesConfig& config);

}  // namespace knode::nftables_proxy
