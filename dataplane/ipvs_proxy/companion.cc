#include "companion.h"

#include <netinet/in.h>

#include "iptables/rule_builder.h"

namespace knode::ipvs_proxy {
namespace ipt = knode::iptables;
using ipset::Entry;
using ipt::Rule;

namespace {

constexpr const char* kServices = "KUBE-SERVICES";
constexpr const char* kPostrouting = "KUBE-POSTROUTING";
constexpr const char* kNodePort = "KUBE-NODE-PORT";
constexpr const char* kLoadBalancer = "KUBE-LOAD-BALANCER";
constexpr const char* kMarkMasq = "KUBE-MARK-MASQ";
constexpr const char* kForward = "KUBE-FORWARD";
constexpr const char* kProxyFirewall = "KUBE-PROXY-FIREWALL";
constexpr const char* kSourceRangesFirewall = "KUBE-SOURCE-RANGES-FIREWALL";
constexpr const char* kIpvsFilter = "KUBE-IPVS-FILTER";
constexpr const char* kIpvsOutFilter = "KUBE-IPVS-OUT-FILTER";

const std::string& comment_of(const std::string& set) {
  static const std::map<std::string, std::string> kComments = [] {
    std::map<std::string, std::string> m;
    for (const auto& s : ipset::kube_proxy_sets(4)) m[s.name] = s.comment;
    return m;
  }();
  static const std::string kNone;
  auto it = kComments.find(set);
  return it == kComments.end() ? kNone : it->second;
}

uint8_t proto_number(dp::Protocol p) {
  switch (p) {
    case dp::Protocol::kUDP: return IPPROTO_UDP;
    case dp::Protocol::kSCTP: return IPPROTO_SCTP;
    default: return IPPROTO_TCP;
  }
}

using R = ipt::RuleBuilder;

// -m physdev ! --physdev-is-in: did not come in through a bridge port (not from a pod).
ipt::Physdev not_bridged_in() {
  ipt::Physdev p;
  p.is_in = ipt::Physdev::IsIn::kNo;
  return p;
}

Rule jump_rule(const char* comment, const char* chain) { return R().comment(comment).jump(chain); }

Entry ip_port(const net::IPAddress& ip, dp::Protocol p, uint16_t port) {
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
  std::vector<ipset::SetSpec> out = ipset::kube_proxy_sets(4);
  // kube-proxy creates its sets without ipset's comment extension; the text is only ours.
  return out;
}

Contribution contribution_of(const dp::ServicePort& sp, const CompanionConfig& c) {
  Contribution out;
  if (!sp.cluster_ip.is_v4()) return out;
  SetContents& s = out.entries;
  s[ipset::kClusterIp].insert(ip_port(sp.cluster_ip, sp.protocol, sp.port));
  // Hairpin: a local endpoint reaching itself through the service gets masqueraded, so
  // its reply comes back through IPVS. Every local endpoint of the service port.
  auto hairpin = [&](const std::vector<dp::Backend>& backends) {
    for (const auto& b : backends) {
      if (!b.local || !b.ip.is_v4()) continue;
      Entry e = ip_port(b.ip, sp.protocol, b.port);
      e.ip2 = b.ip;
      s[ipset::kLoopBack].insert(e);
    }
  };
  hairpin(sp.cluster_backends);
  hairpin(sp.local_backends);

  for (const auto& ip : sp.external_ips) {
    if (!ip.is_v4()) continue;
    s[sp.external_policy_local ? ipset::kExternalIpLocal : ipset::kExternalIp].insert(
        ip_port(ip, sp.protocol, sp.port));
  }
  bool node_allowed = false;
  for (const auto& range : sp.load_balancer_source_ranges) {
    for (const auto& a : c.node_ips) node_allowed |= range.contains(a);
  }
  for (const auto& ip : sp.load_balancer_ips) {
    if (!ip.is_v4()) continue;
    Entry e = ip_port(ip, sp.protocol, sp.port);
    s[ipset::kLoadBalancer].insert(e);
    if (sp.external_policy_local) s[ipset::kLoadBalancerLocal].insert(e);
    if (sp.load_balancer_source_ranges.empty()) continue;
    s[ipset::kLoadBalancerFw].insert(e);
    for (const auto& range : sp.load_balancer_source_ranges) {
      if (!range.address().is_v4()) continue;
      // hash:ip,port,net refuses a /0: "everyone" is the two halves of the space.
      std::vector<net::Cidr> nets{range};
      if (range.prefix() == 0) nets = {*net::Cidr::Parse("0.0.0.0/1"), *net::Cidr::Parse("128.0.0.0/1")};
      for (const auto& n : nets) {
        Entry r = e;
        r.net = n;
        s[ipset::kLoadBalancerSourceCidr].insert(r);
      }
    }
    if (node_allowed) {
      // The node reaching its own LB IP comes from that IP (bound on kube-ipvs0).
      Entry r = e;
      r.ip2 = ip;
      s[ipset::kLoadBalancerSourceIp].insert(r);
    } else {
      out.no_node_access.insert(LbNoNodeAccess{ip, sp.protocol, sp.port});
    }
  }
  if (sp.node_port != 0 && !c.node_port_addresses.empty()) {
    switch (sp.protocol) {
      case dp::Protocol::kTCP:
        s[ipset::kNodePortTcp].insert(port_only(sp.node_port));
        if (sp.external_policy_local) s[ipset::kNodePortLocalTcp].insert(port_only(sp.node_port));
        break;
      case dp::Protocol::kUDP:
        s[ipset::kNodePortUdp].insert(port_only(sp.node_port));
        if (sp.external_policy_local) s[ipset::kNodePortLocalUdp].insert(port_only(sp.node_port));
        break;
      case dp::Protocol::kSCTP:
        for (const auto& a : c.node_port_addresses) {
          if (!a.is_v4()) continue;
          s[ipset::kNodePortSctp].insert(ip_port(a, sp.protocol, sp.node_port));
          if (sp.external_policy_local) s[ipset::kNodePortLocalSctp].insert(ip_port(a, sp.protocol, sp.node_port));
        }
        break;
    }
  }
  if (sp.health_check_node_port != 0) s[ipset::kHealthCheckNodePort].insert(port_only(sp.health_check_node_port));
  // What is bound to kube-ipvs0: every service VIP that is not the node's own address.
  auto bind = [&](const net::IPAddress& ip) {
    if (ip.is_v4() && !c.node_addresses.count(ip)) {
      Entry e;
      e.ip = ip;
      s[ipset::kIpvsIps].insert(e);
    }
  };
  bind(sp.cluster_ip);
  for (const auto& ip : sp.external_ips) bind(ip);
  for (const auto& ip : sp.load_balancer_ips) bind(ip);
  return out;
}

SetContents desired_sets(const dp::ProxyState& state, const CompanionConfig& c) {
  SetContents s;
  for (const auto& spec : companion_sets()) s[spec.name];
  for (const auto& sp : state.services) {
    for (auto& [name, entries] : contribution_of(sp, c).entries) s[name].insert(entries.begin(), entries.end());
  }
  return s;
}

std::set<LbNoNodeAccess> lb_no_node_access(const dp::ProxyState& state, const CompanionConfig& c) {
  std::set<LbNoNodeAccess> out;
  for (const auto& sp : state.services) {
    auto mine = contribution_of(sp, c).no_node_access;
    out.insert(mine.begin(), mine.end());
  }
  return out;
}

CompanionTables companion_skeleton() {
  CompanionTables t;
  t.nat.table = "nat";
  t.nat.owned_prefixes = {"KUBE-"};
  t.filter.table = "filter";
  t.filter.owned_prefixes = {"KUBE-"};
  using ipt::JumpRule;
  t.nat.jumps = {
      {"OUTPUT", jump_rule("kubernetes service portals", kServices), JumpRule::kInsertFirst},
      {"PREROUTING", jump_rule("kubernetes service portals", kServices), JumpRule::kInsertFirst},
      {"POSTROUTING", jump_rule("kubernetes postrouting rules", kPostrouting), JumpRule::kInsertFirst},
  };
  t.filter.jumps = {
      {"INPUT", jump_rule("kubernetes ipvs access filter", kIpvsFilter), JumpRule::kInsertFirst},
      {"INPUT", jump_rule("kube-proxy firewall rules", kProxyFirewall), JumpRule::kInsertFirst},
      {"INPUT", jump_rule("kubernetes health check rules", kNodePort), JumpRule::kInsertFirst},
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
  if (has(ipset::kLoadBalancer)) {
    services.push_back(R().comment(comment_of(ipset::kLoadBalancer)).set(ipset::kLoadBalancer, "dst,dst").jump(kLoadBalancer));
  }
  if (has(ipset::kClusterIp)) {
    R r;
    if (c.masquerade_all) {
      r.comment(comment_of(ipset::kClusterIp)).set(ipset::kClusterIp, "dst,dst");
    } else if (const net::Cidr* local = local_detector(c)) {
      r.src(*local, true).comment(comment_of(ipset::kClusterIp)).set(ipset::kClusterIp, "dst,dst");
    } else {
      // No cluster CIDR: what leaves the node from a VIP (kube-ipvs0) is masqueraded.
      r.comment(comment_of(ipset::kClusterIp)).set(ipset::kClusterIp, "src,dst");
    }
    services.push_back(r.jump(kMarkMasq));
  }
  if (has(ipset::kExternalIp)) {
    auto ext = [&] { return R().comment(comment_of(ipset::kExternalIp)).set(ipset::kExternalIp, "dst,dst"); };
    services.push_back(ext().jump(kMarkMasq));
    // Accept external-IP traffic that did not come through a bridge (not from a pod) and
    // is not from the node, and any to a local destination: IPVS takes it from there.
    services.push_back(ext().match(not_bridged_in()).src_type(ipt::kAddrLocal, true).to(ipt::Verdict::kAccept));
    services.push_back(ext().dst_type(ipt::kAddrLocal).to(ipt::Verdict::kAccept));
  }
  if (has(ipset::kExternalIpLocal)) {
    auto ext = [&] { return R().comment(comment_of(ipset::kExternalIpLocal)).set(ipset::kExternalIpLocal, "dst,dst"); };
    services.push_back(ext().match(not_bridged_in()).src_type(ipt::kAddrLocal, true).to(ipt::Verdict::kAccept));
    services.push_back(ext().dst_type(ipt::kAddrLocal).to(ipt::Verdict::kAccept));
  }
  services.push_back(R().dst_type(ipt::kAddrLocal).jump(kNodePort));
  if (has(ipset::kClusterIp)) services.push_back(R().set(ipset::kClusterIp, "dst,dst").to(ipt::Verdict::kAccept));
  if (has(ipset::kLoadBalancer)) services.push_back(R().set(ipset::kLoadBalancer, "dst,dst").to(ipt::Verdict::kAccept));

  auto& node_port = nat[kNodePort];
  struct NodePortSets {
    const char* local;
    const char* all;
    ipt::Proto proto;
    const char* dirs;
  };
  for (const auto& n : {NodePortSets{ipset::kNodePortLocalTcp, ipset::kNodePortTcp, ipt::Proto::kTCP, "dst"},
                        NodePortSets{ipset::kNodePortLocalUdp, ipset::kNodePortUdp, ipt::Proto::kUDP, "dst"},
                        NodePortSets{ipset::kNodePortLocalSctp, ipset::kNodePortSctp, ipt::Proto::kSCTP, "dst,dst"}}) {
    if (has(n.local)) {
      node_port.push_back(R().proto(n.proto).comment(comment_of(n.local)).set(n.local, n.dirs).to(ipt::Verdict::kReturn));
    }
    if (has(n.all)) {
      node_port.push_back(R().proto(n.proto).comment(comment_of(n.all)).set(n.all, n.dirs).jump(kMarkMasq));
    }
  }

  auto& lb = nat[kLoadBalancer];
  if (has(ipset::kLoadBalancerLocal)) {
    lb.push_back(R().comment(comment_of(ipset::kLoadBalancerLocal)).set(ipset::kLoadBalancerLocal, "dst,dst").to(ipt::Verdict::kReturn));
  }
  lb.push_back(R().jump(kMarkMasq));

  auto& post = nat[kPostrouting];
  if (has(ipset::kLoopBack)) {
    post.push_back(R().comment(comment_of(ipset::kLoopBack)).set(ipset::kLoopBack, "dst,dst,src").to(ipt::Masquerade{}));
  }
  post.push_back(R().mark(mark, mark, true).to(ipt::Verdict::kReturn));
  post.push_back(R().to(ipt::MarkTarget::XorMark(mark)));
  ipt::Masquerade masq;
  masq.random_fully = c.random_fully;
  post.push_back(R().comment("kubernetes service traffic requiring SNAT").to(masq));

  nat[kMarkMasq].push_back(R().to(ipt::MarkTarget::OrMark(mark)));

  // ---- filter ----
  auto& filter = t.filter.chains;
  auto& fw = filter[kProxyFirewall];
  if (has(ipset::kLoadBalancerFw)) {
    fw.push_back(R().comment(comment_of(ipset::kLoadBalancerFw)).set(ipset::kLoadBalancerFw, "dst,dst").jump(kSourceRangesFirewall));
  }
  auto& ranges = filter[kSourceRangesFirewall];
  if (has(ipset::kLoadBalancerSourceCidr)) {
    ranges.push_back(R().comment(comment_of(ipset::kLoadBalancerSourceCidr))
                         .set(ipset::kLoadBalancerSourceCidr, "dst,dst,src").to(ipt::Verdict::kReturn));
  }
  if (has(ipset::kLoadBalancerSourceIp)) {
    ranges.push_back(R().comment(comment_of(ipset::kLoadBalancerSourceIp))
                         .set(ipset::kLoadBalancerSourceIp, "dst,dst,src").to(ipt::Verdict::kReturn));
  }
  ranges.push_back(R().to(ipt::Verdict::kDrop));

  auto& out_filter = filter[kIpvsOutFilter];
  for (const auto& n : no_node_access) {
    ipt::IpvsMatch m;
    m.vaddr = net::Cidr(n.ip, 32);
    m.vproto = proto_number(n.protocol);
    m.vport = n.port;
    out_filter.push_back(R().src(net::Cidr(n.ip, 32)).match(m).to(ipt::Verdict::kDrop));
  }

  auto& forward = filter[kForward];
  forward.push_back(R().comment("kubernetes forwarding rules").mark(mark, mark).to(ipt::Verdict::kAccept));
  forward.push_back(R().comment("kubernetes forwarding conntrack rule")
                        .ctstate(ipt::kCtRelated | ipt::kCtEstablished).to(ipt::Verdict::kAccept));

  filter[kNodePort].push_back(R().comment(comment_of(ipset::kHealthCheckNodePort))
                                  .set(ipset::kHealthCheckNodePort, "dst").to(ipt::Verdict::kAccept));

  auto& ipvs_filter = filter[kIpvsFilter];
  for (const char* s : {ipset::kLoadBalancer, ipset::kClusterIp, ipset::kExternalIp, ipset::kExternalIpLocal}) {
    ipvs_filter.push_back(R().set(s, "dst,dst").to(ipt::Verdict::kReturn));
  }
  ipvs_filter.push_back(R().set(ipset::kHealthCheckNodePort, "dst").to(ipt::Verdict::kReturn));
  ipvs_filter.push_back(R().ctstate(ipt::kCtNew).set(ipset::kIpvsIps, "dst").to(ipt::Reject{}));
  return t;
}

}  // namespace knode::ipvs_proxy
