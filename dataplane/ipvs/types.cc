// Printing and comparing the plain IPVS values of include/knode/dataplane/ipvs.h.
#include <ostream>

#include "knode/dataplane/ipvs.h"

namespace knode::ipvs {

namespace {
std::string host_port(const net::IPAddress& ip, uint16_t port) {
  if (ip.is_v6()) return "[" + ip.str() + "]:" + std::to_string(port);
  return ip.str() + ":" + std::to_string(port);
}
}  // namespace

std::string VirtualServer::str() const {
  return host_port(address, port) + "/" + net::to_string(protocol);
}

bool VirtualServer::same_config(const VirtualServer& o) const {
  return same_key(o) && scheduler == o.scheduler &&
         (flags & kUserFlags) == (o.flags & kUserFlags) && timeout == o.timeout &&
         effective_netmask() == o.effective_netmask();
}

std::string RealServer::str() const { return host_port(address, port); }

const char* to_string(ForwardMethod m) {
  switch (m) {
    case ForwardMethod::kMasquerade: return "Masq";
    case ForwardMethod::kLocal: return "Local";
    case ForwardMethod::kTunnel: return "Tunnel";
    case ForwardMethod::kDirectRoute: return "Route";
  }
  return "?";
}

std::ostream& operator<<(std::ostream& os, const VirtualServer& vs) {
  os << vs.str() << " " << vs.scheduler;
  if (vs.flags & kFlagPersistent) os << " persistent " << vs.timeout;
  if (vs.netmask) os << " mask /" << int(vs.netmask);
  if (vs.flags & kFlagShFallback) os << " sh-fallback";
  if (vs.flags & kFlagShPort) os << " sh-port";
  return os;
}

std::ostream& operator<<(std::ostream& os, const RealServer& rs) {
  return os << rs.str() << " " << to_string(rs.forward) << " weight " << rs.weight
            << " active " << rs.active_connections << " inactive "
            << rs.inactive_connections;
}

}  // namespace knode::ipvs
