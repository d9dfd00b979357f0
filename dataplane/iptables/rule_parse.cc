// iptables-save tokens -> Rule, for what rule.h models.
#include <cerrno>
#include <cstdlib>

#include "knode/dataplane/iptables/rule.h"

namespace knode::iptables {
namespace {

Result<std::vector<std::string>> tokenize(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    if (i >= s.size()) break;
    std::string tok;
    if (s[i] == '"') {
      ++i;
      while (i < s.size() && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        tok += s[i++];
      }
      if (i >= s.size()) return Status::Error("unterminated quote in: " + s, EINVAL);
      ++i;
    } else {
      while (i < s.size() && s[i] != ' ') tok += s[i++];
    }
    out.push_back(std::move(tok));
  }
  return out;
}

bool parse_u32(const std::string& s, uint32_t* v) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  unsigned long x = std::strtoul(s.c_str(), &end, 0);
  if (errno || *end || x > 0xffffffffUL) return false;
  *v = static_cast<uint32_t>(x);
  return true;
}

bool parse_range(const std::string& s, char sep, PortRange* r) {
  uint32_t a = 0, b = 0;
  size_t p = s.find(sep);
  if (!parse_u32(s.substr(0, p), &a) || a > 0xffff) return false;
  b = a;
  if (p != std::string::npos && (!parse_u32(s.substr(p + 1), &b) || b > 0xffff)) return false;
  r->first = static_cast<uint16_t>(a);
  r->last = static_cast<uint16_t>(b);
  return true;
}

bool parse_value_mask(const std::string& s, uint32_t* v, uint32_t* m) {
  size_t p = s.find('/');
  *m = 0xffffffff;
  if (!parse_u32(s.substr(0, p), v)) return false;
  return p == std::string::npos || parse_u32(s.substr(p + 1), m);
}

uint16_t parse_flags(const std::string& s, const std::vector<std::pair<const char*, uint16_t>>& names,
                     bool* ok) {
  uint16_t out = 0;
  size_t start = 0;
  *ok = true;
  while (start <= s.size()) {
    size_t c = s.find(',', start);
    std::string item = s.substr(start, c == std::string::npos ? std::string::npos : c - start);
    bool found = false;
    for (const auto& [n, bit] : names) {
      if (item == n) {
        out |= bit;
        found = true;
      }
    }
    if (!found) *ok = false;
    if (c == std::string::npos) break;
    start = c + 1;
  }
  return out;
}

const std::vector<std::pair<const char*, uint16_t>> kAddrNames = {
    {"UNSPEC", kAddrUnspec},       {"UNICAST", kAddrUnicast},     {"LOCAL", kAddrLocal},
    {"BROADCAST", kAddrBroadcast}, {"ANYCAST", kAddrAnycast},     {"MULTICAST", kAddrMulticast},
    {"BLACKHOLE", kAddrBlackhole}, {"UNREACHABLE", kAddrUnreachable}, {"PROHIBIT", kAddrProhibit},
    {"THROW", kAddrThrow},         {"NAT", kAddrNat},             {"XRESOLVE", kAddrXresolve}};
const std::vector<std::pair<const char*, uint16_t>> kCtNames = {
    {"INVALID", kCtInvalid}, {"NEW", kCtNew},   {"RELATED", kCtRelated}, {"ESTABLISHED", kCtEstablished},
    {"UNTRACKED", kCtUntracked}, {"SNAT", kCtSnat}, {"DNAT", kCtDnat}};

bool parse_nat(const std::string& s, Nat* n) {
  size_t c = s.find(':');
  auto ip = net::IPAddress::Parse(s.substr(0, c));
  if (!ip || !ip->is_v4()) return false;
  n->ip = *ip;
  if (c != std::string::npos) {
    PortRange r;
    if (!parse_range(s.substr(c + 1), '-', &r)) return false;
    n->ports = r;
  }
  return true;
}

// Reads one rule's tokens left to right: the rule's own options (-s -d -i -o -p), then
// each "-m NAME" with its options, then "-j TARGET" with its options. "!" negates the
// next option. Each handler consumes its option's values and returns "" or why not.
class RuleParser {
 public:
  explicit RuleParser(std::vector<std::string> tokens) : t_(std::move(tokens)) {}

