// Builds a Rule so that the code reads like the iptables line it becomes:
//   RuleBuilder().dst_host(vip).proto(Proto::kTCP).comment("web frontend").dport(80).jump("LB-WEB")
//   -> -d VIP/32 -p tcp -m comment --comment "web frontend" -m tcp --dport 80 -j LB-WEB
// Matches are kept in the order the calls come.
#pragma once

#include <string>
#include <utility>

#include "knode/dataplane/iptables/rule.h"

namespace knode::iptables {

struct RuleBuilder {
  Rule r;

  RuleBuilder& src(const net::Cidr& c, bool negate = false) { r.src = CidrMatch{c, negate}; return *this; }
  RuleBuilder& src_host(const net::IPAddress& ip) { return src(net::Cidr(ip, 32)); }
  RuleBuilder& dst(const net::Cidr& c, bool negate = false) { r.dst = CidrMatch{c, negate}; return *this; }
  RuleBuilder& dst_host(const net::IPAddress& ip) { return dst(net::Cidr(ip, 32)); }
  RuleBuilder& proto(Proto p) { r.protocol = p; return *this; }
  RuleBuilder& proto(net::Protocol p) { return proto(to_proto(p)); }
  RuleBuilder& comment(std::string text) { r.matches.push_back(Comment{std::move(text)}); return *this; }
  // -m tcp/udp/sctp (after proto()) with --dport, or bare.
  RuleBuilder& dport(uint16_t port) {
    Port p;
    p.dport = PortRange::One(port);
    r.matches.push_back(p);
    return *this;
  }
  RuleBuilder& proto_match() { r.matches.push_back(Port{}); return *this; }
  // -m addrtype [!] --src-type / --dst-type (AddrType bits).
  RuleBuilder& src_type(uint16_t types, bool negate = false) {
    return match(AddrTypeMatch{.src_types = types, .src_negate = negate});
  }
  RuleBuilder& dst_type(uint16_t types, bool negate = false) {
    return match(AddrTypeMatch{.dst_types = types, .dst_negate = negate});
  }
  RuleBuilder& ctstate(uint16_t states, bool negate = false) {
    r.matches.push_back(Conntrack{states, negate});
    return *this;
  }
  RuleBuilder& mark(uint32_t value, uint32_t mask, bool negate = false) {
    r.matches.push_back(Mark{value, mask, negate});
    return *this;
  }
  // -m set [!] --match-set NAME DIRS (the index is resolved later).
  RuleBuilder& set(std::string name, std::string dirs, bool negate = false) {
    SetMatch m;
    m.name = std::move(name);
    m.dirs = std::move(dirs);
    m.negate = negate;
    r.matches.push_back(std::move(m));
    return *this;
  }
  RuleBuilder& match(Match m) { r.matches.push_back(std::move(m)); return *this; }

  Rule jump(const std::string& chain) { r.target = Jump{chain}; return std::move(r); }
  Rule to(Target t) { r.target = std::move(t); return std::move(r); }
};

}  // namespace knode::iptables
