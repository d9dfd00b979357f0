#include "nat.h"

#include <cstdio>
#include <functional>
#include <set>

#include "hash.h"
#include "knode/dataplane/iptables/chain_editor.h"
#include "knode/dataplane/iptables/rule.h"

namespace knode::cni {

namespace ipt = knode::iptables;

namespace {

constexpr const char* kPostrouting = "KNODE-CNI-POSTROUTING";
constexpr const char* kHostports = "KNODE-CNI-HOSTPORTS";
constexpr const char* kDnPrefix = "KNODE-CNI-DN-";
constexpr const char* kMasqPrefix = "KNODE-CNI-MASQ-";
constexpr uint32_t kHairpinMark = 0x2000;  // the reference portmap plugin's bit

Status nat_error(const std::string& what, const Status& s) { return internal(what, s); }

std::string hex(uint64_t v, int digits) {
  char buf[20];
  std::snprintf(buf, sizeof(buf), "%0*llx", digits, static_cast<unsigned long long>(v));
  return std::string(buf).substr(0, static_cast<size_t>(digits));
}

// KNODE-CNI-DN-<4 hex of the network><8 hex of the attachment>: GC finds a network's
// chains by prefix without knowing the attachments that made them.
std::string network_tag(const std::string& network) { return hex(fnv1a(network) & 0xffff, 4); }
std::string dn_chain(const std::string& network, const Attachment& a) {
  return kDnPrefix + network_tag(network) + hex(fnv1a(a.container_id + "\n" + a.ifname) & 0xffffffffu, 8);
}
std::string masq_chain(const std::string& network) { return kMasqPrefix + hex(fnv1a(network) & 0xffffffffu, 8); }

ipt::Proto to_proto(const std::string& p) {
  if (p == "udp") return ipt::Proto::kUDP;
  if (p == "sctp") return ipt::Proto::kSCTP;
  return ipt::Proto::kTCP;
}

ipt::Rule jump(const std::string& chain, const std::string& comment) {
  ipt::Rule r;
  r.matches.push_back(ipt::Comment{comment});
  r.target = ipt::Jump{chain};
  return r;
}

ipt::Rule local_jump(const std::string& comment) {
  ipt::Rule r = jump(kHostports, comment);
  ipt::AddrTypeMatch at;
  at.dst_types = ipt::kAddrLocal;
  r.matches.push_back(at);
  return r;
}

ipt::Rule hairpin_masquerade() {
  ipt::Rule r;
  r.matches.push_back(ipt::Comment{"knode-cni hairpin"});
  r.matches.push_back(ipt::Mark{kHairpinMark, kHairpinMark, false});
  r.target = ipt::Masquerade{};
  return r;
}

ipt::Rule hostports_jump(const std::string& network, const std::string& chain) {
  return jump(chain, "knode-cni " + network);
}

std::vector<net::Cidr> v4_subnets(const std::vector<ResultIp>& ips) {
  std::vector<net::Cidr> out;
  for (const auto& ip : ips) {
    if (ip.address.ip.is_v4()) out.push_back(ip.address.network());
  }
  return out;
}

std::vector<ipt::Rule> dn_rules(const NetConf& conf, const Attachment& att, const std::vector<ResultIp>& ips) {
  std::vector<ipt::Rule> out;
  std::optional<net::IPAddress> pod;
  for (const auto& ip : ips) {
    if (ip.address.ip.is_v4() && !pod) pod = ip.address.ip;
  }
  if (!pod) return out;
  auto subnets = v4_subnets(ips);
  for (const auto& pm : conf.port_mappings) {
    if (pm.host_ip && !pm.host_ip->is_v4()) continue;
    auto base = [&]() {
      ipt::Rule r;
      if (pm.host_ip) r.dst = ipt::CidrMatch{net::Cidr(*pm.host_ip, 32), false};
      r.protocol = to_proto(pm.protocol);
      r.matches.reserve(2);
      r.matches.emplace_back(std::in_place_type<ipt::Comment>,
                             att.container_id + "/" + att.ifname + " hostPort " + std::to_string(pm.host_port));
      r.matches.emplace_back(std::in_place_type<ipt::Port>);
      std::get<ipt::Port>(r.matches.back()).dport = ipt::PortRange::One(pm.host_port);
      return r;
    };
    // Pods of the bridge reaching a host port (their own included) come back through
    // the node only if their source is rewritten: mark them for KNODE-CNI-POSTROUTING.
    for (const auto& subnet : subnets) {
      ipt::Rule mark = base();
      mark.src = ipt::CidrMatch{subnet, false};
      mark.target = ipt::MarkTarget::OrMark(kHairpinMark);
      out.push_back(mark);
    }
    ipt::Rule dnat = base();
    ipt::Dnat to;
    to.ip = *pod;
    to.ports = ipt::PortRange::One(pm.container_port);
    dnat.target = to;
    out.push_back(dnat);
  }
  return out;
}

// Runs `edit` on the nat table under the xtables lock; commits only what changed.
Status edit_nat(const std::string& what, const std::function<Status(ipt::ChainEditor&)>& edit) {
  if (Status s = ipt::edit_table("nat", edit); !s) return nat_error(what, s);
  return Status::Ok();
}

Status drop_chain(ipt::ChainEditor& t, const std::string& network, const std::string& chain) {
  if (Status s = t.remove_rule(kHostports, hostports_jump(network, chain)); !s) return s;
  return t.drop_chain(chain);
}

Status ensure_hooks(ipt::ChainEditor& t) {
  using E = ipt::ChainEditor;
  if (Status s = t.ensure_chain(kPostrouting); !s) return s;
  if (Status s = t.ensure_chain(kHostports); !s) return s;
  if (Status s = t.ensure_rule("POSTROUTING", jump(kPostrouting, "knode-cni masquerade"), E::kFirst); !s) return s;
  for (const char* hook : {"PREROUTING", "OUTPUT"}) {
    if (Status s = t.ensure_rule(hook, local_jump("knode-cni host ports"), E::kFirst); !s) return s;
  }
  return t.ensure_rule(kPostrouting, hairpin_masquerade(), E::kFirst);
}

}  // namespace


Status ensure_masquerade(const NetConf& conf, const std::vector<ResultIp>& ips) {
  auto subnets = v4_subnets(ips);
  if (subnets.empty()) return Status::Ok();
  const std::string chain = masq_chain(conf.name);
  std::vector<ipt::Rule> masq;
  for (const auto& range_set : conf.ipam.ranges) {
    for (const auto& r : range_set) {
      if (!r.subnet.address().is_v4()) continue;
      ipt::Rule ret;
      ret.dst = ipt::CidrMatch{r.subnet, false};
      ret.target = ipt::Verdict::kReturn;
      masq.push_back(ret);
    }
  }
  ipt::Rule multicast;
  multicast.dst = ipt::CidrMatch{*net::Cidr::Parse("224.0.0.0/4"), false};
  multicast.target = ipt::Verdict::kReturn;
  masq.push_back(multicast);
  ipt::Rule all;
  all.target = ipt::Masquerade{};
  masq.push_back(all);
  return edit_nat("masquerade for " + conf.name, [&](ipt::ChainEditor& t) {
    if (Status s = ensure_hooks(t); !s) return s;
    if (Status s = t.set_chain(chain, masq); !s) return s;
    for (const auto& subnet : subnets) {
      ipt::Rule from = jump(chain, "knode-cni " + conf.name + " masquerade");
      from.src = ipt::CidrMatch{subnet, false};
      if (Status s = t.ensure_rule(kPostrouting, from); !s) return s;
    }
    return Status::Ok();
  });
}

Status add_port_mappings(const NetConf& conf, const Attachment& att, const std::vector<ResultIp>& ips) {
  const std::string chain = dn_chain(conf.name, att);
  const auto rules = dn_rules(conf, att, ips);
  return edit_nat("port mappings of " + att.container_id, [&](ipt::ChainEditor& t) {
    if (Status s = ensure_hooks(t); !s) return s;
    if (Status s = t.set_chain(chain, rules); !s) return s;
    return t.ensure_rule(kHostports, hostports_jump(conf.name, chain));
  });
}

Status remove_port_mappings(const NetConf& conf, const Attachment& att) {
  const std::string chain = dn_chain(conf.name, att);
  return edit_nat("remove port mappings of " + att.container_id,
                  [&](ipt::ChainEditor& t) { return drop_chain(t, conf.name, chain); });
}

Status check_nat(const NetConf& conf, const Attachment& att, const std::vector<ResultIp>& ips) {
  if (!conf.ip_masq && conf.port_mappings.empty()) return Status::Ok();
  auto table = ipt::Table::open("nat");
  if (!table.ok()) return nat_error("check nat", table.status());
  ipt::ChainEditor t(*table);
  if (conf.ip_masq && !t.has_chain(masq_chain(conf.name))) {
    return error(kRulesMissing, "masquerade chain " + masq_chain(conf.name) + " is missing");
  }
  if (!conf.port_mappings.empty()) {
    const std::string chain = dn_chain(conf.name, att);
    if (!t.holds_exactly(chain, dn_rules(conf, att, ips))) {
      return error(kRulesMissing, "port mapping chain " + chain + " is missing or differs");
    }
    if (!t.contains(kHostports, hostports_jump(conf.name, chain))) {
      return error(kRulesMissing, "jump to " + chain + " is missing from " + kHostports);
    }
  }
  return Status::Ok();
}

Status gc_port_mappings(const NetConf& conf, const std::vector<Attachment>& valid) {
  std::set<std::string> keep;
  for (const auto& a : valid) keep.insert(dn_chain(conf.name, a));
  const std::string prefix = kDnPrefix + network_tag(conf.name);
  return edit_nat("garbage-collect port mappings", [&](ipt::ChainEditor& t) {
    for (const auto& chain : t.chains()) {
      if (chain.rfind(prefix, 0) != 0 || keep.count(chain) > 0) continue;
      if (Status s = drop_chain(t, conf.name, chain); !s) return s;
    }
    return Status::Ok();
  });
}

}  // namespace knode::cni
