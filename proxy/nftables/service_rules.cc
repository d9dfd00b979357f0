#include "nftables/service_rules.h"

#include <linux/netfilter.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "knode/dataplane/nftables/exprs.h"
#include "knode/fnv.h"
#include "nftables/chain_names.h"

namespace knode::nftables_proxy {
namespace nft = knode::nftables;
using nft::Datatype;
using nft::RuleBuilder;
using nft::Verdict;

namespace {

// Shared objects, with kube-proxy's names.
constexpr const char *kServices = "services", *kServiceIPs = "service-ips", *kServiceNodePorts = "service-nodeports",
                     *kNodePortIPs = "nodeport-ips", *kClusterIPs = "cluster-ips",
                     *kServiceEndpointsCheck = "service-endpoints-check",
                     *kNodePortEndpointsCheck = "nodeport-endpoints-check",
                     *kNoEndpointServices = "no-endpoint-services", *kNoEndpointNodePorts = "no-endpoint-nodeports",
                     *kRejectChain = "reject-chain", *kClusterIPsCheck = "cluster-ips-check",
                     *kFirewallIPs = "firewall-ips", *kFirewallCheck = "firewall-check",
                     *kMarkMasq = "mark-for-masquerade", *kMasquerading = "masquerading",
                     *kHairpin = "hairpin-connections", *kHairpinOwnerPrefix = "hairpin ";
constexpr std::string_view kShared = "";

nft::Chain regular(std::string name, std::string comment = "") {
  nft::Chain c;
  c.name = std::move(name);
  c.comment = std::move(comment);
  return c;
}

nft::Chain base(std::string name, const char* type, uint32_t hook, int32_t priority) {
  nft::Chain c;
  c.name = std::move(name);
  c.base = nft::BaseChain{type, hook, priority, NF_ACCEPT};
  return c;
}

const net::Cidr kLoopback = *net::Cidr::Parse("127.0.0.0/8");

// `meta l4proto . th dport` of node ports: on every local address but loopback, or on
// @nodeport-ips.
RuleBuilder node_port_match(const RulesConfig& c) {
  RuleBuilder r;
  if (c.node_ports_on_all_addresses) {
    r.fib_daddr_type_local().ip_daddr(kLoopback, /*negate=*/true);
  } else {
    r.ip_daddr_in_set(kNodePortIPs);
  }
  return r;
}

void describe_skeleton(nft::TableSink& sink, const RulesConfig& c) {
  nft::Table t;
  t.family = nft::Family::kIPv4;
  t.name = kTable;
  t.comment = "rules for kube-proxy";
  sink.table(t);

  // Sets and maps, in the order kube-proxy creates them.
  sink.set(nft::ipv4_addr_set(kClusterIPs, "Active ClusterIPs"), true, kShared);
  if (!c.node_ports_on_all_addresses) {
    sink.set(nft::ipv4_addr_set(kNodePortIPs, "IPs that accept NodePort traffic"), true, kShared);
  }
  const std::vector<Datatype> addr_proto_port = {Datatype::kIPv4Addr, Datatype::kInetProto, Datatype::kInetService};
  const std::vector<Datatype> proto_port = {Datatype::kInetProto, Datatype::kInetService};
  sink.set(nft::concat_verdict_map(kNoEndpointServices, addr_proto_port,
                                   "vmap to drop or reject packets to services with no endpoints"),
           true, kShared);
  sink.set(nft::concat_verdict_map(kNoEndpointNodePorts, proto_port,
                                   "vmap to drop or reject packets to service nodeports with no endpoints"),
           true, kShared);
  sink.set(nft::concat_verdict_map(kFirewallIPs, addr_proto_port,
                                   "destinations that are subject to LoadBalancerSourceRanges"),
           true, kShared);
  sink.set(nft::concat_verdict_map(kServiceIPs, addr_proto_port, "ClusterIP, ExternalIP and LoadBalancer IP traffic"),
           true, kShared);
  sink.set(nft::concat_verdict_map(kServiceNodePorts, proto_port, "NodePort traffic"), true, kShared);
  sink.set(nft::concat_set(kHairpin, {Datatype::kIPv4Addr, Datatype::kIPv4Addr, Datatype::kInetProto,
                                      Datatype::kInetService},
                           "service hairpin connections"),
           true, kShared);
  for (const auto& ip : c.node_port_ips) {
    if (!c.node_ports_on_all_addresses && !ip.is_loopback()) {
      sink.element(kNodePortIPs, nft::key_element(nft::ipv4_key(ip)), kShared);
    }
  }

  const uint32_t mark = c.masquerade_mark;
  const uint32_t ct_new = nft::kCtStateNew;
  // Base chains: filtering sees destinations before DNAT (LB source ranges) and after.
  sink.chain(base("filter-prerouting-pre-dnat", "filter", NF_INET_PRE_ROUTING, -110),
             {RuleBuilder().ct_state(ct_new).jump(kFirewallCheck).build()}, kShared);
  sink.chain(base("filter-output-pre-dnat", "filter", NF_INET_LOCAL_OUT, -110),
             {RuleBuilder().ct_state(ct_new).jump(kFirewallCheck).build()}, kShared);
  sink.chain(base("filter-input", "filter", NF_INET_LOCAL_IN, 0),
             {RuleBuilder().ct_state(ct_new).jump(kNodePortEndpointsCheck).build(),
              RuleBuilder().ct_state(ct_new).jump(kServiceEndpointsCheck).build()},
             kShared);
  sink.chain(base("filter-forward", "filter", NF_INET_FORWARD, 0),
             {RuleBuilder().ct_state(ct_new).jump(kServiceEndpointsCheck).build(),
              RuleBuilder().ct_state(ct_new).jump(kClusterIPsCheck).build()},
             kShared);
  sink.chain(base("filter-output", "filter", NF_INET_LOCAL_OUT, 0),
             {RuleBuilder().ct_state(ct_new).jump(kServiceEndpointsCheck).build(),
              RuleBuilder().ct_state(ct_new).jump(kClusterIPsCheck).build()},
             kShared);
  sink.chain(base("nat-prerouting", "nat", NF_INET_PRE_ROUTING, -100), {RuleBuilder().jump(kServices).build()},
             kShared);
  sink.chain(base("nat-output", "nat", NF_INET_LOCAL_OUT, -100), {RuleBuilder().jump(kServices).build()}, kShared);
  sink.chain(base("nat-postrouting", "nat", NF_INET_POST_ROUTING, 100), {RuleBuilder().jump(kMasquerading).build()},
             kShared);

  // The chains they jump to.
  sink.chain(regular(kNodePortEndpointsCheck), {node_port_match(c).vmap_proto_dport(kNoEndpointNodePorts).build()},
             kShared);
  sink.chain(regular(kServiceEndpointsCheck), {RuleBuilder().vmap_daddr_proto_dport(kNoEndpointServices).build()},
             kShared);
  sink.chain(regular(kFirewallCheck), {RuleBuilder().vmap_daddr_proto_dport(kFirewallIPs).build()}, kShared);
  sink.chain(regular(kServices),
             {RuleBuilder().vmap_daddr_proto_dport(kServiceIPs).build(),
              node_port_match(c).vmap_proto_dport(kServiceNodePorts).build()},
             kShared);
  // Marked packets, and a pod that reached itself through a service (it would not
  // recognise its own address as the peer).
  sink.chain(regular(kMasquerading),
             {RuleBuilder().mark_and_equals(mark, 0, /*negate=*/true).mark_set_xor(mark).masquerade(/*fully_random=*/true).build(),
              RuleBuilder().ct_status_dnat().saddr_daddr_proto_dport_in_set(kHairpin)
                  .masquerade(/*fully_random=*/true).build()},
             kShared);
  sink.chain(regular(kClusterIPsCheck),
             {RuleBuilder().ip_daddr_in_set(kClusterIPs).reject()
                  .comment("Reject traffic to invalid ports of ClusterIPs").build()},
             kShared);
  sink.chain(regular(kMarkMasq), {RuleBuilder().mark_set_or(mark).build()}, kShared);
  sink.chain(regular(kRejectChain, "helper for @no-endpoint-services / @no-endpoint-nodeports"),
             {RuleBuilder().reject().build()}, kShared);
}

nft::Bytes addr_proto_port_key(const net::IPAddress& ip, const proxy::ServicePort& sp, uint16_t port) {
  return nft::ipv4_key(ip) + nft::proto_key(net::protocol_number(sp.protocol)) + nft::port_key(port);
}

// Which policy chains a service port uses (see describe_service).
struct Policy {
  bool uses_cluster_chain = false, uses_local_chain = false;
  const std::vector<proxy::Endpoint>* local_eps = nullptr;
};

Policy policy_of(const proxy::ServicePort& sp) {
  Policy p;
  const bool has_internal = !sp.cluster_endpoints.empty();
  p.uses_cluster_chain = has_internal && (!sp.internal_policy_local || sp.has_external());
  p.local_eps = sp.external_policy_local ? &sp.local_endpoints : &sp.cluster_endpoints;
  p.uses_local_chain = (sp.internal_policy_local && has_internal) ||
                       (sp.external_policy_local && sp.has_external() && !sp.local_endpoints.empty());
  return p;
}

// The endpoints the policy chains pick from, each (ip, port) once.
std::vector<const proxy::Endpoint*> used_endpoints(const proxy::ServicePort& sp) {
  const Policy p = policy_of(sp);
  std::vector<const proxy::Endpoint*> out;
  std::set<std::pair<net::IPAddress, uint16_t>> seen;
  auto note = [&](const std::vector<proxy::Endpoint>& list) {
    for (const auto& ep : list) {
      if (seen.insert({ep.ip, ep.port}).second) out.push_back(&ep);
    }
  };
  if (p.uses_cluster_chain) note(sp.cluster_endpoints);
  if (p.uses_local_chain) note(*p.local_eps);
  return out;
}

nft::Bytes hairpin_key(const proxy::ServicePort& sp, const proxy::Endpoint& ep) {
  return nft::ipv4_key(ep.ip) + nft::ipv4_key(ep.ip) + nft::proto_key(net::protocol_number(sp.protocol)) +
         nft::port_key(ep.port);
}


constexpr std::string_view kShardOwnerPrefix = "endpoints ";

// Which of a service port's policy chains read slots (as describe_service has them).
std::pair<bool, bool> slot_chains(const proxy::ServicePort& sp, const RulesConfig& c) {
  if (c.endpoint_pick != RulesConfig::EndpointPick::kSlots || sp.affinity_timeout_seconds > 0) return {false, false};
  const Policy p = policy_of(sp);
  return {p.uses_cluster_chain, p.uses_local_chain};
}

// The slot layout of some shards: each member chain's offset, by service port, and each
// shard's members in the order of their slots.
struct SlotMember {
  uint32_t index = 0;    // its slots: [index * M, (index + 1) * M)
  uint32_t service = 0;  // in state.services
  bool local = false;    // local- (else service-)
};
struct SlotPlan {
  std::vector<PolicySlots> slots;                       // by service port; empty unless kSlots
  std::map<uint32_t, std::vector<SlotMember>> shards;   // the shards planned that have members
};

SlotPlan plan_slots(const proxy::ProxyState& state, const RulesConfig& c, const std::set<uint32_t>* only) {
  SlotPlan plan;
  if (c.endpoint_pick != RulesConfig::EndpointPick::kSlots) return plan;
  plan.slots.resize(state.services.size());
  const uint32_t shards = std::max<uint32_t>(c.endpoint_shards, 1);
  struct Want {
    uint32_t pref, service;
    bool local;
  };
  std::map<uint32_t, std::vector<Want>> wants;
  for (uint32_t i = 0; i < state.services.size(); ++i) {
    const auto& sp = state.services[i];
    const uint64_t h = fnv1a64(sp.name);  // the shard, and the preferred slot index
    const uint32_t shard = static_cast<uint32_t>(h % shards);
    if (only && !only->count(shard)) continue;
    const auto [cluster, local] = slot_chains(sp, c);
    if (!cluster && !local) continue;
    const uint32_t pref = static_cast<uint32_t>((h / shards) % kSlotIndexes);
    auto& w = wants[shard];
    if (cluster) w.push_back({pref, i, false});
    if (local) w.push_back({pref, i, true});
  }
  for (auto& [shard, w] : wants) {
    // In the order of the preferred indexes (then names), each takes the first free one
    // from its own: the same members give the same layout, whatever their order in state.
    std::sort(w.begin(), w.end(), [&](const Want& a, const Want& b) {
      if (a.pref != b.pref) return a.pref < b.pref;
      const int n = state.services[a.service].name.compare(state.services[b.service].name);
      return n != 0 ? n < 0 : a.local < b.local;
    });
    std::set<uint32_t> used;
    auto& members = plan.shards[shard];
    for (const Want& want : w) {
      if (used.size() == kSlotIndexes) break;  // full: the rest pick by rules (describe_service)
      uint32_t index = want.pref;
      while (used.count(index)) index = index + 1 == kSlotIndexes ? 0 : index + 1;
      used.insert(index);
      members.push_back({index, want.service, want.local});
      PolicySlots& ps = plan.slots[want.service];
      (want.local ? ps.local : ps.cluster) = index * nft::kSlots;
    }
    std::sort(members.begin(), members.end(), [](const SlotMember& a, const SlotMember& b) { return a.index < b.index; });
  }
  return plan;
}

// The planned shard maps, each whole: every member's endpoints in its slots.
void describe_shards(nft::TableSink& sink, const proxy::ProxyState& state, const SlotPlan& plan) {
  std::vector<nft::Element> elements;
  std::vector<std::pair<net::IPAddress, uint16_t>> targets;
  for (const auto& [shard, members] : plan.shards) {
    elements.clear();
    for (const SlotMember& m : members) {
      const auto& sp = state.services[m.service];
      const std::vector<proxy::Endpoint>& eps = m.local ? *policy_of(sp).local_eps : sp.cluster_endpoints;
      targets.clear();
      for (const auto& ep : eps) targets.emplace_back(ep.ip, ep.port);
      nft::append_numgen_slot_elements(targets, nft::kSlots, m.index * nft::kSlots, &elements);
    }
    sink.set_with_elements(nft::numgen_slot_map(endpoint_shard_map(shard), nft::kSlots), elements,
                           endpoint_shard_owner(shard));
  }
}

// The shards a set of owners names: a shard owner's own, a service port's (none unless
// kSlots).
std::set<uint32_t> shards_named(const std::set<std::string>& owners, const RulesConfig& config) {
  std::set<uint32_t> out;
  if (config.endpoint_pick != RulesConfig::EndpointPick::kSlots) return out;
  for (const auto& owner : owners) {
    if (owner.starts_with(kShardOwnerPrefix)) {
      out.insert(static_cast<uint32_t>(std::strtoul(owner.c_str() + kShardOwnerPrefix.size(), nullptr, 10)));
    } else if (!owner.starts_with(kHairpinOwnerPrefix)) {
      out.insert(endpoint_shard(owner, config));
    }
  }
  return out;
}

}  // namespace

std::string hairpin_owner(const proxy::ServicePort& sp, const proxy::Endpoint& ep) {
  return std::string(kHairpinOwnerPrefix) + net::to_lower_string(sp.protocol) + " " + ep.str();
}

void hairpin_owners(const proxy::ServicePort& sp, std::set<std::string>* out) {
  for (const auto* ep : used_endpoints(sp)) {
    if (ep->local) out->insert(hairpin_owner(sp, *ep));
  }
}

void describe_service(nft::TableSink& sink, const proxy::ServicePort& sp, const RulesConfig& c,
                      const PolicySlots& slots) {
  const std::string owner = sp.name;
  const std::string base_name = service_chain_base(sp);
  const std::string cluster_chain = "service-" + base_name, local_chain = "local-" + base_name,
                    external_chain = "external-" + base_name, fw_chain = "firewall-" + base_name;
  const bool itp_local = sp.internal_policy_local, etp_local = sp.external_policy_local;
  const bool external = sp.has_external();
  const bool has_endpoints = sp.has_any_endpoint;
  const bool has_internal = !sp.cluster_endpoints.empty();
  const bool has_external_eps = !sp.external_endpoints().empty();
  const uint8_t proto = net::protocol_number(sp.protocol);

  // The policy chains: "service-" holds the cluster-policy endpoints (also the target of
  // short-circuited pod and node traffic when external traffic is Local), "local-" the
  // local ones.
  const Policy policy = policy_of(sp);
  const bool uses_cluster_chain = policy.uses_cluster_chain, uses_local_chain = policy.uses_local_chain;
  const std::vector<proxy::Endpoint>& local_eps = *policy.local_eps;
  const std::string& internal_chain = itp_local ? local_chain : cluster_chain;
  const std::string& external_policy_chain = etp_local ? local_chain : cluster_chain;
  const bool uses_external_chain = has_endpoints && external;
  const bool uses_fw_chain = !sp.load_balancer_ips.empty() && !sp.load_balancer_source_ranges.empty();

  // Verdicts for destinations without endpoints: reject when the service has none at
  // all, drop when only a Local policy leaves none.
  const Verdict reject = Verdict::Goto(kRejectChain);
  const Verdict internal_verdict = has_endpoints ? Verdict::Drop() : reject;
  const Verdict external_verdict = has_endpoints ? Verdict::Drop() : reject;

  // The endpoints the policy chains use, each once.
  const std::vector<const proxy::Endpoint*> endpoints = used_endpoints(sp);
  std::map<std::pair<net::IPAddress, uint16_t>, std::string> endpoint_base;
  for (const auto* ep : endpoints) endpoint_base[{ep->ip, ep->port}] = endpoint_chain_base(sp, *ep);
  auto base_of = [&](const proxy::Endpoint& ep) { return endpoint_base.at({ep.ip, ep.port}); };
  // Only ClientIP affinity needs a chain per endpoint (to record the client in its set).
  const bool affinity = sp.affinity_timeout_seconds > 0;

  if (affinity) {
    for (const auto* ep : endpoints) {
      sink.set(nft::dynamic_ipv4_addr_set("affinity-" + base_of(*ep), sp.affinity_timeout_seconds), false, owner);
    }
  }

  auto endpoint_rules = [&](std::vector<nft::Rule>& rules, const std::vector<proxy::Endpoint>& eps,
                            const std::string& chain) {
    if (affinity) {
      for (const auto& ep : eps) {
        rules.push_back(RuleBuilder().ip_saddr_in_set("affinity-" + base_of(ep)).goto_("endpoint-" + base_of(ep)).build());
      }
      std::vector<Verdict> targets;
      for (const auto& ep : eps) targets.push_back(Verdict::Goto("endpoint-" + base_of(ep)));
      rules.push_back(RuleBuilder().numgen_random_vmap(targets).build());
      return;
    }
    const uint32_t offset = chain == cluster_chain ? slots.cluster : slots.local;
    // (kSlots without an offset: a shard with no slot index left, past 5,959 chains.)
    if (c.endpoint_pick == RulesConfig::EndpointPick::kCascade ||
        (c.endpoint_pick == RulesConfig::EndpointPick::kSlots && offset == PolicySlots::kNone)) {
      for (size_t i = 0; i < eps.size(); ++i) {
        RuleBuilder r;
        if (i + 1 < eps.size()) r.numgen_random_equals(static_cast<uint32_t>(eps.size() - i), 0);
        rules.push_back(r.meta_l4proto(proto).dnat_to(eps[i].ip, eps[i].port).build());
      }
      return;
    }
    std::vector<std::pair<net::IPAddress, uint16_t>> targets;
    for (const auto& ep : eps) targets.emplace_back(ep.ip, ep.port);
    if (c.endpoint_pick == RulesConfig::EndpointPick::kMap) {
      if (eps.size() == 1) {
        rules.push_back(RuleBuilder().meta_l4proto(proto).dnat_to(eps[0].ip, eps[0].port).build());
      } else {
        rules.push_back(RuleBuilder().meta_l4proto(proto).dnat_numgen_random_map(targets).build());
      }
      return;
    }
    // The endpoints share the chain's slots in its shard's map (described with the shard):
    // the rule stays the same whatever they are, so an endpoint coming or going changes
    // the map's elements only.
    rules.push_back(RuleBuilder()
                        .meta_l4proto(proto)
                        .dnat_numgen_random_slot_map(endpoint_shard_map(endpoint_shard(sp.name, c)), nft::kSlots, offset)
                        .build());
  };
  auto masquerade_rule = [&](std::vector<nft::Rule>& rules) {
    if (c.masquerade_all) {
      rules.push_back(RuleBuilder().ip_daddr(sp.cluster_ip).jump(kMarkMasq).build());
    } else if (!c.cluster_cidrs.empty()) {
      // From outside every cluster CIDR (a compare each: no set to create per service).
      RuleBuilder r;
      r.ip_daddr(sp.cluster_ip);
      for (const auto& cidr : c.cluster_cidrs) r.ip_saddr(cidr, /*negate=*/true);
      rules.push_back(r.jump(kMarkMasq).build());
    }
  };

  if (uses_cluster_chain) {
    std::vector<nft::Rule> rules;
    if (internal_chain == cluster_chain) masquerade_rule(rules);
    endpoint_rules(rules, sp.cluster_endpoints, cluster_chain);
    sink.chain(regular(cluster_chain), rules, owner);
  }
  if (uses_local_chain) {
    std::vector<nft::Rule> rules;
    if (internal_chain == local_chain && has_internal) masquerade_rule(rules);
    endpoint_rules(rules, local_eps, local_chain);
    sink.chain(regular(local_chain), rules, owner);
  }
  if (uses_external_chain) {
    std::vector<nft::Rule> rules;
    if (!etp_local) {
      // Endpoints may be on other nodes: masquerade, so replies come back through us.
      rules.push_back(RuleBuilder().jump(kMarkMasq).build());
    } else if (uses_cluster_chain) {
      // Pods and the node itself are not outside: they use every endpoint, as if they had
      // gone out to the load balancer and come back.
      for (const auto& cidr : c.cluster_cidrs) {
        rules.push_back(RuleBuilder().ip_saddr(cidr).goto_(cluster_chain).comment("short-circuit pod traffic").build());
      }
      rules.push_back(RuleBuilder().fib_saddr_type_local().jump(kMarkMasq).comment("masquerade local traffic").build());
      rules.push_back(RuleBuilder().fib_saddr_type_local().goto_(cluster_chain)
                          .comment("short-circuit local traffic").build());
    }
    if (has_external_eps) rules.push_back(RuleBuilder().goto_(external_policy_chain).build());
    sink.chain(regular(external_chain), rules, owner);
  }
  for (const auto* ep : affinity ? endpoints : std::vector<const proxy::Endpoint*>{}) {
    sink.chain(regular("endpoint-" + base_of(*ep)),
               {RuleBuilder().update_set_with_saddr("affinity-" + base_of(*ep)).build(),
                RuleBuilder().meta_l4proto(proto).dnat_to(ep->ip, ep->port).build()},
               owner);
  }
  if (uses_fw_chain) {
    std::vector<net::Cidr> allowed = sp.load_balancer_source_ranges;
    bool from_node = false;
    for (const auto& range : sp.load_balancer_source_ranges) {
      for (const auto& ip : c.node_ips) from_node |= range.contains(ip);
    }
    // The node reaching its own LB IP often comes from that IP: let it in too.
    if (from_node) {
      for (const auto& ip : sp.load_balancer_ips) allowed.push_back(net::Cidr(ip, 32));
    }
    sink.chain(regular(fw_chain), {RuleBuilder().ip_saddr_in(allowed, /*negate=*/true).drop().build()}, owner);
  }

  // Map elements.
  sink.element(kClusterIPs, nft::key_element(nft::ipv4_key(sp.cluster_ip)), owner);
  if (has_internal) {
    sink.element(kServiceIPs, nft::verdict_element(addr_proto_port_key(sp.cluster_ip, sp, sp.port),
                                                   Verdict::Goto(internal_chain)),
                 owner);
  } else {
    sink.element(kNoEndpointServices,
                 nft::verdict_element(addr_proto_port_key(sp.cluster_ip, sp, sp.port), internal_verdict, sp.name),
                 owner);
  }
  auto external_ip = [&](const net::IPAddress& ip, bool firewall) {
    const nft::Bytes key = addr_proto_port_key(ip, sp, sp.port);
    if (has_endpoints) sink.element(kServiceIPs, nft::verdict_element(key, Verdict::Goto(external_chain)), owner);
    if (firewall) sink.element(kFirewallIPs, nft::verdict_element(key, Verdict::Goto(fw_chain)), owner);
    if (!has_external_eps) sink.element(kNoEndpointServices, nft::verdict_element(key, external_verdict, sp.name), owner);
  };
  for (const auto& ip : sp.external_ips) external_ip(ip, false);
  for (const auto& ip : sp.load_balancer_ips) external_ip(ip, uses_fw_chain);
  if (sp.node_port != 0) {
    const nft::Bytes key = nft::proto_key(proto) + nft::port_key(sp.node_port);
    if (has_endpoints) sink.element(kServiceNodePorts, nft::verdict_element(key, Verdict::Goto(external_chain)), owner);
    if (!has_external_eps) {
      sink.element(kNoEndpointNodePorts, nft::verdict_element(key, external_verdict, sp.name), owner);
    }
  }
}

void describe(nft::TableSink& sink, const proxy::ProxyState& state, const RulesConfig& config,
              const std::set<std::string>* only) {
  if (!only) describe_skeleton(sink, config);
  // The shards described: every one, or those `only` names.
  const std::set<uint32_t> shards = only ? shards_named(*only, config) : std::set<uint32_t>{};
  const SlotPlan plan = plan_slots(state, config, only ? &shards : nullptr);
  describe_shards(sink, state, plan);
  // With `only`, also every member of a shard described: its slots may have moved.
  for (size_t i = 0; i < state.services.size(); ++i) {
    const auto& sp = state.services[i];
    const PolicySlots slots = plan.slots.empty() ? PolicySlots{} : plan.slots[i];
    const bool member = slots.cluster != PolicySlots::kNone || slots.local != PolicySlots::kNone;
    if (only && !member && !only->count(sp.name)) continue;
    describe_service(sink, sp, config, slots);
  }
  // Hairpin elements, each once, whichever service port wants it. (A partial sync that
  // names no hairpin owner has none to describe.)
  if (only) {
    auto it = only->lower_bound(kHairpinOwnerPrefix);
    if (it == only->end() || !it->starts_with(kHairpinOwnerPrefix)) return;
  }
  std::set<std::string> hairpins;
  auto any_local = [](const std::vector<proxy::Endpoint>& eps) {
    return std::any_of(eps.begin(), eps.end(), [](const proxy::Endpoint& ep) { return ep.local; });
  };
  for (const auto& sp : state.services) {
    if (!any_local(sp.cluster_endpoints) && !any_local(sp.local_endpoints)) continue;
    for (const auto* ep : used_endpoints(sp)) {
      if (!ep->local) continue;
      std::string owner = hairpin_owner(sp, *ep);
      if (only && !only->count(owner)) continue;
      if (!hairpins.insert(owner).second) continue;
      sink.element(kHairpin, nft::key_element(hairpin_key(sp, *ep)), owner);
    }
  }
}

uint32_t endpoint_shard(std::string_view service_port, const RulesConfig& config) {
  return static_cast<uint32_t>(fnv1a64(service_port) % std::max<uint32_t>(config.endpoint_shards, 1));
}

std::string endpoint_shard_map(uint32_t shard) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "endpoints-%03x", shard);
  return buf;
}

std::string endpoint_shard_owner(uint32_t shard) { return std::string(kShardOwnerPrefix) + std::to_string(shard); }

void add_endpoint_shard_owners(const RulesConfig& config, std::set<std::string>* scope) {
  for (uint32_t shard : shards_named(*scope, config)) scope->insert(endpoint_shard_owner(shard));
}

nft::TableContent generate(const proxy::ProxyState& state, const RulesConfig& config) {
  nft::ContentSink sink;
  describe(sink, state, config);
  return std::move(sink.content);
}

}  // namespace knode::nftables_proxy
