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
//   endpoint shards: endpoints-000 ... endpoints-3ff, named interval maps of slots, each
//                shared by the policy chains of the service ports hashed to it (below)
//   per service port: service-/local- (the endpoints: `dnat ip addr . port to numgen
//                random mod 720720 offset O map @endpoints-<shard>`, each endpoint owning
//                an equal range of the chain's 720720 slots [O, O+720720) in its shard's
//                map; with ClientIP affinity, a jump per endpoint through its affinity-
//                set and a numgen vmap over the endpoint- chains),
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
#include <string_view>
#include <vector>

#include "knode/dataplane/nftables/exprs.h"
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
  // kSlots (knode's): `dnat ip addr . port to numgen random mod 720720 offset O map
  // @endpoints-<shard>`: the chain's endpoints share the slots [O, O+720720) of a named
  // interval map, in equal ranges. The rule never changes with the endpoints, so an
  // endpoint change is a change of map elements: no rule is added, and the kernel
  // validates no chain (a rule added or replaced makes it walk every rule reachable from
  // the base chains, 10-80 ms at 10,000 services).
  // The maps are shared: a service port's chains keep their slots in one of
  // `endpoint_shards` maps, picked by a hash of its name. The kernel finds a set by
  // walking the table's sets and comparing names, several times per set created and once
  // per rule or element message naming one, so a map per chain made a first sync
  // quadratic (7.6 s for 10,000 maps); and it inserts an interval more slowly the more the
  // map holds, so one map for all would be quadratic too. Hundreds of maps of tens of
  // chains each cost neither.
  // kMap is kube-proxy v1.37's: `dnat ip addr . port to numgen random mod N map { 0 :
  // ip . port, ... }` (one endpoint: `dnat to ip:port`), an anonymous map in the rule, so
  // every endpoint change replaces the rule; and creating many anonymous sets in one batch
  // is quadratic in the kernel (15-43 s for 10,000). kCascade is one rule per endpoint,
  // `numgen random mod (N-i) 0 meta l4proto tcp dnat to ip:port` (the last without the
  // numgen): no sets, ten times the rules. knode uses kSlots; the others are kept for the
  // benchmarks that compare with kube-proxy's ruleset and other layouts.
  enum class EndpointPick { kSlots, kMap, kCascade } endpoint_pick = EndpointPick::kSlots;
  uint32_t endpoint_shards = 1024;
};

// kSlots: the shard map of a service port (by the hash of its name), its name
// ("endpoints-" + 3 hex digits) and the owner that describes it whole (with every
// member's elements).
uint32_t endpoint_shard(std::string_view service_port, const RulesConfig& config);
std::string endpoint_shard_map(uint32_t shard);
std::string endpoint_shard_owner(uint32_t shard);
// Where a policy chain's slots are in its shard's map: within a shard each chain takes
// an index from a hash of its service port's name, the first free one from there in the
// order of those hashes, so the layout is a function of the shard's members alone
// (a restarted proxier finds the same). A partial sync that changes a member may move
// another's slots: describe() describes the whole shard, every member with it. This adds
// to `scope` the owners of the shards of its service ports, so that a shard left empty
// goes.
void add_endpoint_shard_owners(const RulesConfig& config, std::set<std::string>* scope);
// Slot indexes per shard map: offset = index * 720720, the last slot below 2^32.
inline constexpr uint32_t kSlotIndexes = static_cast<uint32_t>((uint64_t{1} << 32) / nftables::kSlots);

// The table, its shared sets, maps and chains (owner ""), the endpoint shard maps (owner:
// endpoint_shard_owner), then each service port (owner: its name). With `only`, just the
// named owners, no shared objects (a partial sync), and with them the shards of the named
// service ports and every member of a shard described (`only` must name what may have
// gone: see add_endpoint_shard_owners).
void describe(nftables::TableSink& sink, const proxy::ProxyState& state, const RulesConfig& config,
              const std::set<std::string>* only = nullptr);
// Where a service port's policy chains read their slots (kSlots): the offsets in its
// shard's map (kNone: none, the chain is not used or has no slot index left).
struct PolicySlots {
  static constexpr uint32_t kNone = ~uint32_t{0};
  uint32_t cluster = kNone, local = kNone;
};
// One service port's sets, chains and map elements (not its hairpin or slot elements).
void describe_service(nftables::TableSink& sink, const proxy::ServicePort& sp, const RulesConfig& config,
                      const PolicySlots& slots = {});

// @hairpin-connections holds (ip, ip, protocol, port) of each local endpoint, once however
// many service ports use it: each element is its own owner, named by this. A partial sync
// of service ports also names the owners of their endpoints, before and after.
std::string hairpin_owner(const proxy::ServicePort& sp, const proxy::Endpoint& ep);
void hairpin_owners(const proxy::ServicePort& sp, std::set<std::string>* out);

// The whole table as values, in the order a sync into an empty table creates it.
nftables::TableContent generate(const proxy::ProxyState& state, const RulesConfig& config);

}  // namespace knode::nftables_proxy
