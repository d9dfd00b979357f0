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

#include <map>
#include <set>
#include <string>
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
};

// Empty tables with the ownership (KUBE-* chains) and the jump rules set.
Tables skeleton();

// The full tables for `state`. With `only`, per-service chains are generated only for
// the named service ports; shared chains are always complete.
Tables generate(const proxy::ProxyState& state, const RulesConfig& config,
                const std::set<std::string>* only = nullptr);

// Nat chain names shared by all services (always compared in partial syncs).
const std::set<std::string>& shared_nat_chains();
const std::set<std::string>& shared_filter_chains();

}  // namespace knode::iptables_proxy
