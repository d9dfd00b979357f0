#include "iptables/service_rules.h"

#include <algorithm>

#include "iptables/chain_names.h"
#include "knode/dataplane/iptables/rule_builder.h"
#include "kube_rules.h"

namespace knode::iptables_proxy {
namespace ipt = knode::iptables;
using ipt::Rule;
using proxy::jump_rule;
using namespace proxy::chains;

namespace {

// The chains only iptables mode has.
constexpr const char *kNodePorts = "KUBE-NODEPORTS", *kExternalServices = "KUBE-EXTERNAL-SERVICES",
                     *kFirewall = "KUBE-FIREWALL";

using R = ipt::RuleBuilder;

struct Names {
  std::string svc, svl, ext, fw;
};

Names names_of(const proxy::ServicePort& sp) {
  const char* proto = net::to_lower_string(sp.protocol);
  return Names{service_chain("KUBE-SVC-", sp.name, proto), service_chain("KUBE-SVL-", sp.name, proto),
               service_chain("KUBE-EXT-", sp.name, proto), service_chain("KUBE-FW-", sp.name, proto)};
}

std::string sep_name(const proxy::ServicePort& sp, const proxy::Endpoint& b) {
  return endpoint_chain(sp.name, net::to_lower_string(sp.protocol), b.str());
}

ipt::Recent recent(const std::string& name, bool set, uint32_t seconds) {
  ipt::Recent r;
  r.name = name;
  r.mode = set ? ipt::Recent::Mode::kSet : ipt::Recent::Mode::kRcheck;
  r.seconds = set ? 0 : seconds;
  r.reap = !set;
  return r;
}

// KUBE-SVC-/KUBE-SVL- body: affinity checks, then random choice over endpoints.
void endpoint_choice(std::vector<Rule>& chain, const proxy::ServicePort& sp,
                     const std::vector<proxy::Endpoint>& backends, const std::vector<std::string>& seps,
                     bool large) {
  size_t n = backends.size();
  chain.reserve(chain.size() + n * (sp.affinity_timeout_seconds > 0 ? 2 : 1));
  auto commented = [&](size_t i) {
    R r;
    if (!large) r.comment(sp.name + " -> " + backends[i].str());
    return r;
  };
  if (sp.affinity_timeout_seconds > 0) {
    for (size_t i = 0; i < n; ++i) {
      chain.push_back(commented(i).match(recent(seps[i], false, sp.affinity_timeout_seconds)).jump(seps[i]));
    }
  }
  for (size_t i = 0; i < n; ++i) {
    R r = commented(i);
    if (i + 1 < n) r.match(ipt::Statistic::Random(1.0 / static_cast<double>(n - i)));
    chain.push_back(r.jump(seps[i]));
  }
}

std::vector<std::string> sep_names(const proxy::ServicePort& sp, const std::vector<proxy::Endpoint>& backends) {
  std::vector<std::string> out;
  out.reserve(backends.size());
  for (const auto& b : backends) out.push_back(sep_name(sp, b));
  return out;
}

// Which table and chain each shared part is.
struct SharedChainName {
  bool nat;
  const char* chain;
};
constexpr std::array<SharedChainName, kSharedParts> kSharedChainNames = {{
    {true, kServices},
    {true, kNodePorts},
    {false, kServices},
    {false, kExternalServices},
    {false, kProxyFirewall},
    {false, kNodePorts},
}};

class Generator {
 public:
  Generator(const RulesConfig& config, Tables& t) : c_(config), t_(t) {}

  // Generates `sp`'s shared rules into `out` (encoded) instead of the tables' chains.
  void service_into(const proxy::ServicePort& sp, bool chains, SharedRules& out) {
    for (auto& p : parts_) p.clear();
    encoding_ = true;
    service(sp, chains);
    encoding_ = false;
    out.bytes.clear();
    size_t total = 0;
    for (const auto& p : parts_) total += p.size();
    out.bytes.reserve(total);
    for (size_t i = 0; i < kSharedParts; ++i) {
      out.bytes += parts_[i];
      out.end[i] = static_cast<uint32_t>(out.bytes.size());
      out.rules[i] = part_rules_[i];
      part_rules_[i] = 0;
    }
  }

