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
//                nat-postrouting (nat, 100): jump masquerading (masquerade marked packets)
//   per service port: service-/local- (numgen random over endpoint- chains, ClientIP
//                affinity through affinity- sets), external- (node ports, external and LB
//                IPs), firewall- (LB source ranges); per endpoint: endpoint- (DNAT).
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
  // How a policy chain picks an endpoint. kVmap is kube-proxy's
  // `numgen random mod N vmap { 0 : goto endpoint-a, ... }`: one anonymous map per
  // service, which the kernel binds by walking the whole transaction, so loading many
  // services at once costs time quadratic in their number. kCascade is one rule per
  // endpoint, `numgen random mod (N-i) 0 goto endpoint-i` (the last a plain goto): the
  // same uniform choice, no sets, linear. The proxier switches to it above
  // kLargeClusterEndpoints, as kube-proxy's iptables mode turns to its large-cluster mode.
  enum class EndpointPick { kVmap, kCascade } endpoint_pick = EndpointPick::kVmap;
};

inline constexpr size_t kLargeClusterEndpoints = 1000;

// The table, its shared sets, maps and chains (owner ""), then each service port (owner:
// its name). With `only`, just the named service ports, no shared objects (a partial sync).
void describe(nftables::TableSink& sink, const proxy::ProxyState& state, const RulesConfig& config,
              const std::set<std::string>* only = nullptr);
// One service port's sets, chains and map elements.
void describe_service(nftables::TableSink& sink, const proxy::ServicePort& sp, const RulesConfig& config);

// The whole table as values, in the order a sync into an empty table creates it.
nftables::TableContent generate(const proxy::ProxyState& state, const RulesConfig& config);

}  // namespace knode::nftables_proxy
