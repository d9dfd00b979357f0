// What IPVS mode needs besides the IPVS table, as kube-proxy's IPVS mode has it: ip sets
// listing the service addresses, and the few iptables rules that match on them.
//
//   nat    PREROUTING/OUTPUT -> KUBE-SERVICES: mark for masquerade what comes from
//          outside the cluster CIDR to a cluster IP, external IP or LB IP; accept
//          service traffic (IPVS DNATs it at LOCAL_IN); local destinations -> KUBE-NODE-PORT
//          marks node-port traffic (not for externalTrafficPolicy=Local).
//          POSTROUTING -> KUBE-POSTROUTING: masquerade hairpin traffic (KUBE-LOOP-BACK: a
//          pod reaching itself through a service) and marked traffic.
//   filter INPUT -> KUBE-IPVS-FILTER: reject new connections to a VIP on a port no service
//          has; KUBE-NODE-PORT accepts health-check node ports; KUBE-PROXY-FIREWALL and
//          KUBE-SOURCE-RANGES-FIREWALL drop LB traffic loadBalancerSourceRanges do not
//          allow; OUTPUT -> KUBE-IPVS-OUT-FILTER keeps the node from reaching such LB IPs;
//          FORWARD -> KUBE-FORWARD accepts marked and established traffic.
// Pure functions of the model; companion_sync.h applies them.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "knode/dataplane/iptables/reconciler.h"
#include "ipvs/kube_sets.h"
#include "knode/dataplane/ipset.h"
#include "knode/proxy/model.h"

namespace knode::ipvs_proxy {

struct CompanionConfig {
  std::vector<net::Cidr> cluster_cidrs;  // the first IPv4 one tells pods from the outside
  bool masquerade_all = false;
  uint32_t masquerade_mark = 0x4000;
  bool random_fully = true;
  // Addresses NodePorts listen on (SCTP node ports are listed per address).
  std::vector<net::IPAddress> node_port_addresses;
  // Every address of the node (not kube-ipvs0's): external and LB IPs among them are not
  // bound to kube-ipvs0.
  std::set<net::IPAddress> node_addresses;
  // The node's own IPs (kube-proxy's node IP): an LB source range holding one lets the
  // node reach that LB IP. Empty: unknown, and the node is kept out (as kube-proxy does).
  std::set<net::IPAddress> node_ips;
};

using SetContents = std::map<std::string, std::set<ipset::Entry>>;

// The sets IPVS mode keeps (IPv4), as kube-proxy names and types them.
std::vector<ipset::SetSpec> companion_sets();

// What each set should hold for `state`; every set of companion_sets() is a key.
SetContents desired_sets(const proxy::ProxyState& state, const CompanionConfig& config);

// An LB IP:port whose source ranges do not let the node in (KUBE-IPVS-OUT-FILTER).
struct LbNoNodeAccess {
  net::IPAddress ip;
  net::Protocol protocol = net::Protocol::kTCP;
  uint16_t port = 0;
  auto operator<=>(const LbNoNodeAccess&) const = default;
};
std::set<LbNoNodeAccess> lb_no_node_access(const proxy::ProxyState& state, const CompanionConfig& config);

// One service port's share of the above (what incremental syncs add and take away).
struct Contribution {
  SetContents entries;  // only the sets it puts something in
  std::set<LbNoNodeAccess> no_node_access;
  bool operator==(const Contribution&) const = default;
};
Contribution contribution_of(const proxy::ServicePort& sp, const CompanionConfig& config);

struct CompanionTables {
  iptables::DesiredTable nat;
  iptables::DesiredTable filter;
};

// The iptables rules, given which sets have entries (rules for an empty set are left
// out, as kube-proxy does). Set matches carry names only: resolve their indexes
// (iptables::resolve_set_indexes) once the sets exist.
CompanionTables companion_tables(const std::set<std::string>& nonempty_sets,
                                 const std::set<LbNoNodeAccess>& no_node_access, const CompanionConfig& config);

// Both tables with ownership and jumps, no rules (for cleanup).
CompanionTables companion_skeleton();

}  // namespace knode::ipvs_proxy