  void service(const proxy::ServicePort& sp, bool chains) {
    Names n = names_of(sp);
    auto& nat = t_.nat.chains;
    const bool has_cluster = !sp.cluster_endpoints.empty();
    const bool has_external = !sp.external_endpoints().empty();
    const std::string cip = sp.name + " cluster IP";
    // Missing cluster endpoints: reject (none at all) or drop (only local ones missing).
    auto filter_target = [&](bool has) -> ipt::Target {
      if (has) return ipt::Verdict::kAccept;
      if (sp.has_any_endpoint) return ipt::Verdict::kDrop;
      return ipt::Reject{};
    };
    const std::string no_eps =
        sp.name + (sp.has_any_endpoint ? " has no local endpoints" : " has no endpoints");

    if (has_cluster) {
      add(kNatServicesPart,
          R().dst_host(sp.cluster_ip).proto(sp.protocol).comment(cip).dport(sp.port).jump(n.svc));
    } else {
      add(kFilterServicesPart, R().dst_host(sp.cluster_ip).proto(sp.protocol).comment(no_eps)
                                      .dport(sp.port).to(filter_target(false)));
    }

    // External destinations all enter through KUBE-EXT- (or KUBE-FW- for source ranges).
    bool uses_ext = sp.has_external() && has_external;
    bool uses_fw = uses_ext && !sp.load_balancer_source_ranges.empty();
    for (const auto& ip : sp.external_ips) {
      if (uses_ext) {
        add(kNatServicesPart, R().dst_host(ip).proto(sp.protocol).comment(sp.name + " external IP")
                                     .dport(sp.port).jump(n.ext));
      } else {
        add(kFilterExternalPart, R().dst_host(ip).proto(sp.protocol).comment(no_eps)
                                                .dport(sp.port).to(filter_target(false)));
      }
    }
    for (const auto& ip : sp.load_balancer_ips) {
      if (uses_ext) {
        add(kNatServicesPart, R().dst_host(ip).proto(sp.protocol).comment(sp.name + " loadbalancer IP")
                                     .dport(sp.port).jump(uses_fw ? n.fw : n.ext));
        if (uses_fw) {
          add(kFilterFirewallPart,
              R().dst_host(ip).proto(sp.protocol)
                  .comment(sp.name + " traffic not accepted by " + n.fw).dport(sp.port)
                  .to(ipt::Verdict::kDrop));
        }
      } else {
        add(kFilterExternalPart, R().dst_host(ip).proto(sp.protocol).comment(no_eps)
                                                .dport(sp.port).to(filter_target(false)));
      }
    }
    if (sp.node_port != 0) {
      if (uses_ext) {
        add(kNatNodePortsPart, R().proto(sp.protocol).comment(sp.name).dport(sp.node_port).jump(n.ext));
      } else {
        add(kFilterExternalPart, R().proto(sp.protocol).comment(no_eps).dst_type(ipt::kAddrLocal)
                                                .dport(sp.node_port).to(filter_target(false)));
      }
    }
    if (sp.health_check_node_port != 0) {
      add(kFilterNodePortsPart, R().proto(ipt::Proto::kTCP)
                                       .comment(sp.name + " health check node port")
                                       .dport(sp.health_check_node_port).to(ipt::Verdict::kAccept));
    }
    if (!chains) return;

    std::vector<std::string>& owned = t_.service_chains[sp.name];
    const std::vector<std::string> cluster_seps = sep_names(sp, sp.cluster_endpoints);
    if (has_cluster) {
      auto& svc = nat[n.svc];
      owned.push_back(n.svc);
      if (c_.masquerade_all) {
        svc.push_back(R().dst_host(sp.cluster_ip).proto(sp.protocol).comment(cip).dport(sp.port).jump(kMarkMasq));
      } else {
        for (const auto& cidr : c_.cluster_cidrs) {
          svc.push_back(R().src(cidr, true).dst_host(sp.cluster_ip).proto(sp.protocol).comment(cip)
                            .dport(sp.port).jump(kMarkMasq));
        }
      }
      endpoint_choice(svc, sp, sp.cluster_endpoints, cluster_seps, c_.large_cluster);
    }
    if (uses_ext) {
      auto& ext = nat[n.ext];
      owned.push_back(n.ext);
      if (!sp.external_policy_local) {
        ext.push_back(R().comment("masquerade traffic for " + sp.name + " external destinations").jump(kMarkMasq));
        ext.push_back(R().jump(n.svc));
      } else {
        // Pods and the node itself may use any endpoint; outside traffic only local ones,
        // keeping its source address.
        for (const auto& cidr : c_.cluster_cidrs) {
          ext.push_back(R().src(cidr).comment("pod traffic for " + sp.name + " external destinations").jump(n.svc));
        }
        ext.push_back(R().comment("masquerade LOCAL traffic for " + sp.name + " external destinations")
                          .src_type(ipt::kAddrLocal).jump(kMarkMasq));
        ext.push_back(R().comment("route LOCAL traffic for " + sp.name + " external destinations")
                          .src_type(ipt::kAddrLocal).jump(n.svc));
        ext.push_back(R().jump(n.svl));
        auto& svl = nat[n.svl];
        owned.push_back(n.svl);
        endpoint_choice(svl, sp, sp.local_endpoints, sep_names(sp, sp.local_endpoints), c_.large_cluster);
      }
      if (uses_fw) {
        auto& fw = nat[n.fw];
        owned.push_back(n.fw);
        for (const auto& range : sp.load_balancer_source_ranges) {
          fw.push_back(R().src(range).comment(sp.name + " loadbalancer IP").jump(n.ext));
        }
        // Anything else falls through undNATed and KUBE-PROXY-FIREWALL drops it.
      }
    }
    // Endpoint chains: every endpoint any chain above can pick.
    std::set<std::string> seps;
    auto add_sep = [&](const proxy::Endpoint& b, const std::string& name) {
      if (!seps.insert(name).second) return;
      owned.push_back(name);
      auto& sep = nat[name];
      R hairpin;
      hairpin.src_host(b.ip);
      if (!c_.large_cluster) hairpin.comment(sp.name);
      sep.push_back(hairpin.jump(kMarkMasq));
      R dnat;
      dnat.proto(sp.protocol);
      if (!c_.large_cluster) dnat.comment(sp.name);
      if (sp.affinity_timeout_seconds > 0) dnat.match(recent(name, true, 0));
      dnat.proto_match();
      ipt::Dnat to;
      to.ip = b.ip;
      to.ports = ipt::PortRange::One(b.port);
      sep.push_back(dnat.to(to));
    };
    if (has_cluster) {
      for (size_t i = 0; i < sp.cluster_endpoints.size(); ++i) add_sep(sp.cluster_endpoints[i], cluster_seps[i]);
    }
    if (uses_ext && sp.external_policy_local) {
      for (const auto& b : sp.local_endpoints) add_sep(b, sep_name(sp, b));
    }
    if (c_.encode_service_chains) encode(owned);
  }

