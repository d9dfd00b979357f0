#include "ipvs/companion.h"

#include "knode/dataplane/iptables/rule_builder.h"
#include "kube_rules.h"

namespace knode::ipvs_proxy {
namespace ipt = knode::iptables;
using ipset::Entry;
using ipt::Rule;
using proxy::jump_rule;
using namespace proxy::chains;

namespace {

constexpr const char* kNodePortChain = "KUBE-NODE-PORT";
constexpr const char* kLoadBalancerChain = "KUBE-LOAD-BALANCER";
constexpr const char* kSourceRangesFirewall = "KUBE-SOURCE-RANGES-FIREWALL";
constexpr const char* kIpvsFilter = "KUBE-IPVS-FILTER";
constexpr const char* kIpvsOutFilter = "KUBE-IPVS-OUT-FILTER";

const std::string& comment_of(const std::string& set) {
  static const std::map<std::string, std::string> kComments = [] {
    std::map<std::string, std::string> m;
    for (const auto& s : kube_proxy_sets(4)) m[s.name] = s.comment;
    return m;
  }();
  static const std::string kNone;
  auto it = kComments.find(set);
  return it == kComments.end() ? kNone : it->second;
}

using R = ipt::RuleBuilder;

// -m physdev ! --physdev-is-in: did not come in through a bridge port (not from a pod).
ipt::Physdev not_bridged_in() {
  ipt::Physdev p;
  p.is_in = ipt::Physdev::IsIn::kNo;
  return p;
}

Entry ip_port(const net::IPAddress& ip, net::Protocol p, uint16_t port) {
  Entry e;
  e.ip = ip;
  e.protocol = p;
  e.port = port;
  return e;
}

Entry port_only(uint16_t port) {
  Entry e;
  e.port = port;
  return e;
}

const net::Cidr* local_detector(const CompanionConfig& c) {
  for (const auto& cidr : c.cluster_cidrs) {
    if (cidr.address().is_v4()) return &cidr;
  }
  return nullptr;
}

}  // namespace

std::vector<ipset::SetSpec> companion_sets() {
  std::vector<ipset::SetSpec> out = kube_proxy_sets(4);
  // kube-proxy creates its sets without ipset's comment extension; the text is only ours.
  return out;
}

Contribution contribution_of(const proxy::ServicePort& sp, const CompanionConfig& c) {
  Contribution out;
  if (!sp.cluster_ip.is_v4()) return out;
  SetContents& s = out.entries;
  s[kClusterIp].insert(ip_port(sp.cluster_ip, sp.protocol, sp.port));
  // Hairpin: a local endpoint reaching itself through the service gets masqueraded, so
  // its reply comes back through IPVS. Every local endpoint of the service port.
  auto hairpin = [&](const std::vector<proxy::Endpoint>& backends) {
    for (const auto& b : backends) {
      if (!b.local || !b.ip.is_v4()) continue;
      Entry e = ip_port(b.ip, sp.protocol, b.port);
      e.ip2 = b.ip;
      s[kLoopBack].insert(e);
    }
  };
  hairpin(sp.cluster_endpoints);
  hairpin(sp.local_endpoints);

  for (const auto& ip : sp.external_ips) {
    if (!ip.is_v4()) continue;
    s[sp.external_policy_local ? kExternalIpLocal : kExternalIp].insert(
        ip_port(ip, sp.protocol, sp.port));
  }
  bool node_allowed = false;
  for (const auto& range : sp.load_balancer_source_ranges) {
    for (const auto& a : c.node_ips) node_allowed |= range.contains(a);
  }
  for (const auto& ip : sp.load_balancer_ips) {
    if (!ip.is_v4()) continue;
    Entry e = ip_port(ip, sp.protocol, sp.port);
    s[kLoadBalancer].insert(e);
    if (sp.external_policy_local) s[kLoadBalancerLocal].insert(e);
    if (sp.load_balancer_source_ranges.empty()) continue;
    s[kLoadBalancerFw].insert(e);
    for (const auto& range : sp.load_balancer_source_ranges) {
      if (!range.address().is_v4()) continue;
      // hash:ip,port,net refuses a /0: "everyone" is the two halves of the space.
      std::vector<net::Cidr> nets{range};
      if (range.prefix() == 0) nets = {*net::Cidr::Parse("0.0.0.0/1"), *net::Cidr::Parse("128.0.0.0/1")};
      for (const auto& n : nets) {
        Entry r = e;
        r.net = n;
        s[kLoadBalancerSourceCidr].insert(r);
      }
    }
    if (node_allowed) {
      // The node reaching its own LB IP comes from that IP (bound on kube-ipvs0).
      Entry r = e;
      r.ip2 = ip;
      s[kLoadBalancerSourceIp].insert(r);
    } else {
      out.no_node_access.insert(LbNoNodeAccess{ip, sp.protocol, sp.port});
    }
  }
  if (sp.node_port != 0 && !c.node_port_addresses.empty()) {
    switch (sp.protocol) {
      case net::Protocol::kTCP:
        s[kNodePortTcp].insert(port_only(sp.node_port));
        if (sp.external_policy_local) s[kNodePortLocalTcp].insert(port_only(sp.node_port));
        break;
      case net::Protocol::kUDP:
        s[kNodePortUdp].insert(port_only(sp.node_port));
        if (sp.external_policy_local) s[kNodePortLocalUdp].insert(port_only(sp.node_port));
        break;
      case net::Protocol::kSCTP:
        for (const auto& a : c.node_port_addresses) {
          if (!a.is_v4()) continue;
          s[kNodePortSctp].insert(ip_port(a, sp.protocol, sp.node_port));
          if (sp.external_policy_local) s[kNodePortLocalSctp].insert(ip_port(a, sp.protocol, sp.node_port));
        }
        break;
    }
  }
  if (sp.health_check_node_port != 0) s[kHealthCheckNodePort].insert(port_only(sp.health_check_node_port));
  // What is bound to kube-ipvs0: every service VIP that is not the node's own address.
  auto bind = [&](const net::IPAddress& ip) {
    if (ip.is_v4() && !c.node_addresses.count(ip)) {
      Entry e;
      e.ip = ip;
      s[kIpvsIps].insert(e);
    }
  };
  bind(sp.cluster_ip);
  for (const auto& ip : sp.external_ips) bind(ip);
  for (const auto& ip : sp.load_balancer_ips) bind(ip);
  return out;
}

SetContents desired_sets(const proxy::ProxyState& state, const CompanionConfig& c) {
  SetContents s;
  for (const auto& spec : companion_sets()) s[spec.name];
  for (const auto& sp : state.services) {
    for (auto& [name, entries] : contribution_of(sp, c).entries) s[name].insert(entries.begin(), entries.end());
  }
  return s;
}

std::set<LbNoNodeAccess> lb_no_node_access(const proxy::ProxyState& state, const CompanionConfig& c) {
  std::set<LbNoNodeAccess> out;
  for (const auto& sp : state.services) {
    auto mine = contribution_of(sp, c).no_node_access;
    out.insert(mine.begin(), mine.end());
  }
  return out;
}

CompanionTables companion_skeleton() {
  CompanionTables t;
  proxy::kube_skeleton(t.nat, t.filter);
  using ipt::JumpRule;
  t.filter.jumps = {
      {"INPUT", jump_rule("kubernetes ipvs access filter", kIpvsFilter), JumpRule::kInsertFirst},
      {"INPUT", jump_rule("kube-proxy firewall rules", kProxyFirewall), JumpRule::kInsertFirst},
      {"INPUT", jump_rule("kubernetes health check rules", kNodePortChain), JumpRule::kInsertFirst},
      {"FORWARD", jump_rule("kube-proxy firewall rules", kProxyFirewall), JumpRule::kInsertFirst},
      {"FORWARD", jump_rule("kubernetes forwarding rules", kForward), JumpRule::kInsertFirst},
      {"OUTPUT", jump_rule("kubernetes ipvs access filter", kIpvsOutFilter), JumpRule::kInsertFirst},
  };
  return t;
}

CompanionTables companion_tables(const std::set<std::string>& nonempty_sets,
                                 const std::set<LbNoNodeAccess>& no_node_access, const CompanionConfig& c) {
  CompanionTables t = companion_skeleton();
  auto has = [&](const char* name) { return nonempty_sets.count(name) > 0; };
  const uint32_t mark = c.masquerade_mark;

  // ---- nat ----
  auto& nat = t.nat.chains;
  auto& services = nat[kServices];
  services.push_back(R().src(*net::Cidr::Parse("127.0.0.0/8")).to(ipt::Verdict::kReturn));
  if (has(kLoadBalancer)) {
    services.push_back(R().comment(comment_of(kLoadBalancer)).set(kLoadBalancer, "dst,dst").jump(kLoadBalancerChain));
  }
  if (has(kClusterIp)) {
    R r;
    if (c.masquerade_all) {
      r.comment(comment_of(kClusterIp)).set(kClusterIp, "dst,dst");
    } else if (const net::Cidr* local = local_detector(c)) {
      r.src(*local, true).comment(comment_of(kClusterIp)).set(kClusterIp, "dst,dst");
    } else {
      // No cluster CIDR: what leaves the node from a VIP (kube-ipvs0) is masqueraded.
      r.comment(comment_of(kClusterIp)).set(kClusterIp, "src,dst");
    }
    services.push_back(r.jump(kMarkMasq));
  }
  if (has(kExternalIp)) {
    auto ext = [&] { return R().comment(comment_of(kExternalIp)).set(kExternalIp, "dst,dst"); };
    services.push_back(ext().jump(kMarkMasq));
    // Accept external-IP traffic that did not come through a bridge (not from a pod) and
    // is not from the node, and any to a local destination: IPVS takes it from there.
    services.push_back(ext().match(not_bridged_in()).src_type(ipt::kAddrLocal, true).to(ipt::Verdict::kAccept));
    services.push_back(ext().dst_type(ipt::kAddrLocal).to(ipt::Verdict::kAccept));
  }
  if (has(kExternalIpLocal)) {
    auto ext = [&] { return R().comment(comment_of(kExternalIpLocal)).set(kExternalIpLocal, "dst,dst"); };
    services.push_back(ext().match(not_bridged_in()).src_type(ipt::kAddrLocal, true).to(ipt::Verdict::kAccept));
    services.push_back(ext().dst_type(ipt::kAddrLocal).to(ipt::Verdict::kAccept));
  }
  services.push_back(R().dst_type(ipt::kAddrLocal).jump(kNodePortChain));
  if (has(kClusterIp)) services.push_back(R().set(kClusterIp, "dst,dst").to(ipt::Verdict::kAccept));
  if (has(kLoadBalancer)) services.push_back(R().set(kLoadBalancer, "dst,dst").to(ipt::Verdict::kAccept));

  auto& node_port = nat[kNodePortChain];
  struct NodePortSets {
    const char* local;
    const char* all;
    ipt::Proto proto;
    const char* dirs;
  };
  for (const auto& n : {NodePortSets{kNodePortLocalTcp, kNodePortTcp, ipt::Proto::kTCP, "dst"},
                        NodePortSets{kNodePortLocalUdp, kNodePortUdp, ipt::Proto::kUDP, "dst"},
                        NodePortSets{kNodePortLocalSctp, kNodePortSctp, ipt::Proto::kSCTP, "dst,dst"}}) {
    if (has(n.local)) {
      node_port.push_back(R().proto(n.proto).comment(comment_of(n.local)).set(n.local, n.dirs).to(ipt::Verdict::kReturn));
    }
    if (has(n.all)) {
      node_port.push_back(R().proto(n.proto).comment(comment_of(n.all)).set(n.all, n.dirs).jump(kMarkMasq));
    }
  }

  auto& lb = nat[kLoadBalancerChain];
  if (has(kLoadBalancerLocal)) {
    lb.push_back(R().comment(comment_of(kLoadBalancerLocal)).set(kLoadBalancerLocal, "dst,dst").to(ipt::Verdict::kReturn));
  }
  lb.push_back(R().jump(kMarkMasq));

  auto& post = nat[kPostrouting];
  if (has(kLoopBack)) {
    post.push_back(R().comment(comment_of(kLoopBack)).set(kLoopBack, "dst,dst,src").to(ipt::Masquerade{}));
  }
  proxy::append_masquerade(post, mark, c.random_fully);
  nat[kMarkMasq] = proxy::mark_masq_chain(mark);

  // ---- filter ----
  auto& filter = t.filter.chains;
  auto& fw = filter[kProxyFirewall];
  if (has(kLoadBalancerFw)) {
    fw.push_back(R().comment(comment_of(kLoadBalancerFw)).set(kLoadBalancerFw, "dst,dst").jump(kSourceRangesFirewall));
  }
  auto& ranges = filter[kSourceRangesFirewall];
  if (has(kLoadBalancerSourceCidr)) {
    ranges.push_back(R().comment(comment_of(kLoadBalancerSourceCidr))
                         .set(kLoadBalancerSourceCidr, "dst,dst,src").to(ipt::Verdict::kReturn));
  }
  if (has(kLoadBalancerSourceIp)) {
    ranges.push_back(R().comment(comment_of(kLoadBalancerSourceIp))
                         .set(kLoadBalancerSourceIp, "dst,dst,src").to(ipt::Verdict::kReturn));
  }
  ranges.push_back(R().to(ipt::Verdict::kDrop));

  auto& out_filter = filter[kIpvsOutFilter];
  for (const auto& n : no_node_access) {
    ipt::IpvsMatch m;
    m.vaddr = net::Cidr(n.ip, 32);
    m.vproto = net::protocol_number(n.protocol);
    m.vport = n.port;
    out_filter.push_back(R().src(net::Cidr(n.ip, 32)).match(m).to(ipt::Verdict::kDrop));
  }

  proxy::append_forward_accepts(filter[kForward], mark);

  filter[kNodePortChain].push_back(R().comment(comment_of(kHealthCheckNodePort))
                                  .set(kHealthCheckNodePort, "dst").to(ipt::Verdict::kAccept));

  auto& ipvs_filter = filter[kIpvsFilter];
  for (const char* s : {kLoadBalancer, kClusterIp, kExternalIp, kExternalIpLocal}) {
    ipvs_filter.push_back(R().set(s, "dst,dst").to(ipt::Verdict::kReturn));
  }
  ipvs_filter.push_back(R().set(kHealthCheckNodePort, "dst").to(ipt::Verdict::kReturn));
  ipvs_filter.push_back(R().ctstate(ipt::kCtNew).set(kIpvsIps, "dst").to(ipt::Reject{}));
  return t;
}

}  // namespace knode::ipvs_proxy
