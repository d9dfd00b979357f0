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
//   per service port: service-/local- (the endpoints:
//                `dnat ip addr . port to numgen random mod 720720 map @endpoints-<hash>`,
//                a named interval map per policy chain giving each endpoint an equal
//                range of the 720720 slots; with ClientIP affinity, a jump per endpoint
//                through its affinity- set and a numgen vmap over the endpoint- chains),
//                external- (node ports, external and LB IPs), firewall- (LB source
//                ranges); endpoint- chains (affinity only: update the set, DNAT).
//
// This is kube-proxy's layout as of v1.37 (no chain per endpoint unless affinity needs
// one) but for where the endpoints are kept: kube-proxy writes them into the rule
// (`numgen random mod N map { 0 : ip . port, ... }`), so every endpoint change replaces
// the rule, and a rule added or replaced makes the kernel validate every rule reachable
// from the base chains at commit (11 ms at 10,000 services, 55-80 ms with a rule per
// endpoint). knode's rule names a map whose elements alone change with the endpoints:
// elements of a map without verdicts are not validated, so a one-endpoint change at
// 10,000 services costs 3-6 ms.
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
  // How a policy chain picks its endpoint (without ClientIP affinity).
  // kSlots (knode's): `dnat ip addr . port to numgen random mod 720720 map @endpoints-<hash>`,
  // a named interval map per policy chain whose elements give each endpoint an equal
  // share of the slots. The rule never changes with the endpoints, so an endpoint change
  // is a change of map elements: no rule is added, and the kernel validates no chain (a
  // rule added or replaced makes it walk every rule reachable from the base chains, 10-80
  // ms at 10,000 services). Named sets bound by name cost no walk of the transaction.
  // kMap is kube-proxy v1.37's: `dnat ip addr . port to numgen random mod N map { 0 :
  // ip . port, ... }` (one endpoint: `dnat to ip:port`), an anonymous map in the rule, so
  // every endpoint change replaces the rule; and creating many anonymous sets in one batch
  // is quadratic in the kernel (15-43 s for 10,000). kCascade is one rule per endpoint,
  // `numgen random mod (N-i) 0 meta l4proto tcp dnat to ip:port` (the last without the
  // numgen): no sets, ten times the rules. knode uses kSlots; the others are kept for the
  // benchmarks that compare with kube-proxy's ruleset.
  enum class EndpointPick { kSlots, kMap, kCascade } endpoint_pick = EndpointPick::kSlots;
};

// The endpoint maps kSlots makes (a policy chain with endpoints, without ClientIP
// affinity, has one): what large-cluster mode is decided on.
size_t endpoint_maps(const proxy::ProxyState& state);

// The slot map a policy chain picks its endpoints from: "endpoints-" + 12 base32
// characters of the SHA-256 of the chain's name.
std::string endpoint_map_name(const std::string& chain);

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
