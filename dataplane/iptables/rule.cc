// Printing and validating Rule values; the byte encoding lives in rule_encode.cc.
#include "knode/dataplane/iptables/rule.h"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace knode::iptables {

const char* to_string(Proto p) {
  switch (p) {
    case Proto::kTCP: return "tcp";
    case Proto::kUDP: return "udp";
    case Proto::kSCTP: return "sctp";
    case Proto::kNone: break;
  }
  return "";
}

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::kAccept: return "ACCEPT";
    case Verdict::kDrop: return "DROP";
    case Verdict::kReturn: return "RETURN";
  }
  return "?";
}

Statistic Statistic::Random(double p) {
  Statistic s;
  if (p < 0) p = 0;
  if (p > 1) p = 1;
  // As libxt_statistic does: lround(0x80000000 * p).
  s.probability = static_cast<uint32_t>(std::lround(2147483648.0 * p));
  return s;
}

namespace {

// xtables_save_string: bare when only [A-Za-z0-9_-], else double-quoted with ", \ and '
// escaped by a backslash.
void save_string_arg(std::string& out, const std::string& v) {
  bool bare = !v.empty();
  for (char c : v) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) {
      bare = false;
      break;
    }
  }
  out += ' ';
  if (bare) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  out += '"';
}

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

std::string ports(const PortRange& r, char sep) {
  std::string s = std::to_string(r.first);
  if (r.last != r.first) s += sep + std::to_string(r.last);
  return s;
}

void save_cidr(std::string& out, char letter, const std::optional<CidrMatch>& c) {
  if (!c) return;
  if (c->negate) out += " !";
  out += " -";
  out += letter;
  out += ' ';
  out += c->cidr.address().str() + "/" + std::to_string(c->cidr.prefix());
}

void save_iface(std::string& out, char letter, const std::optional<IfaceMatch>& i) {
  if (!i) return;
  if (i->negate) out += " !";
  out += " -";
  out += letter;
  out += ' ';
  out += i->name;
}

const char* const kAddrTypeNames[] = {"UNSPEC",    "UNICAST",   "LOCAL",       "BROADCAST",
                                      "ANYCAST",   "MULTICAST", "BLACKHOLE",   "UNREACHABLE",
                                      "PROHIBIT",  "THROW",     "NAT",         "XRESOLVE"};

std::string addr_types(uint16_t mask) {
  std::string s;
  for (int i = 0; i < 12; ++i) {
    if (mask & (1u << i)) {
      if (!s.empty()) s += ',';
      s += kAddrTypeNames[i];
    }
  }
  return s;
}

std::string ct_states(uint16_t mask) {
  // libxt_conntrack's print_state order.
  static const std::pair<uint16_t, const char*> kOrder[] = {
      {kCtInvalid, "INVALID"}, {kCtNew, "NEW"},           {kCtRelated, "RELATED"},
      {kCtEstablished, "ESTABLISHED"}, {kCtUntracked, "UNTRACKED"}, {kCtSnat, "SNAT"},
      {kCtDnat, "DNAT"}};
  std::string s;
  for (const auto& [bit, name] : kOrder) {
    if (mask & bit) {
      if (!s.empty()) s += ',';
      s += name;
    }
  }
  return s;
}

struct MatchSaver {
  std::string& out;
  Proto proto;