  Result<Rule> parse(const std::string& args) {
    for (i_ = 0; i_ < t_.size(); ++i_) {
      const std::string& k = t_[i_];
      if (k == "!") {
        neg_ = true;
        continue;
      }
      std::string why;
      if (k.rfind("--", 0) != 0) {
        why = rule_option(k);
      } else if (have_target_) {
        why = std::visit([&](auto& tg) { return target_option(tg, k); }, r_.target);
      } else if (!r_.matches.empty()) {
        why = std::visit([&](auto& m) { return match_option(m, k); }, r_.matches.back());
      } else {
        why = "unexpected token " + k;
      }
      if (!why.empty()) return Status::Error("parse iptables rule \"" + args + "\": " + why, EINVAL);
      neg_ = false;
    }
    if (!have_target_) return Status::Error("parse iptables rule \"" + args + "\": no target (-j)", EINVAL);
    return std::move(r_);
  }

 private:
  // The option's value, or null when the tokens end.
  const std::string* arg() { return i_ + 1 < t_.size() ? &t_[++i_] : nullptr; }

  std::string rule_option(const std::string& k) {
    const std::string* v = nullptr;
    if (k == "-s" || k == "-d") {
      if (!(v = arg())) return "missing address";
      auto c = net::Cidr::Parse(*v);
      if (!c && net::IPAddress::Parse(*v)) c = net::Cidr::Parse(*v + "/32");
      if (!c) return "bad address " + *v;
      (k == "-s" ? r_.src : r_.dst) = CidrMatch{*c, neg_};
    } else if (k == "-i" || k == "-o") {
      if (!(v = arg())) return "missing interface";
      (k == "-i" ? r_.in_iface : r_.out_iface) = IfaceMatch{*v, neg_};
    } else if (k == "-p") {
      if (!(v = arg())) return "missing protocol";
      if (*v == "tcp") r_.protocol = Proto::kTCP;
      else if (*v == "udp") r_.protocol = Proto::kUDP;
      else if (*v == "sctp") r_.protocol = Proto::kSCTP;
      else return "unsupported protocol " + *v;
      r_.protocol_negate = neg_;
    } else if (k == "-m") {
      if (!(v = arg())) return "missing match name";
      return start_match(*v);
    } else if (k == "-j" || k == "-g") {
      if (!(v = arg())) return "missing target";
      start_target(*v, k == "-g");
    } else {
      return "unexpected token " + k;
    }
    return "";
  }

  std::string start_match(const std::string& module) {
    module_ = module;
    if (module == "comment") r_.matches.push_back(Comment{});
    else if (module == "tcp" || module == "udp" || module == "sctp") r_.matches.push_back(Port{});
    else if (module == "mark") r_.matches.push_back(Mark{});
    else if (module == "addrtype") r_.matches.push_back(AddrTypeMatch{});
    else if (module == "conntrack") r_.matches.push_back(Conntrack{});
    else if (module == "statistic") r_.matches.push_back(Statistic{});
    else if (module == "recent") r_.matches.push_back(Recent{});
    else if (module == "physdev") r_.matches.push_back(Physdev{});
    else if (module == "set") r_.matches.push_back(SetMatch{});
    else if (module == "ipvs") r_.matches.push_back(IpvsMatch{});
    else return "unsupported match " + module;
    return "";
  }

  void start_target(const std::string& name, bool go_to) {
    have_target_ = true;
    if (name == "ACCEPT") r_.target = Verdict::kAccept;
    else if (name == "DROP") r_.target = Verdict::kDrop;
    else if (name == "RETURN") r_.target = Verdict::kReturn;
    else if (name == "REJECT") r_.target = Reject{};
    else if (name == "DNAT") r_.target = Dnat{};
    else if (name == "SNAT") r_.target = Snat{};
    else if (name == "MASQUERADE") r_.target = Masquerade{};
    else if (name == "MARK") r_.target = MarkTarget{};
    else r_.target = Jump{name, go_to};
  }

  // ---- match options ----

  std::string unexpected(const std::string& k) { return "unexpected " + k + " for -m " + module_; }

  std::string match_option(Comment& c, const std::string& k) {
    const std::string* v = nullptr;
    if (k != "--comment") return unexpected(k);
    if (!(v = arg())) return "missing comment";
    c.text = *v;
    return "";
  }

  std::string match_option(Port& p, const std::string& k) {
    const bool dst = k == "--dport" || k == "--destination-port";
    if (!dst && k != "--sport" && k != "--source-port") return unexpected(k);
    const std::string* v = nullptr;
    PortRange pr;
    if (!(v = arg()) || !parse_range(*v, ':', &pr)) return "bad port";
    (dst ? p.dport : p.sport) = pr;
    (dst ? p.dport_negate : p.sport_negate) = neg_;
    return "";
  }

