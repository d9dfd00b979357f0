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

}  // namespace

Result<Rule> parse_rule(const std::string& args) {
  auto toks = tokenize(args);
  if (!toks) return toks.status();
  const auto& t = *toks;
  Rule r;
  bool neg = false;
  bool have_target = false;
  std::string module;  // current -m
  auto bad = [&](const std::string& why) {
    return Status::Error("parse iptables rule \"" + args + "\": " + why, EINVAL);
  };
  for (size_t i = 0; i < t.size(); ++i) {
    const std::string& k = t[i];
    auto arg = [&]() -> const std::string* { return i + 1 < t.size() ? &t[++i] : nullptr; };
    if (k == "!") {
      neg = true;
      continue;
    }
    const std::string* v = nullptr;
    if (k == "-s" || k == "-d") {
      if (!(v = arg())) return bad("missing address");
      auto c = net::Cidr::Parse(*v);
      if (!c && net::IPAddress::Parse(*v)) c = net::Cidr::Parse(*v + "/32");
      if (!c) return bad("bad address " + *v);
      (k == "-s" ? r.src : r.dst) = CidrMatch{*c, neg};
    } else if (k == "-i" || k == "-o") {
      if (!(v = arg())) return bad("missing interface");
      (k == "-i" ? r.in_iface : r.out_iface) = IfaceMatch{*v, neg};
    } else if (k == "-p") {
      if (!(v = arg())) return bad("missing protocol");
      if (*v == "tcp") r.protocol = Proto::kTCP;
      else if (*v == "udp") r.protocol = Proto::kUDP;
      else if (*v == "sctp") r.protocol = Proto::kSCTP;
      else return bad("unsupported protocol " + *v);
      r.protocol_negate = neg;
    } else if (k == "-m") {
      if (!(v = arg())) return bad("missing match name");
      module = *v;
      if (module == "comment") r.matches.push_back(Comment{});
      else if (module == "tcp" || module == "udp" || module == "sctp") r.matches.push_back(Port{});
      else if (module == "mark") r.matches.push_back(Mark{});
      else if (module == "addrtype") r.matches.push_back(AddrTypeMatch{});
      else if (module == "conntrack") r.matches.push_back(Conntrack{});
      else if (module == "statistic") r.matches.push_back(Statistic{});
      else if (module == "recent") r.matches.push_back(Recent{});
      else if (module == "physdev") r.matches.push_back(Physdev{});
      else if (module == "set") r.matches.push_back(SetMatch{});
      else if (module == "ipvs") r.matches.push_back(IpvsMatch{});
      else return bad("unsupported match " + module);
    } else if (k == "-j" || k == "-g") {
      if (!(v = arg())) return bad("missing target");
      have_target = true;
      module.clear();
      if (*v == "ACCEPT") r.target = Verdict::kAccept;
      else if (*v == "DROP") r.target = Verdict::kDrop;
      else if (*v == "RETURN") r.target = Verdict::kReturn;
      else if (*v == "REJECT") r.target = Reject{};
      else if (*v == "DNAT") r.target = Dnat{};
      else if (*v == "SNAT") r.target = Snat{};
      else if (*v == "MASQUERADE") r.target = Masquerade{};
      else if (*v == "MARK") r.target = MarkTarget{};
      else r.target = Jump{*v, k == "-g"};
    } else if (k.rfind("--", 0) == 0 && !have_target && !r.matches.empty()) {
      Match& m = r.matches.back();
      if (auto* c = std::get_if<Comment>(&m); c && k == "--comment") {
        if (!(v = arg())) return bad("missing comment");
        c->text = *v;
      } else if (auto* p = std::get_if<Port>(&m); p && (k == "--dport" || k == "--sport" ||
                                                        k == "--destination-port" ||
                                                        k == "--source-port")) {
        PortRange pr;
        if (!(v = arg()) || !parse_range(*v, ':', &pr)) return bad("bad port");
        if (k == "--dport" || k == "--destination-port") {
          p->dport = pr;
          p->dport_negate = neg;
        } else {
          p->sport = pr;
          p->sport_negate = neg;
        }
      } else if (auto* mk = std::get_if<Mark>(&m); mk && k == "--mark") {
        if (!(v = arg()) || !parse_value_mask(*v, &mk->value, &mk->mask)) return bad("bad mark");
        mk->negate = neg;
      } else if (auto* a = std::get_if<AddrTypeMatch>(&m)) {
        bool ok = true;
        if (k == "--src-type" && (v = arg())) {
          a->src_types = parse_flags(*v, kAddrNames, &ok);
          a->src_negate = neg;
        } else if (k == "--dst-type" && (v = arg())) {
          a->dst_types = parse_flags(*v, kAddrNames, &ok);
          a->dst_negate = neg;
        } else if (k == "--limit-iface-in") {
          a->limit_iface_in = true;
        } else if (k == "--limit-iface-out") {
          a->limit_iface_out = true;
        } else {
          ok = false;
        }
        if (!ok) return bad("bad addrtype option " + k);
      } else if (auto* ct = std::get_if<Conntrack>(&m); ct && k == "--ctstate") {
        bool ok = true;
        if (!(v = arg())) return bad("missing ctstate");
        ct->states = parse_flags(*v, kCtNames, &ok);
        ct->negate = neg;
        if (!ok) return bad("bad ctstate " + *v);
      } else if (auto* st = std::get_if<Statistic>(&m)) {
        if (k == "--mode") {
          if (!(v = arg()) || *v != "random") return bad("only --mode random");
        } else if (k == "--probability") {
          if (!(v = arg())) return bad("missing probability");
          bool n = neg;
          *st = Statistic::Random(std::strtod(v->c_str(), nullptr));
          st->negate = n;
        } else {
          return bad("bad statistic option " + k);
        }
      } else if (auto* rc = std::get_if<Recent>(&m)) {
        if (k == "--set") rc->mode = Recent::Mode::kSet, rc->negate = neg;
        else if (k == "--rcheck") rc->mode = Recent::Mode::kRcheck, rc->negate = neg;
        else if (k == "--update") rc->mode = Recent::Mode::kUpdate, rc->negate = neg;
        else if (k == "--remove") rc->mode = Recent::Mode::kRemove, rc->negate = neg;
        else if (k == "--reap") rc->reap = true;
        else if (k == "--rsource") rc->rdest = false;
        else if (k == "--rdest") rc->rdest = true;
        else if (k == "--seconds" && (v = arg())) {
          if (!parse_u32(*v, &rc->seconds)) return bad("bad seconds");
        } else if (k == "--hitcount" && (v = arg())) {
          if (!parse_u32(*v, &rc->hit_count)) return bad("bad hitcount");
        } else if (k == "--name" && (v = arg())) {
          rc->name = *v;
        } else if (k == "--mask" && (v = arg())) {
          auto ip = net::IPAddress::Parse(*v);
          if (!ip) return bad("bad mask");
          rc->mask = *ip;
        } else {
          return bad("bad recent option " + k);
        }
      } else if (auto* sm = std::get_if<SetMatch>(&m)) {
        if (k != "--match-set" || !(v = arg())) return bad("bad set option " + k);
        sm->name = *v;
        sm->negate = neg;
        if (!(v = arg()) || set_match_dims(*v) < 0) return bad("bad set directions");
        sm->dirs = *v;
      } else if (auto* iv = std::get_if<IpvsMatch>(&m)) {
        uint32_t n = 0;
        if (k == "--vproto" && (v = arg()) && parse_u32(*v, &n) && n > 0 && n < 256) {
          iv->vproto = static_cast<uint8_t>(n);
        } else if (k == "--vport" && (v = arg()) && parse_u32(*v, &n) && n > 0 && n < 65536) {
          iv->vport = static_cast<uint16_t>(n);
        } else if (k == "--vaddr" && (v = arg())) {
          auto c = net::Cidr::Parse(v->find('/') == std::string::npos ? *v + "/32" : *v);
          if (!c || !c->address().is_v4()) return bad("bad --vaddr");
          iv->vaddr = *c;
        } else {
          return bad("bad ipvs option " + k);
        }
      } else if (auto* ph = std::get_if<Physdev>(&m)) {
        if (k == "--physdev-in" && (v = arg())) ph->in = *v, ph->in_negate = neg;
        else if (k == "--physdev-out" && (v = arg())) ph->out = *v, ph->out_negate = neg;
        else if (k == "--physdev-is-in")
          ph->is_in = neg ? Physdev::IsIn::kNo : Physdev::IsIn::kYes;
        else if (k == "--physdev-is-bridged")
          ph->bridged = neg ? Physdev::Bridged::kNotBridged : Physdev::Bridged::kBridged;
        else return bad("bad physdev option " + k);
      } else {
        return bad("unexpected " + k + " for -m " + module);
      }
    } else if (k.rfind("--", 0) == 0 && have_target) {
      Target& tg = r.target;
      if (auto* rj = std::get_if<Reject>(&tg); rj && k == "--reject-with") {
        if (!(v = arg())) return bad("missing reject type");
        static const std::pair<const char*, RejectWith> kNames[] = {
            {"icmp-net-unreachable", RejectWith::kIcmpNetUnreachable},
            {"icmp-host-unreachable", RejectWith::kIcmpHostUnreachable},
            {"icmp-proto-unreachable", RejectWith::kIcmpProtoUnreachable},
            {"icmp-port-unreachable", RejectWith::kIcmpPortUnreachable},
            {"icmp-net-prohibited", RejectWith::kIcmpNetProhibited},
            {"icmp-host-prohibited", RejectWith::kIcmpHostProhibited},
            {"tcp-reset", RejectWith::kTcpReset},
            {"icmp-admin-prohibited", RejectWith::kIcmpAdminProhibited}};
        bool ok = false;
        for (const auto& [n, w] : kNames) {
          if (*v == n) rj->with = w, ok = true;
        }
        if (!ok) return bad("bad reject type " + *v);
      } else if (Nat* n = std::holds_alternative<Dnat>(tg) ? static_cast<Nat*>(&std::get<Dnat>(tg))
                          : std::holds_alternative<Snat>(tg) ? static_cast<Nat*>(&std::get<Snat>(tg))
                                                             : nullptr) {
        if (k == "--to-destination" || k == "--to-source") {
          if (!(v = arg()) || !parse_nat(*v, n)) return bad("bad NAT address");
        } else if (k == "--random") n->random = true;
        else if (k == "--random-fully") n->random_fully = true;
        else if (k == "--persistent") n->persistent = true;
        else return bad("bad NAT option " + k);
      } else if (auto* mq = std::get_if<Masquerade>(&tg)) {
        if (k == "--to-ports") {
          PortRange pr;
          if (!(v = arg()) || !parse_range(*v, '-', &pr)) return bad("bad --to-ports");
          mq->to_ports = pr;
        } else if (k == "--random") mq->random = true;
        else if (k == "--random-fully") mq->random_fully = true;
        else return bad("bad MASQUERADE option " + k);
      } else if (auto* mt = std::get_if<MarkTarget>(&tg)) {
        uint32_t a = 0, b = 0;
        if (!(v = arg())) return bad("missing mark");
        if (k == "--set-xmark" && parse_value_mask(*v, &a, &b)) *mt = MarkTarget::SetXmark(a, b);
        else if (k == "--set-mark" && parse_value_mask(*v, &a, &b)) *mt = MarkTarget::SetMark(a, b);
        else if (k == "--or-mark" && parse_u32(*v, &a)) *mt = MarkTarget::OrMark(a);
        else if (k == "--and-mark" && parse_u32(*v, &a)) *mt = MarkTarget::AndMark(a);
        else if (k == "--xor-mark" && parse_u32(*v, &a)) *mt = MarkTarget::XorMark(a);
        else return bad("bad MARK option " + k);
      } else {
        return bad("unexpected target option " + k);
      }
    } else {
      return bad("unexpected token " + k);
    }
    neg = false;
  }
  if (!have_target) return bad("no target (-j)");
  return r;
}

}  // namespace knode::iptables