  void operator()(const Comment& m) {
    out += " -m comment --comment";
    save_string_arg(out, m.text);
  }
  void operator()(const Port& m) {
    out += " -m ";
    out += to_string(proto);
    if (m.sport) {
      if (m.sport_negate) out += " !";
      out += " --sport " + ports(*m.sport, ':');
    }
    if (m.dport) {
      if (m.dport_negate) out += " !";
      out += " --dport " + ports(*m.dport, ':');
    }
  }
  void operator()(const Mark& m) {
    out += " -m mark";
    if (m.negate) out += " !";
    out += " --mark " + hex(m.value);
    if (m.mask != 0xffffffffu) out += "/" + hex(m.mask);
  }
  void operator()(const AddrTypeMatch& m) {
    out += " -m addrtype";
    if (m.src_types) {
      if (m.src_negate) out += " !";
      out += " --src-type " + addr_types(m.src_types);
    }
    if (m.dst_types) {
      if (m.dst_negate) out += " !";
      out += " --dst-type " + addr_types(m.dst_types);
    }
    if (m.limit_iface_in) out += " --limit-iface-in";
    if (m.limit_iface_out) out += " --limit-iface-out";
  }
  void operator()(const Conntrack& m) {
    out += " -m conntrack";
    if (m.negate) out += " !";
    out += " --ctstate " + ct_states(m.states);
  }
  void operator()(const Statistic& m) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " --probability %.11f", m.probability / 2147483648.0);
    out += " -m statistic --mode random";
    if (m.negate) out += " !";
    out += buf;
  }
  void operator()(const Recent& m) {
    out += " -m recent";
    if (m.negate) out += " !";
    switch (m.mode) {
      case Recent::Mode::kSet: out += " --set"; break;
      case Recent::Mode::kRcheck: out += " --rcheck"; break;
      case Recent::Mode::kUpdate: out += " --update"; break;
      case Recent::Mode::kRemove: out += " --remove"; break;
    }
    if (m.seconds) out += " --seconds " + std::to_string(m.seconds);
    if (m.reap) out += " --reap";
    if (m.hit_count) out += " --hitcount " + std::to_string(m.hit_count);
    out += " --name " + m.name;
    out += " --mask " + m.mask.str();
    out += m.rdest ? " --rdest" : " --rsource";
  }
  void operator()(const SetMatch& m) {
    out += " -m set";
    if (m.negate) out += " !";
    out += " --match-set " + m.name + " " + m.dirs;
  }
  void operator()(const IpvsMatch& m) {
    out += " -m ipvs";
    if (m.vproto) out += " --vproto " + std::to_string(m.vproto);
    if (m.vaddr) {
      out += " --vaddr " + m.vaddr->address().str();
      if (m.vaddr->prefix() != 32) out += "/" + std::to_string(m.vaddr->prefix());
    }
    if (m.vport) out += " --vport " + std::to_string(m.vport);
  }
  void operator()(const Physdev& m) {
    out += " -m physdev";
    if (m.is_in != Physdev::IsIn::kAny) {
      if (m.is_in == Physdev::IsIn::kNo) out += " !";
      out += " --physdev-is-in";
    }
    if (!m.in.empty()) {
      if (m.in_negate) out += " !";
      out += " --physdev-in " + m.in;
    }
    if (!m.out.empty()) {
      if (m.out_negate) out += " !";
      out += " --physdev-out " + m.out;
    }
    if (m.bridged != Physdev::Bridged::kAny) {
      if (m.bridged == Physdev::Bridged::kNotBridged) out += " !";
      out += " --physdev-is-bridged";
    }
  }
};

const char* reject_name(RejectWith w) {
  switch (w) {
    case RejectWith::kIcmpNetUnreachable: return "icmp-net-unreachable";
    case RejectWith::kIcmpHostUnreachable: return "icmp-host-unreachable";
    case RejectWith::kIcmpProtoUnreachable: return "icmp-proto-unreachable";
    case RejectWith::kIcmpPortUnreachable: return "icmp-port-unreachable";
    case RejectWith::kIcmpNetProhibited: return "icmp-net-prohibited";
    case RejectWith::kIcmpHostProhibited: return "icmp-host-prohibited";
    case RejectWith::kTcpReset: return "tcp-reset";
    case RejectWith::kIcmpAdminProhibited: return "icmp-admin-prohibited";
  }
  return "?";
}

void save_nat(std::string& out, const char* option, const Nat& n, bool snat) {
  out += option;
  out += ' ';
  out += n.ip.str();
  if (n.ports) out += ":" + ports(*n.ports, '-');
  if (n.random) out += " --random";
  if (snat && n.random_fully) out += " --random-fully";
  if (n.persistent) out += " --persistent";
}

struct TargetSaver {
  std::string& out;

  void operator()(const Jump& t) { out += (t.go_to ? " -g " : " -j ") + t.chain; }
  void operator()(const Verdict& v) {
    out += " -j ";
    out += to_string(v);
  }
  void operator()(const Reject& t) {
    out += " -j REJECT --reject-with ";
    out += reject_name(t.with);
  }
  void operator()(const Dnat& t) {
    out += " -j DNAT";
    save_nat(out, " --to-destination", t, false);
  }
  void operator()(const Snat& t) {
    out += " -j SNAT";
    save_nat(out, " --to-source", t, true);
  }
  void operator()(const Masquerade& t) {
    out += " -j MASQUERADE";
    if (t.to_ports) out += " --to-ports " + ports(*t.to_ports, '-');
    if (t.random) out += " --random";
    if (t.random_fully) out += " --random-fully";
  }
  void operator()(const MarkTarget& t) {
    out += " -j MARK --set-xmark " + hex(t.value) + "/" + hex(t.mask);
  }
};

// A name iptables-save prints bare (chains, sets, recent lists, interfaces): no blank or
// quote in it, or the saved line would not read back as the same rule.
bool bare_word(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == '"' || c == '\'' ||
        c == '\\') {
      return false;
    }
  }
  return true;
}

bool iface_ok(const IfaceMatch& i) { return bare_word(i.name) && i.name.size() < 16; }

}  // namespace