  std::string match_option(Mark& m, const std::string& k) {
    const std::string* v = nullptr;
    if (k != "--mark") return unexpected(k);
    if (!(v = arg()) || !parse_value_mask(*v, &m.value, &m.mask)) return "bad mark";
    m.negate = neg_;
    return "";
  }

  std::string match_option(AddrTypeMatch& a, const std::string& k) {
    const std::string* v = nullptr;
    bool ok = true;
    if (k == "--src-type" && (v = arg())) {
      a.src_types = parse_flags(*v, kAddrNames, &ok);
      a.src_negate = neg_;
    } else if (k == "--dst-type" && (v = arg())) {
      a.dst_types = parse_flags(*v, kAddrNames, &ok);
      a.dst_negate = neg_;
    } else if (k == "--limit-iface-in") {
      a.limit_iface_in = true;
    } else if (k == "--limit-iface-out") {
      a.limit_iface_out = true;
    } else {
      ok = false;
    }
    return ok ? "" : "bad addrtype option " + k;
  }

  std::string match_option(Conntrack& ct, const std::string& k) {
    const std::string* v = nullptr;
    if (k != "--ctstate") return unexpected(k);
    if (!(v = arg())) return "missing ctstate";
    bool ok = true;
    ct.states = parse_flags(*v, kCtNames, &ok);
    ct.negate = neg_;
    return ok ? "" : "bad ctstate " + *v;
  }

  std::string match_option(Statistic& st, const std::string& k) {
    const std::string* v = nullptr;
    if (k == "--mode") return (v = arg()) && *v == "random" ? "" : "only --mode random";
    if (k != "--probability") return "bad statistic option " + k;
    if (!(v = arg())) return "missing probability";
    st = Statistic::Random(std::strtod(v->c_str(), nullptr));
    st.negate = neg_;
    return "";
  }

  std::string match_option(Recent& rc, const std::string& k) {
    const std::string* v = nullptr;
    if (k == "--set") rc.mode = Recent::Mode::kSet, rc.negate = neg_;
    else if (k == "--rcheck") rc.mode = Recent::Mode::kRcheck, rc.negate = neg_;
    else if (k == "--update") rc.mode = Recent::Mode::kUpdate, rc.negate = neg_;
    else if (k == "--remove") rc.mode = Recent::Mode::kRemove, rc.negate = neg_;
    else if (k == "--reap") rc.reap = true;
    else if (k == "--rsource") rc.rdest = false;
    else if (k == "--rdest") rc.rdest = true;
    else if (k == "--seconds" && (v = arg())) return parse_u32(*v, &rc.seconds) ? "" : "bad seconds";
    else if (k == "--hitcount" && (v = arg())) return parse_u32(*v, &rc.hit_count) ? "" : "bad hitcount";
    else if (k == "--name" && (v = arg())) rc.name = *v;
    else if (k == "--mask" && (v = arg())) {
      auto ip = net::IPAddress::Parse(*v);
      if (!ip) return "bad mask";
      rc.mask = *ip;
    } else {
      return "bad recent option " + k;
    }
    return "";
  }

  std::string match_option(SetMatch& sm, const std::string& k) {
    const std::string* v = nullptr;
    if (k != "--match-set" || !(v = arg())) return "bad set option " + k;
    sm.name = *v;
    sm.negate = neg_;
    if (!(v = arg()) || set_match_dims(*v) < 0) return "bad set directions";
    sm.dirs = *v;
    return "";
  }

  std::string match_option(IpvsMatch& iv, const std::string& k) {
    const std::string* v = nullptr;
    uint32_t n = 0;
    if (k == "--vproto" && (v = arg()) && parse_u32(*v, &n) && n > 0 && n < 256) {
      iv.vproto = static_cast<uint8_t>(n);
    } else if (k == "--vport" && (v = arg()) && parse_u32(*v, &n) && n > 0 && n < 65536) {
      iv.vport = static_cast<uint16_t>(n);
    } else if (k == "--vaddr" && (v = arg())) {
      auto c = net::Cidr::Parse(v->find('/') == std::string::npos ? *v + "/32" : *v);
      if (!c || !c->address().is_v4()) return "bad --vaddr";
      iv.vaddr = *c;
    } else {
      return "bad ipvs option " + k;
    }
    return "";
  }

