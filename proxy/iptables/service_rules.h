// kube-proxy's iptables layout, generated from the neutral model: a pure function from
// ProxyState to the desired nat and filter tables (no kernel access here).
//
// nat:    PREROUTING/OUTPUT -> KUBE-SERVICES -> KUBE-SVC-* (cluster IP) / KUBE-EXT-* (node
//         ports, external and LB IPs) / KUBE-FW-* (LB source ranges) -> KUBE-SEP-* (DNAT);
//         KUBE-SVL-* holds the local endpoints for externalTrafficPolicy=Local;
//         POSTROUTING -> KUBE-POSTROUTING masquerades what KUBE-MARK-MASQ marked.
// filter: KUBE-SERVICES / KUBE-EXTERNAL-SERVICES reject traffic to services without
//         endpoints (drop when only local ones are missing), KUBE-PROXY-FIREWALL drops
//         what LB source ranges do not allow, KUBE-FORWARD accepts marked and established
//         traffic, KUBE-NODEPORTS accepts health-check node ports.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "knode/dataplane/iptables/reconciler.h"
#include "knode/proxy/model.h"

namespace knode::iptables_proxy {

struct RulesConfig {
  std::vector<net::Cidr> cluster_cidrs;       // traffic from outside gets masqueraded
  bool masquerade_all = false;
  uint32_t masquerade_mark = 0x4000;          // 1 << --iptables-masquerade-bit
  std::vector<net::Cidr> node_port_addresses;  // empty: every local address
  bool localhost_node_ports = true;
  bool random_fully = true;
  // kube-proxy's large-cluster mode (over 1000 endpoints): per-endpoint rules carry no
  // comment, which keeps the table (and every kernel replace of it) ~40% smaller.
  bool large_cluster = false;
  // Per-service chains (KUBE-SVC-/SVL-/EXT-/FW-/SEP-) come out in Tables::nat.encoded as
  // bytes instead of Rule values in nat.chains: what the backend uses, to save memory.
  bool encode_service_chains = false;
};

// kube-proxy switches to large-cluster mode above this many endpoints in total.
constexpr size_t kLargeClusterEndpointsThreshold = 1000;

struct Tables {
  iptables::DesiredTable nat;
  iptables::DesiredTable filter;
  // Per service port name: the nat chains it owns (for partial syncs and deletions).
  std::map<std::string, std::vector<std::string>> service_chains;
  // With a SharedChainCache: the first rule that failed validation (the sync must fail
  // as the reconciler fails a Rule chain with an invalid rule).
  Status error = Status::Ok();
};

// The chains every service port adds rules to, one slot each.
enum SharedPart : uint8_t {
  kNatServicesPart,     // nat KUBE-SERVICES
  kNatNodePortsPart,    // nat KUBE-NODEPORTS
  kFilterServicesPart,  // filter KUBE-SERVICES
  kFilterExternalPart,  // filter KUBE-EXTERNAL-SERVICES
  kFilterFirewallPart,  // filter KUBE-PROXY-FIREWALL
  kFilterNodePortsPart, // filter KUBE-NODEPORTS
  kSharedParts
};

// One service port's rules in the shared chains, encoded, back to back.
struct SharedRules {
  std::string bytes;
  std::array<uint32_t, kSharedParts> end{};    // where each part's bytes end
  std::array<uint32_t, kSharedParts> rules{};  // rules per part
  std::string_view part(SharedPart p) const {
    uint32_t from = p == 0 ? 0 : end[p - 1];
    return std::string_view(bytes).substr(from, end[p] - from);
  }
  bool operator==(const SharedRules&) const = default;
};

// Each service port's shared rules as the last sync generated them, kept by the caller
// between syncs. A partial generation then encodes only the changed service ports' shared
// rules, and emits a shared chain (concatenated from the kept parts, in model order) only
// when one of its parts changed: an endpoint change leaves KUBE-SERVICES alone, where it
// used to be regenerated, encoded and compared whole (10,000 rules at 10,000 services).
// Clear it whenever the kernel may not hold what the last generation described (a failed
// sync); a full generation rebuilds it.
struct SharedChainCache {
  std::unordered_map<std::string, SharedRules> parts;  // by service port name
};

// Empty tables with the ownership (KUBE-* chains) and the jump rules set.
Tables skeleton();

// The full tables for `state`. With `only`, per-service chains are generated only for
// the named service ports; shared chains are always complete (as Rule chains).
Tables generate(const proxy::ProxyState& state, const RulesConfig& config,
                const std::set<std::string>* only = nullptr);

// The same with the shared chains (shared_nat_chains' KUBE-SERVICES and KUBE-NODEPORTS,
// and every filter chain service ports add to) encoded and backed by `cache`. Without
// `only` every chain is generated and the cache rebuilt. With `only`, only the named
// service ports' rules are generated, and a shared chain is in the tables (in `encoded`)
// only when it changed: a caller syncs exactly the shared chains the tables want.
// `service_chains` false (full generations only): no per-service chain at all (a caller
// streams them with emit_service_chains).
Tables generate(const proxy::ProxyState& state, const RulesConfig& config, const std::set<std::string>* only,
                SharedChainCache& cache, bool service_chains = true);

// Every per-service nat chain of `state` (KUBE-SVC-/SVL-/EXT-/FW-/SEP-), encoded, emitted
// one service port at a time and forgotten: a full sync streams them into the table image
// instead of holding them all (iptables::StreamedChains). The same state and config emit
// the same bytes.
Status emit_service_chains(const proxy::ProxyState& state, const RulesConfig& config,
                           const iptables::ChainEmitter& emit);

// The nat chains a service port named `name` may own in a table, with any protocol: its
// KUBE-SVC-/SVL-/EXT-/FW- chains (named after it) and the KUBE-SEP- chains its SVC and
// SVL chains jump to, as `targets` (a chain's jump targets in that table) gives them.
// Names of chains the table does not hold are in it too. So a partial sync finds what a
// changed service port had without a list kept per service port (at 10,000 services
// with 10 endpoints those lists were ~9 MB).
std::set<std::string> chains_of(const std::string& name,
                                const std::function<std::vector<std::string>(const std::string&)>& targets);

// Nat chain names shared by all services (always compared in partial syncs).
const std::set<std::string>& shared_nat_chains();
const std::set<std::string>& shared_filter_chains();

}  // namespace knode::iptables_proxy
