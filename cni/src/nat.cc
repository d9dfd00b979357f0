#include "nat.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <functional>
#include <set>

#include "iptables/rule.h"
#include "iptables/table.h"

namespace knode::cni {

namespace ipt = knode::iptables;

namespace {

constexpr const char* kPostrouting = "KNODE-CNI-POSTROUTING";
constexpr const char* kHostports = "KNODE-CNI-HOSTPORTS";
constexpr const char* kDnPrefix = "KNODE-CNI-DN-";
constexpr const char* kMasqPrefix = "KNODE-CNI-MASQ-";
constexpr uint32_t kHairpinMark = 0x2000;  // the reference portmap plugin's bit

Error nat_error(const std::string& what, const Status& s) { return Error{kInternal, what + ": " + s.message(), {}}; }

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

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

// flock on the lock file iptables itself uses, so knode-cni, iptables and others
// serialize; the kernel's EAGAIN on a stale replace is retried as well.
class XtablesLock {
 public:
  XtablesLock() {
    fd_ = ::open("/run/xtables.lock", O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0) {
      while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
      }
    }
  }
  ~XtablesLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  XtablesLock(const XtablesLock&) = delete;
  XtablesLock& operator=(const XtablesLock&) = delete;

 private:
  int fd_ = -1;
};

Result<std::vector<std::string>> encode_all(const std::vector<ipt::Rule>& rules) {
  std::vector<std::string> out;
  for (const auto& r : rules) {
    if (Status s = r.validate(); !s) return s;
    out.push_back(r.encode());
  }
  return out;
}

// Edits one snapshot of the nat table and commits it when edit() changed something.
Done edit_nat(const std::string& what, const std::function<Status(ipt::Table&, bool*)>& edit) {
  Status last;
  for (int attempt = 0; attempt < 20; ++attempt) {
    XtablesLock lock;
    auto t = ipt::Table::open("nat");
    if (!t.ok()) return nat_error(what, t.status());
    bool changed = false;
    if (Status s = edit(*t, &changed); !s) return nat_error(what, s);
    if (!changed) return ok();
    last = t->commit();
    if (last) return ok();
    if (last.error_number() != EAGAIN) break;
  }
  return nat_error(what, last);
}

Status ensure_chain(ipt::Table& t, const std::string& chain, bool* changed) {
  if (t.has_chain(chain)) return Status::Ok();
  *changed = true;
  return t.create_chain(chain);
}

// Position of entry in chain, or -1.
int find_entry(ipt::Table& t, const std::string& chain, const std::string& entry) {
  auto rules = t.rules(chain);
  if (!rules.ok()) return -1;
  for (size_t i = 0; i < rules->size(); ++i) {
    if ((*rules)[i] == entry) return static_cast<int>(i);
  }
  return -1;
}

Status ensure_rule(ipt::Table& t, const std::string& chain, const ipt::Rule& rule, bool first, bool* changed) {
  if (Status s = rule.validate(); !s) return s;
  std::string entry = rule.encode();
  if (find_entry(t, chain, entry) >= 0) return Status::Ok();
  *changed = true;
  return first ? t.insert(chain, entry, 0) : t.append(chain, entry);
}

Status remove_rule(ipt::Table& t, const std::string& chain, const std::string& entry, bool* changed) {
  if (!t.has_chain(chain)) return Status::Ok();
  for (int pos = find_entry(t, chain, entry); pos >= 0; pos = find_entry(t, chain, entry)) {
    *changed = true;
    if (Status s = t.erase(chain, static_cast<unsigned>(pos)); !s) return s;
  }
  return Status::Ok();
}

// Makes chain hold exactly `rules`, leaving it alone when it already does.
Status set_chain(ipt::Table& t, const std::string& chain, const std::vector<std::string>& rules, bool* changed) {
  if (t.has_chain(chain)) {
    auto have = t.rules(chain);
    if (have.ok() && *have == rules) return Status::Ok();
    if (Status s = t.flush_chain(chain); !s) return s;
  } else if (Status s = t.create_chain(chain); !s) {
    return s;
  }
  *changed = true;
  for (const auto& e : rules) {
    if (Status s = t.append(chain, e); !s) return s;
  }
  return Status::Ok();
}

Status drop_chain(ipt::Table& t, const std::string& network, const std::string& chain, bool* changed) {
  if (Status s = remove_rule(t, kHostports, hostports_jump(network, chain).encode(), changed); !s) return s;
  if (!t.has_chain(chain)) return Status::Ok();
  *changed = true;
  if (Status s = t.flush_chain(chain); !s) return s;
  return t.delete_chain(chain);
}

Status ensure_hooks(ipt::Table& t, bool* changed) {
  if (Status s = ensure_chain(t, kPostrouting, changed); !s) return s;
  if (Status s = ensure_chain(t, kHostports, changed); !s) return s;
  if (Status s = ensure_rule(t, "POSTROUTING", jump(kPostrouting, "knode-cni masquerade"), true, changed); !s) return s;
  for (const char* hook : {"PREROUTING", "OUTPUT"}) {
    if (Status s = ensure_rule(t, hook, local_jump("knode-cni host ports"), true, changed); !s) return s;
  }
  return ensure_rule(t, kPostrouting, hairpin_masquerade(), true, changed);
}

}  // namespace


