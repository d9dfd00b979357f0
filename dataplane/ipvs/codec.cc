#include "ipvs/codec.h"

#include <arpa/inet.h>
#include <linux/ip_vs.h>
#include <netinet/in.h>
#include <sys/socket.h>

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

uint32_t get_u32(nlattr* a, uint32_t dflt = 0) { return a ? nla_get_u32(a) : dflt; }

}  // namespace



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
  if (nla_parse_nested(tb, IPVS_STATS_ATTR_MAX, nested, nullptr) < 0) return s;
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
  if (nla_parse_nested(tb, IPVS_SVC_ATTR_MAX, nested, nullptr) < 0) {
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
  if (nla_parse_nested(tb, IPVS_DEST_ATTR_MAX, nested, nullptr) < 0) {
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
