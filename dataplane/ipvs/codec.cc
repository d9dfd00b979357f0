#include "ipvs/codec.h"

#include <arpa/inet.h>
#include <linux/ip_vs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <bit>
#include <cstring>

namespace knode::ipvs::codec {

namespace {

constexpr size_t kAddrLen = 16;  // sizeof(union nf_inet_addr)

Status put_failed(const char* what) {
  return Status::Error(std::string("build IPVS message: no room for ") + what, ENOBUFS);
}

std::array<uint8_t, kAddrLen> addr_bytes(const net::IPAddress& ip) {
  std::array<uint8_t, kAddrLen> b{};
  std::memcpy(b.data(), ip.bytes().data(), ip.is_v4() ? 4 : 16);
  return b;
}

bool parse_address(nlattr* a, int family, net::IPAddress* out) {
  if (a == nullptr) return false;
  int len = nla_len(a);
  const auto* p = static_cast<const uint8_t*>(nla_data(a));
  if (family == AF_INET && len >= 4) {
    uint32_t be;
    std::memcpy(&be, p, 4);
    *out = net::IPAddress::V4(ntohl(be));
    return true;
  }
  if (family == AF_INET6 && len >= 16) {
    char text[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, p, text, sizeof(text));
    auto ip = net::IPAddress::Parse(text);
    if (!ip) return false;
    *out = *ip;
    return true;
  }
  return false;
}

// The parses below run under the policies that follow, so an attribute is long enough for
// its type when present; these check again because parse_timeouts takes a table its
// caller made.
uint32_t get_u32(nlattr* a, uint32_t dflt = 0) { return a && nla_len(a) >= 4 ? nla_get_u32(a) : dflt; }

// The kernel's own attribute types (ip_vs_ctl.c's ip_vs_*_policy, as linux/ip_vs.h
// describes them). libnl's nla_get_u16/u32/u64 and nla_get_string do not look at an
// attribute's length: under a policy nla_parse refuses a reply whose integer attribute is
// too short for its type or whose string lacks its NUL, so they never read past one.
// No maximum lengths: the kernel sends exactly these, and a longer one is still safe to read.
template <size_t N>
using Policy = std::array<nla_policy, N>;

const Policy<IPVS_SVC_ATTR_MAX + 1>& service_policy() {
  static const auto p = [] {
    Policy<IPVS_SVC_ATTR_MAX + 1> p{};
    p[IPVS_SVC_ATTR_AF].type = NLA_U16;
    p[IPVS_SVC_ATTR_PROTOCOL].type = NLA_U16;
    p[IPVS_SVC_ATTR_PORT].type = NLA_U16;  // ADDR, FLAGS: parse_address and parse_service check their length
    p[IPVS_SVC_ATTR_FWMARK].type = NLA_U32;
    p[IPVS_SVC_ATTR_SCHED_NAME].type = NLA_STRING;
    p[IPVS_SVC_ATTR_TIMEOUT].type = NLA_U32;
    p[IPVS_SVC_ATTR_NETMASK].type = NLA_U32;
    p[IPVS_SVC_ATTR_STATS].type = NLA_NESTED;
    p[IPVS_SVC_ATTR_PE_NAME].type = NLA_STRING;
    p[IPVS_SVC_ATTR_STATS64].type = NLA_NESTED;
    return p;
  }();
  return p;
}

const Policy<IPVS_DEST_ATTR_MAX + 1>& destination_policy() {
  static const auto p = [] {
    Policy<IPVS_DEST_ATTR_MAX + 1> p{};
    p[IPVS_DEST_ATTR_PORT].type = NLA_U16;
    for (int a : {IPVS_DEST_ATTR_FWD_METHOD, IPVS_DEST_ATTR_WEIGHT, IPVS_DEST_ATTR_U_THRESH, IPVS_DEST_ATTR_L_THRESH,
                  IPVS_DEST_ATTR_ACTIVE_CONNS, IPVS_DEST_ATTR_INACT_CONNS, IPVS_DEST_ATTR_PERSIST_CONNS}) {
      p[a].type = NLA_U32;
    }
    p[IPVS_DEST_ATTR_STATS].type = NLA_NESTED;
    p[IPVS_DEST_ATTR_ADDR_FAMILY].type = NLA_U16;
    p[IPVS_DEST_ATTR_STATS64].type = NLA_NESTED;
    p[IPVS_DEST_ATTR_TUN_TYPE].type = NLA_U8;
    p[IPVS_DEST_ATTR_TUN_PORT].type = NLA_U16;
    p[IPVS_DEST_ATTR_TUN_FLAGS].type = NLA_U16;
    return p;
  }();
  return p;
}

// IPVS_*_ATTR_STATS64 carries every counter as a u64; IPVS_*_ATTR_STATS as a u32 (the
// kernel sends INBYTES/OUTBYTES as u64 there too, which a u32 minimum accepts).
const Policy<IPVS_STATS_ATTR_MAX + 1>& stats_policy(bool is64) {
  auto make = [](uint16_t type) {
    Policy<IPVS_STATS_ATTR_MAX + 1> p{};
    for (int a = IPVS_STATS_ATTR_CONNS; a <= IPVS_STATS_ATTR_OUTBPS; ++a) p[a].type = type;
    return p;
  };
  static const auto p32 = make(NLA_U32);
  static const auto p64 = make(NLA_U64);
  return is64 ? p64 : p32;
}

}  // namespace

const nla_policy* cmd_policy() {
  static const auto p = [] {
    Policy<IPVS_CMD_ATTR_MAX + 1> p{};
    p[IPVS_CMD_ATTR_SERVICE].type = NLA_NESTED;
    p[IPVS_CMD_ATTR_DEST].type = NLA_NESTED;
    p[IPVS_CMD_ATTR_DAEMON].type = NLA_NESTED;
    p[IPVS_CMD_ATTR_TIMEOUT_TCP].type = NLA_U32;
    p[IPVS_CMD_ATTR_TIMEOUT_TCP_FIN].type = NLA_U32;
    p[IPVS_CMD_ATTR_TIMEOUT_UDP].type = NLA_U32;
    return p;
  }();
  return p.data();
}



int address_family(const net::IPAddress& ip) { return ip.is_v6() ? AF_INET6 : AF_INET; }

Status put_service(nl_msg* msg, const VirtualServer& vs, bool full) {
  if (!vs.address.valid()) return Status::Error("IPVS service " + vs.str() + ": no address", EINVAL);
  nlattr* nest = nla_nest_start(msg, IPVS_CMD_ATTR_SERVICE);
  if (nest == nullptr) return put_failed("service");
  const int af = address_family(vs.address);
  auto addr = addr_bytes(vs.address);
  if (nla_put_u16(msg, IPVS_SVC_ATTR_AF, static_cast<uint16_t>(af)) < 0 ||
      nla_put_u16(msg, IPVS_SVC_ATTR_PROTOCOL,
                  static_cast<uint16_t>(net::protocol_number(vs.protocol))) < 0 ||
      nla_put(msg, IPVS_SVC_ATTR_ADDR, kAddrLen, addr.data()) < 0 ||
      nla_put_u16(msg, IPVS_SVC_ATTR_PORT, htons(vs.port)) < 0) {
    return put_failed("service identity");
  }
  if (full) {
    if (vs.scheduler.empty() || vs.scheduler.size() >= IP_VS_SCHEDNAME_MAXLEN) {
      return Status::Error("IPVS service " + vs.str() + ": bad scheduler name '" +
                               vs.scheduler + "'", EINVAL);
    }
    const uint8_t bits = vs.effective_netmask();
    if (bits > (af == AF_INET ? 32 : 128)) {
      return Status::Error("IPVS service " + vs.str() + ": bad netmask /" +
                               std::to_string(bits), EINVAL);
    }
    // IPv4 carries a mask in network order, IPv6 a prefix length.
    uint32_t netmask = af == AF_INET6 ? bits
                                      : htonl(bits == 0 ? 0u : ~uint32_t{0} << (32 - bits));
    ip_vs_flags flags{vs.flags & kUserFlags, ~uint32_t{0}};
    if (nla_put_string(msg, IPVS_SVC_ATTR_SCHED_NAME, vs.scheduler.c_str()) < 0 ||
        nla_put(msg, IPVS_SVC_ATTR_FLAGS, sizeof(flags), &flags) < 0 ||
        nla_put_u32(msg, IPVS_SVC_ATTR_TIMEOUT, vs.timeout) < 0 ||
        nla_put_u32(msg, IPVS_SVC_ATTR_NETMASK, netmask) < 0) {
      return put_failed("service configuration");
    }
  }
  nla_nest_end(msg, nest);
  return Status::Ok();
}

Status put_destination(nl_msg* msg, const RealServer& rs, bool full) {
  if (!rs.address.valid()) return Status::Error("IPVS destination: no address", EINVAL);
  nlattr* nest = nla_nest_start(msg, IPVS_CMD_ATTR_DEST);
  if (nest == nullptr) return put_failed("destination");
  auto addr = addr_bytes(rs.address);
  if (nla_put(msg, IPVS_DEST_ATTR_ADDR, kAddrLen, addr.data()) < 0 ||
      nla_put_u16(msg, IPVS_DEST_ATTR_PORT, htons(rs.port)) < 0 ||
      nla_put_u16(msg, IPVS_DEST_ATTR_ADDR_FAMILY,
                  static_cast<uint16_t>(address_family(rs.address))) < 0) {
    return put_failed("destination identity");
  }
  if (full) {
    if (nla_put_u32(msg, IPVS_DEST_ATTR_FWD_METHOD, static_cast<uint32_t>(rs.forward)) < 0 ||
        nla_put_u32(msg, IPVS_DEST_ATTR_WEIGHT, rs.weight) < 0 ||
        nla_put_u32(msg, IPVS_DEST_ATTR_U_THRESH, rs.upper_threshold) < 0 ||
        nla_put_u32(msg, IPVS_DEST_ATTR_L_THRESH, rs.lower_threshold) < 0) {
      return put_failed("destination configuration");
    }
  }
  nla_nest_end(msg, nest);
  return Status::Ok();
}

Status put_timeouts(nl_msg* msg, const Timeouts& t) {
  if (nla_put_u32(msg, IPVS_CMD_ATTR_TIMEOUT_TCP, t.tcp) < 0 ||
      nla_put_u32(msg, IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, t.tcp_fin) < 0 ||
      nla_put_u32(msg, IPVS_CMD_ATTR_TIMEOUT_UDP, t.udp) < 0) {
    return put_failed("timeouts");
  }
  return Status::Ok();
}

Stats parse_stats(nlattr* nested, bool is64) {
  Stats s;
  if (nested == nullptr) return s;
  nlattr* tb[IPVS_STATS_ATTR_MAX + 1] = {};
  // A malformed nest reads as no statistics: they are informational only.
  if (nla_parse_nested(tb, IPVS_STATS_ATTR_MAX, nested, stats_policy(is64).data()) < 0) return s;
  auto get = [&](int i) -> uint64_t {
    if (tb[i] == nullptr) return 0;
    return is64 ? nla_get_u64(tb[i]) : nla_get_u32(tb[i]);
  };
  s.connections = get(IPVS_STATS_ATTR_CONNS);
  s.packets_in = get(IPVS_STATS_ATTR_INPKTS);
  s.packets_out = get(IPVS_STATS_ATTR_OUTPKTS);
  s.bytes_in = get(IPVS_STATS_ATTR_INBYTES);
  s.bytes_out = get(IPVS_STATS_ATTR_OUTBYTES);
  s.cps = get(IPVS_STATS_ATTR_CPS);
  s.pps_in = get(IPVS_STATS_ATTR_INPPS);
  s.pps_out = get(IPVS_STATS_ATTR_OUTPPS);
  s.bps_in = get(IPVS_STATS_ATTR_INBPS);
  s.bps_out = get(IPVS_STATS_ATTR_OUTBPS);
  return s;
}

Result<VirtualServer> parse_service(nlattr* nested) {
  if (nested == nullptr) return Status::Error("parse IPVS service: attribute missing", EPROTO);
  nlattr* tb[IPVS_SVC_ATTR_MAX + 1] = {};
  if (nla_parse_nested(tb, IPVS_SVC_ATTR_MAX, nested, service_policy().data()) < 0) {
    return Status::Error("parse IPVS service: malformed attributes", EPROTO);
  }
  if (tb[IPVS_SVC_ATTR_FWMARK] != nullptr && tb[IPVS_SVC_ATTR_ADDR] == nullptr) {
    return Status::Error("parse IPVS service: firewall-mark services are not supported",
                         EOPNOTSUPP);
  }
  if (!tb[IPVS_SVC_ATTR_AF] || !tb[IPVS_SVC_ATTR_PROTOCOL] || !tb[IPVS_SVC_ATTR_PORT]) {
    return Status::Error("parse IPVS service: identity missing", EPROTO);
  }
  VirtualServer vs;
  const int af = nla_get_u16(tb[IPVS_SVC_ATTR_AF]);
  if (!parse_address(tb[IPVS_SVC_ATTR_ADDR], af, &vs.address)) {
    return Status::Error("parse IPVS service: bad address", EPROTO);
  }
  if (!net::protocol_from_number(nla_get_u16(tb[IPVS_SVC_ATTR_PROTOCOL]), &vs.protocol)) {
    return Status::Error("parse IPVS service: unsupported protocol " +
                             std::to_string(nla_get_u16(tb[IPVS_SVC_ATTR_PROTOCOL])),
                         EPROTO);
  }
  vs.port = ntohs(nla_get_u16(tb[IPVS_SVC_ATTR_PORT]));
  if (tb[IPVS_SVC_ATTR_SCHED_NAME]) vs.scheduler = nla_get_string(tb[IPVS_SVC_ATTR_SCHED_NAME]);
  if (tb[IPVS_SVC_ATTR_FLAGS] && nla_len(tb[IPVS_SVC_ATTR_FLAGS]) >= int(sizeof(ip_vs_flags))) {
    ip_vs_flags f;
    std::memcpy(&f, nla_data(tb[IPVS_SVC_ATTR_FLAGS]), sizeof(f));
    vs.flags = f.flags;
  }
  vs.timeout = get_u32(tb[IPVS_SVC_ATTR_TIMEOUT]);
  if (tb[IPVS_SVC_ATTR_NETMASK]) {
    uint32_t raw = nla_get_u32(tb[IPVS_SVC_ATTR_NETMASK]);
    int bits = af == AF_INET6 ? int(raw) : std::popcount(ntohl(raw));
    // Keep "full length" as 0 so a parsed service compares equal to a default one.
    vs.netmask = bits == (af == AF_INET6 ? 128 : 32) ? 0 : static_cast<uint8_t>(bits);
  }
  if (tb[IPVS_SVC_ATTR_STATS64]) {
    vs.stats = parse_stats(tb[IPVS_SVC_ATTR_STATS64], true);
  } else {
    vs.stats = parse_stats(tb[IPVS_SVC_ATTR_STATS], false);
  }
  return vs;
}

Result<RealServer> parse_destination(nlattr* nested, int service_family) {
  if (nested == nullptr) return Status::Error("parse IPVS destination: attribute missing", EPROTO);
  nlattr* tb[IPVS_DEST_ATTR_MAX + 1] = {};
  if (nla_parse_nested(tb, IPVS_DEST_ATTR_MAX, nested, destination_policy().data()) < 0) {
    return Status::Error("parse IPVS destination: malformed attributes", EPROTO);
  }
  RealServer rs;
  int af = tb[IPVS_DEST_ATTR_ADDR_FAMILY] ? nla_get_u16(tb[IPVS_DEST_ATTR_ADDR_FAMILY])
                                          : service_family;
  if (!parse_address(tb[IPVS_DEST_ATTR_ADDR], af, &rs.address) || !tb[IPVS_DEST_ATTR_PORT]) {
    return Status::Error("parse IPVS destination: identity missing", EPROTO);
  }
  rs.port = ntohs(nla_get_u16(tb[IPVS_DEST_ATTR_PORT]));
  rs.forward = static_cast<ForwardMethod>(get_u32(tb[IPVS_DEST_ATTR_FWD_METHOD]) &
                                          IP_VS_CONN_F_FWD_MASK);
  rs.weight = get_u32(tb[IPVS_DEST_ATTR_WEIGHT]);
  rs.upper_threshold = get_u32(tb[IPVS_DEST_ATTR_U_THRESH]);
  rs.lower_threshold = get_u32(tb[IPVS_DEST_ATTR_L_THRESH]);
  rs.active_connections = get_u32(tb[IPVS_DEST_ATTR_ACTIVE_CONNS]);
  rs.inactive_connections = get_u32(tb[IPVS_DEST_ATTR_INACT_CONNS]);
  rs.persistent_connections = get_u32(tb[IPVS_DEST_ATTR_PERSIST_CONNS]);
  if (tb[IPVS_DEST_ATTR_STATS64]) {
    rs.stats = parse_stats(tb[IPVS_DEST_ATTR_STATS64], true);
  } else {
    rs.stats = parse_stats(tb[IPVS_DEST_ATTR_STATS], false);
  }
  return rs;
}

Timeouts parse_timeouts(nlattr* const* cmd_attrs) {
  Timeouts t;
  t.tcp = get_u32(cmd_attrs[IPVS_CMD_ATTR_TIMEOUT_TCP]);
  t.tcp_fin = get_u32(cmd_attrs[IPVS_CMD_ATTR_TIMEOUT_TCP_FIN]);
  t.udp = get_u32(cmd_attrs[IPVS_CMD_ATTR_TIMEOUT_UDP]);
  return t;
}

}  // namespace knode::ipvs::codec