  std::string match_option(Physdev& ph, const std::string& k) {
    const std::string* v = nullptr;
    if (k == "--physdev-in" && (v = arg())) ph.in = *v, ph.in_negate = neg_;
    else if (k == "--physdev-out" && (v = arg())) ph.out = *v, ph.out_negate = neg_;
    else if (k == "--physdev-is-in") ph.is_in = neg_ ? Physdev::IsIn::kNo : Physdev::IsIn::kYes;
    else if (k == "--physdev-is-bridged") ph.bridged = neg_ ? Physdev::Bridged::kNotBridged : Physdev::Bridged::kBridged;
    else return "bad physdev option " + k;
    return "";
  }

  // ---- target options ----

  template <typename T>
  std::string target_option(T&, const std::string& k) {
    return "unexpected target option " + k;
  }

  std::string target_option(Reject& rj, const std::string& k) {
    const std::string* v = nullptr;
    if (k != "--reject-with") return "unexpected target option " + k;
    if (!(v = arg())) return "missing reject type";
    static const std::pair<const char*, RejectWith> kNames[] = {
        {"icmp-net-unreachable", RejectWith::kIcmpNetUnreachable},
        {"icmp-host-unreachable", RejectWith::kIcmpHostUnreachable},
        {"icmp-proto-unreachable", RejectWith::kIcmpProtoUnreachable},
        {"icmp-port-unreachable", RejectWith::kIcmpPortUnreachable},
        {"icmp-net-prohibited", RejectWith::kIcmpNetProhibited},
        {"icmp-host-prohibited", RejectWith::kIcmpHostProhibited},
        {"tcp-reset", RejectWith::kTcpReset},
        {"icmp-admin-prohibited", RejectWith::kIcmpAdminProhibited}};
    for (const auto& [n, w] : kNames) {
      if (*v == n) {
        rj.with = w;
        return "";
      }
    }
    return "bad reject type " + *v;
  }

  // As iptables' DNAT and SNAT: each its own address option; --random-fully is SNAT's only
  // (the kernel's DNAT ignores it, and iptables-save does not print it there).
  std::string target_option(Dnat& n, const std::string& k) { return nat_option(n, k, "--to-destination", false); }
  std::string target_option(Snat& n, const std::string& k) { return nat_option(n, k, "--to-source", true); }
  std::string nat_option(Nat& n, const std::string& k, const char* to, bool snat) {
    const std::string* v = nullptr;
    if (k == to) {
      if (!(v = arg()) || !parse_nat(*v, &n)) return "bad NAT address";
    } else if (k == "--random") n.random = true;
    else if (snat && k == "--random-fully") n.random_fully = true;
    else if (k == "--persistent") n.persistent = true;
    else return "bad NAT option " + k;
    return "";
  }

  std::string target_option(Masquerade& mq, const std::string& k) {
    const std::string* v = nullptr;
    if (k == "--to-ports") {
      PortRange pr;
      if (!(v = arg()) || !parse_range(*v, '-', &pr)) return "bad --to-ports";
      mq.to_ports = pr;
    } else if (k == "--random") mq.random = true;
    else if (k == "--random-fully") mq.random_fully = true;
    else return "bad MASQUERADE option " + k;
    return "";
  }

  std::string target_option(MarkTarget& mt, const std::string& k) {
    const std::string* v = nullptr;
    uint32_t a = 0, b = 0;
    if (!(v = arg())) return "missing mark";
    if (k == "--set-xmark" && parse_value_mask(*v, &a, &b)) mt = MarkTarget::SetXmark(a, b);
    else if (k == "--set-mark" && parse_value_mask(*v, &a, &b)) mt = MarkTarget::SetMark(a, b);
    else if (k == "--or-mark" && parse_u32(*v, &a)) mt = MarkTarget::OrMark(a);
    else if (k == "--and-mark" && parse_u32(*v, &a)) mt = MarkTarget::AndMark(a);
    else if (k == "--xor-mark" && parse_u32(*v, &a)) mt = MarkTarget::XorMark(a);
    else return "bad MARK option " + k;
    return "";
  }

  std::vector<std::string> t_;
  size_t i_ = 0;
  bool neg_ = false;
  bool have_target_ = false;
  std::string module_;  // the current -m
  Rule r_;
};

}  // namespace

Result<Rule> parse_rule(const std::string& args) {
  auto toks = tokenize(args);
  if (!toks) return toks.status();
  return RuleParser(std::move(*toks)).parse(args);
}

}  // namespace knode::iptables