  // A rule of a shared chain: into the tables' Rule chain, or encoded into this service
  // port's part.
  void add(SharedPart p, Rule r) {
    if (!encoding_) {
      const SharedChainName& where = kSharedChainNames[p];
      (where.nat ? t_.nat.chains : t_.filter.chains)[where.chain].push_back(std::move(r));
      return;
    }
    if (Status s = r.validate(); !s) {
      if (t_.error.ok()) t_.error = s.Wrap(std::string("chain ") + kSharedChainNames[p].chain);
      return;
    }
    r.encode_to(parts_[p]);
    ++part_rules_[p];
  }

  // Turns this service's chains into bytes at once, so a table of 10,000 services never
  // holds all its rules as Rule values. A chain with an invalid rule stays a Rule chain:
  // the reconciler reports it.
  void encode(const std::vector<std::string>& names) {
    auto& nat = t_.nat.chains;
    for (const auto& name : names) {
      auto it = nat.find(name);
      if (it == nat.end()) continue;
      if (!std::all_of(it->second.begin(), it->second.end(), [](const Rule& r) { return r.validate().ok(); })) {
        continue;
      }
      // Encoded into a reused buffer, then copied at its exact size: a string grown by
      // appends keeps up to half its capacity unused, tens of MB over 110,000 chains.
      scratch_.clear();
      for (const Rule& r : it->second) r.encode_to(scratch_);
      ipt::EncodedChain& e = t_.nat.encoded[name];
      e.bytes.assign(scratch_);
      e.rules = static_cast<uint32_t>(it->second.size());
      nat.erase(it);
    }
  }

  void finish() {
    auto& nat = t_.nat.chains;
    // KUBE-NODEPORTS must be the last rule of KUBE-SERVICES.
    if (c_.node_port_addresses.empty()) {
      nat[kServices].push_back(
          R().comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain")
              .dst_type(ipt::kAddrLocal).jump(kNodePorts));
    } else {
      for (const auto& cidr : c_.node_port_addresses) {
        nat[kServices].push_back(
            R().dst(cidr).comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain")
                .dst_type(ipt::kAddrLocal).jump(kNodePorts));
      }
    }
  }

