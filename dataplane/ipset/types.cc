// Names and printing of the plain ipset values of include/knode/dataplane/ipset.h.
#include "knode/dataplane/ipset.h"

namespace knode::ipset {

namespace {
struct TypeName {
  SetType type;
  const char* name;
};
constexpr TypeName kTypes[] = {
    {SetType::kHashIp, "hash:ip"},
    {SetType::kHashIpPort, "hash:ip,port"},
    {SetType::kHashIpPortIp, "hash:ip,port,ip"},
    {SetType::kHashIpPortNet, "hash:ip,port,net"},
    {SetType::kHashNet, "hash:net"},
    {SetType::kBitmapPort, "bitmap:port"},
};
// ipset prints a full-length prefix as a bare address.
std::string net_str(const net::Cidr& c) {
  const int full = c.address().is_v6() ? 128 : 32;
  return c.prefix() == full ? c.address().str() : c.str();
}
}  // namespace

const char* to_string(SetType t) {
  for (const auto& n : kTypes) {
    if (n.type == t) return n.name;
  }
  return "?";
}

std::optional<SetType> parse_set_type(const std::string& name) {
  for (const auto& n : kTypes) {
    if (name == n.name) return n.type;
  }
  return std::nullopt;
}

std::string Entry::str(SetType type) const {
  const std::string proto_port =
      std::string(net::to_lower_string(protocol)) + ":" + std::to_string(port);
  switch (type) {
    case SetType::kHashIp: return ip.str();
    case SetType::kHashIpPort: return ip.str() + "," + proto_port;
    case SetType::kHashIpPortIp: return ip.str() + "," + proto_port + "," + ip2.str();
    case SetType::kHashIpPortNet: return ip.str() + "," + proto_port + "," + net_str(net);
    case SetType::kHashNet: return net_str(net);
    case SetType::kBitmapPort: return std::to_string(port);
  }
  return "?";
}

}  // namespace knode::ipset