Done ensure_masquerade(const NetConf& conf, const std::vector<ResultIp>& ips) {
  auto subnets = v4_subnets(ips);
  if (subnets.empty()) return ok();
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
  auto encoded = encode_all(masq);
  if (!encoded.ok()) return nat_error("masquerade for " + conf.name, encoded.status());
  return edit_nat("masquerade for " + conf.name, [&](ipt::Table& t, bool* changed) {
    if (Status s = ensure_hooks(t, changed); !s) return s;
    if (Status s = set_chain(t, chain, *encoded, changed); !s) return s;
    for (const auto& subnet : subnets) {
      ipt::Rule from = jump(chain, "knode-cni " + conf.name + " masquerade");
      from.src = ipt::CidrMatch{subnet, false};
      if (Status s = ensure_rule(t, kPostrouting, from, false, changed); !s) return s;
    }
    return Status::Ok();
  });
}

Done add_port_mappings(const NetConf& conf, const Attachment& att, const std::vector<ResultIp>& ips) {
  const std::string chain = dn_chain(conf.name, att);
  auto encoded = encode_all(dn_rules(conf, att, ips));
  if (!encoded.ok()) return nat_error("port mappings of " + att.container_id, encoded.status());
  return edit_nat("port mappings of " + att.container_id, [&](ipt::Table& t, bool* changed) {
    if (Status s = ensure_hooks(t, changed); !s) return s;
    if (Status s = set_chain(t, chain, *encoded, changed); !s) return s;
    return ensure_rule(t, kHostports, hostports_jump(conf.name, chain), false, changed);
  });
}

Done remove_port_mappings(const NetConf& conf, const Attachment& att) {
  const std::string chain = dn_chain(conf.name, att);
  return edit_nat("remove port mappings of " + att.container_id, [&](ipt::Table& t, bool* changed) {
    return drop_chain(t, conf.name, chain, changed);
  });
}

Done check_nat(const NetConf& conf, const Attachment& att, const std::vector<ResultIp>& ips) {
  if (!conf.ip_masq && conf.port_mappings.empty()) return ok();
  auto t = ipt::Table::open("nat");
  if (!t.ok()) return nat_error("check nat", t.status());
  if (conf.ip_masq && !t->has_chain(masq_chain(conf.name))) {
    return Error{kRulesMissing, "masquerade chain " + masq_chain(conf.name) + " is missing", {}};
  }
  if (!conf.port_mappings.empty()) {
    const std::string chain = dn_chain(conf.name, att);
    auto want = encode_all(dn_rules(conf, att, ips));
    auto have = t->rules(chain);
    if (!have.ok() || !want.ok() || *have != *want) {
      return Error{kRulesMissing, "port mapping chain " + chain + " is missing or differs", {}};
    }
    if (find_entry(*t, kHostports, hostports_jump(conf.name, chain).encode()) < 0) {
      return Error{kRulesMissing, "jump to " + chain + " is missing from " + kHostports, {}};
    }
  }
  return ok();
}

Done gc_port_mappings(const NetConf& conf, const std::vector<Attachment>& valid) {
  std::set<std::string> keep;
  for (const auto& a : valid) keep.insert(dn_chain(conf.name, a));
  const std::string prefix = kDnPrefix + network_tag(conf.name);
  return edit_nat("garbage-collect port mappings", [&](ipt::Table& t, bool* changed) {
    for (const auto& chain : t.chains()) {
      if (chain.rfind(prefix, 0) != 0 || keep.count(chain) > 0) continue;
      if (Status s = drop_chain(t, conf.name, chain, changed); !s) return s;
    }
    return Status::Ok();
  });
}

}  // namespace knode::cni