std::string Rule::save_string(const std::string& chain) const {
  std::string out;
  out.reserve(160);
  out += "-A ";
  out += chain;
  save_cidr(out, 's', src);
  save_cidr(out, 'd', dst);
  save_iface(out, 'i', in_iface);
  save_iface(out, 'o', out_iface);
  if (protocol != Proto::kNone) {
    if (protocol_negate) out += " !";
    out += " -p ";
    out += to_string(protocol);
  }
  MatchSaver ms{out, protocol};
  for (const auto& m : matches) std::visit(ms, m);
  std::visit(TargetSaver{out}, target);
  return out;
}

Status Rule::validate() const {
  auto bad = [&](const std::string& why) {
    return Status::Error("invalid iptables rule \"" + save_string("?") + "\": " + why,
                         EINVAL);
  };
  for (const auto* c : {&src, &dst}) {
    if (*c && !(*c)->cidr.address().is_v4()) return bad("only IPv4 addresses");
  }
  for (const auto* i : {&in_iface, &out_iface}) {
    if (*i && !iface_ok(**i)) return bad("interface name must have 1..15 bytes, none blank or a quote");
  }
  for (const auto& m : matches) {
    if (const auto* p = std::get_if<Port>(&m)) {
      if (protocol == Proto::kNone || protocol_negate) return bad("port match needs -p");
      if (!p->sport && !p->dport && protocol == Proto::kSCTP) {
        // iptables accepts a bare -m sctp; so do we.
      }
    } else if (const auto* c = std::get_if<Comment>(&m)) {
      if (c->text.size() > 255) return bad("comment longer than 255 bytes");
    } else if (const auto* r = std::get_if<Recent>(&m)) {
      if (!bare_word(r->name) || r->name.size() >= 200) {
        return bad("recent name must have 1..199 bytes, none blank or a quote");
      }
      if (!r->mask.is_v4()) return bad("recent mask must be IPv4");
    } else if (const auto* ph = std::get_if<Physdev>(&m)) {
      if (ph->in.size() > 15 || ph->out.size() > 15 || (!ph->in.empty() && !bare_word(ph->in)) ||
          (!ph->out.empty() && !bare_word(ph->out))) {
        return bad("physdev interface name must have 1..15 bytes, none blank or a quote");
      }
    } else if (const auto* ct = std::get_if<Conntrack>(&m)) {
      if (ct->states == 0) return bad("conntrack match needs a state");
    } else if (const auto* iv = std::get_if<IpvsMatch>(&m)) {
      if (!iv->vaddr && !iv->vproto && !iv->vport) return bad("ipvs match needs --vaddr, --vproto or --vport");
      // Only what iptables encodes the same way: one IPv4 address.
      if (iv->vaddr && (!iv->vaddr->address().is_v4() || iv->vaddr->prefix() != 32)) {
        return bad("ipvs --vaddr must be one IPv4 address");
      }
    } else if (const auto* sm = std::get_if<SetMatch>(&m)) {
      if (!bare_word(sm->name) || sm->name.size() > 31) return bad("set name must have 1..31 bytes, none blank or a quote");
      if (set_match_dims(sm->dirs) < 0) return bad("set directions must be 1..3 of src/dst");
      if (sm->index == SetMatch::kUnresolved) return bad("set " + sm->name + " not resolved to its index");
    }
  }
  if (const auto* j = std::get_if<Jump>(&target)) {
    // As iptables: no blank, and not starting with '-' or '!' (an option, a negation).
    if (!bare_word(j->chain) || j->chain.size() > 28 || j->chain[0] == '-' || j->chain[0] == '!') {
      return bad("chain name must have 1..28 bytes, none blank or a quote, and not start with - or !");
    }
  }
  const Nat* nat = std::get_if<Dnat>(&target);
  if (!nat) nat = std::get_if<Snat>(&target);
  if (nat) {
    if (!nat->ip.is_v4()) return bad("NAT address must be IPv4");
    if (nat->ports && protocol == Proto::kNone) return bad("NAT port needs -p");
  }
  if (const auto* m = std::get_if<Masquerade>(&target)) {
    if (m->to_ports && protocol == Proto::kNone) return bad("--to-ports needs -p");
  }
  return Status::Ok();
}

int set_match_dims(const std::string& dirs, uint8_t* src_flags) {
  int dim = 0;
  uint8_t flags = 0;
  size_t at = 0;
  while (true) {
    size_t comma = dirs.find(',', at);
    std::string d = dirs.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    if (++dim > 3) return -1;
    // As libxt_set: dimension i (from 1) taken from the source sets bit i.
    if (d == "src") flags |= static_cast<uint8_t>(1u << dim);
    else if (d != "dst") return -1;
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  if (src_flags) *src_flags = flags;
  return dim;
}

std::ostream& operator<<(std::ostream& os, const Rule& r) { return os << r.save_string("<chain>"); }

}  // namespace knode::iptables