 private:
  const RulesConfig& c_;
  Tables& t_;
  std::string scratch_;
  bool encoding_ = false;
  std::array<std::string, kSharedParts> parts_;
  std::array<uint32_t, kSharedParts> part_rules_{};
};

void static_chains(Tables& t, const RulesConfig& c) {
  auto& nat = t.nat.chains;
  auto& filter = t.filter.chains;
  nat[kMarkMasq] = proxy::mark_masq_chain(c.masquerade_mark);
  proxy::append_masquerade(nat[kPostrouting], c.masquerade_mark, c.random_fully);
  filter[kForward] = {R().ctstate(ipt::kCtInvalid).to(ipt::Verdict::kDrop)};
  proxy::append_forward_accepts(filter[kForward], c.masquerade_mark);
  std::vector<Rule> fw;
  if (c.localhost_node_ports) {
    // route_localnet lets NodePorts answer on 127.0.0.1; never let outside traffic in that way.
    R r;
    r.src(*net::Cidr::Parse("127.0.0.0/8"), true).dst(*net::Cidr::Parse("127.0.0.0/8"));
    r.comment("block incoming localnet connections");
    r.ctstate(ipt::kCtRelated | ipt::kCtEstablished | ipt::kCtDnat, true);
    fw.push_back(r.to(ipt::Verdict::kDrop));
  }
  filter[kFirewall] = std::move(fw);
  for (const char* name : {kServices, kExternalServices, kNodePorts, kProxyFirewall}) filter[name];
  for (const char* name : {kServices, kNodePorts}) nat[name];
}

}  // namespace

const std::set<std::string>& shared_nat_chains() {
  static const std::set<std::string> k{kServices, kNodePorts, kMarkMasq, kPostrouting};
  return k;
}

const std::set<std::string>& shared_filter_chains() {
  static const std::set<std::string> k{kServices, kExternalServices, kNodePorts, kProxyFirewall,
                                       kForward, kFirewall};
  return k;
}

Tables skeleton() {
  Tables t;
  proxy::kube_skeleton(t.nat, t.filter);
  using ipt::JumpRule;
  constexpr uint16_t kNew = ipt::kCtNew;
  t.filter.jumps = {
      {"INPUT", jump_rule("kubernetes load balancer firewall", kProxyFirewall, kNew), JumpRule::kInsertFirst},
      {"INPUT", jump_rule("kubernetes health check service ports", kNodePorts), JumpRule::kInsertFirst},
      {"INPUT", jump_rule("kubernetes externally-visible service portals", kExternalServices, kNew), JumpRule::kInsertFirst},
      {"INPUT", jump_rule("kubernetes firewall", kFirewall), JumpRule::kInsertFirst},
      {"FORWARD", jump_rule("kubernetes load balancer firewall", kProxyFirewall, kNew), JumpRule::kInsertFirst},
      {"FORWARD", jump_rule("kubernetes forwarding rules", kForward), JumpRule::kInsertFirst},
      {"FORWARD", jump_rule("kubernetes service portals", kServices, kNew), JumpRule::kInsertFirst},
      {"FORWARD", jump_rule("kubernetes externally-visible service portals", kExternalServices, kNew), JumpRule::kInsertFirst},
      {"OUTPUT", jump_rule("kubernetes load balancer firewall", kProxyFirewall, kNew), JumpRule::kInsertFirst},
      {"OUTPUT", jump_rule("kubernetes service portals", kServices, kNew), JumpRule::kInsertFirst},
      {"OUTPUT", jump_rule("kubernetes firewall", kFirewall), JumpRule::kInsertFirst},
  };
  return t;
}

Tables generate(const proxy::ProxyState& state, const RulesConfig& config, const std::set<std::string>* only) {
  Tables t = skeleton();
  static_chains(t, config);
  Generator g(config, t);
  for (const auto& sp : state.services) {
    g.service(sp, only == nullptr || only->count(sp.name) > 0);
  }
  g.finish();
  return t;
}

Status emit_service_chains(const proxy::ProxyState& state, const RulesConfig& config,
                           const iptables::ChainEmitter& emit) {
  RulesConfig c = config;
  c.encode_service_chains = true;
  Tables scratch;
  Generator g(c, scratch);
  SharedRules ignored;  // generate() has the shared rules
  for (const auto& sp : state.services) {
    g.service_into(sp, true, ignored);
    if (!scratch.nat.chains.empty()) {
      // A chain that kept Rule values has a rule that does not validate: say which.
      for (const auto& [name, rules] : scratch.nat.chains) {
        for (const Rule& r : rules) {
          if (Status s = r.validate(); !s) return s.Wrap("chain " + name);
        }
      }
    }
    for (const auto& [name, chain] : scratch.nat.encoded) emit(name, chain.bytes, chain.rules);
    scratch.nat.chains.clear();
    scratch.nat.encoded.clear();
    scratch.service_chains.clear();
  }
  return Status::Ok();
}

std::set<std::string> chains_of(const std::string& name,
                                const std::function<std::vector<std::string>(const std::string&)>& targets) {
  std::set<std::string> out;
  for (net::Protocol p : {net::Protocol::kTCP, net::Protocol::kUDP, net::Protocol::kSCTP}) {
    const char* proto = net::to_lower_string(p);
    for (const char* prefix : {"KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-"}) {
      std::string chain = service_chain(prefix, name, proto);
      if (prefix[5] == 'S') {  // SVC, SVL: where the endpoint chains hang
        for (auto& to : targets(chain)) {
          if (to.starts_with("KUBE-SEP-")) out.insert(std::move(to));
        }
      }
      out.insert(std::move(chain));
    }
  }
  return out;
}

Tables generate(const proxy::ProxyState& state, const RulesConfig& config, const std::set<std::string>* only,
                SharedChainCache& cache, bool service_chains) {
  Tables t = skeleton();
  static_chains(t, config);
  Generator g(config, t);
  std::array<bool, kSharedParts> dirty{};
  if (only == nullptr) {
    cache.parts.clear();
    cache.parts.reserve(state.services.size());
    dirty.fill(true);
  }
  // Partial: which named service ports still exist (the others left the model).
  std::set<std::string_view> present;
  SharedRules fresh;
  for (const auto& sp : state.services) {
    const bool named = only == nullptr || only->count(sp.name) > 0;
    auto it = cache.parts.find(sp.name);
    if (!named && it != cache.parts.end()) continue;  // unchanged: its kept part stands
    if (named && only) present.insert(sp.name);
    // Named, or missing from the cache (not expected: generated as if named).
    g.service_into(sp, named && service_chains, fresh);
    if (it == cache.parts.end()) {
      for (size_t p = 0; p < kSharedParts; ++p) dirty[p] = dirty[p] || fresh.rules[p] > 0;
      cache.parts.emplace(sp.name, std::move(fresh));
      fresh = SharedRules{};
    } else {
      for (size_t p = 0; p < kSharedParts; ++p) {
        auto sp_ = static_cast<SharedPart>(p);
        dirty[p] = dirty[p] || it->second.part(sp_) != fresh.part(sp_);
      }
      std::swap(it->second, fresh);
    }
  }
  if (only) {
    for (const auto& name : *only) {
      if (present.count(name)) continue;
      auto it = cache.parts.find(name);
      if (it == cache.parts.end()) continue;
      for (size_t p = 0; p < kSharedParts; ++p) dirty[p] = dirty[p] || it->second.rules[p] > 0;
      cache.parts.erase(it);
    }
  }
  // KUBE-SERVICES' last rules (node ports) come after every service's: generated as
  // Rule values, then taken out to end the encoded chain.
  g.finish();
  std::vector<Rule> tail = std::move(t.nat.chains[kServices]);
  for (size_t p = 0; p < kSharedParts; ++p) {
    const SharedChainName& where = kSharedChainNames[p];
    ipt::DesiredTable& table = where.nat ? t.nat : t.filter;
    table.chains.erase(where.chain);
    if (!dirty[p]) continue;
    const auto part = static_cast<SharedPart>(p);
    ipt::EncodedChain& out = table.encoded[where.chain];
    size_t bytes = 0;
    for (const auto& sp : state.services) bytes += cache.parts.at(sp.name).part(part).size();
    out.bytes.reserve(bytes + (where.nat && part == kNatServicesPart ? 512 * tail.size() : 0));
    for (const auto& sp : state.services) {
      const SharedRules& r = cache.parts.at(sp.name);
      out.bytes.append(r.part(part));
      out.rules += r.rules[p];
    }
    if (part == kNatServicesPart) {
      for (const Rule& r : tail) {
        if (Status s = r.validate(); !s) {
          if (t.error.ok()) t.error = s.Wrap(std::string("chain ") + kServices);
          continue;
        }
        out.append(r);
      }
    }
  }
  return t;
}

}  // namespace knode::iptables_proxy
