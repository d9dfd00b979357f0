#include "knode/proxy/model.h"

#include <sstream>

namespace knode::proxy {

std::string Endpoint::str() const {
  if (ip.is_v6()) return "[" + ip.str() + "]:" + std::to_string(port);
  return ip.str() + ":" + std::to_string(port);
}

std::string ServicePort::str() const {
  std::ostringstream os;
  os << name << ' ' << cluster_ip.str() << ':' << port << '/' << to_string(protocol);
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Endpoint& e) {
  os << e.str() << (e.ready ? "" : " !ready") << (e.terminating ? " terminating" : "")
     << (e.local ? " local" : "") << " w=" << e.weight;
  return os;
}

std::ostream& operator<<(std::ostream& os, const ServicePort& s) {
  os << s.str() << " nodePort=" << s.node_port << " endpoints=[";
  for (size_t i = 0; i < s.cluster_endpoints.size(); ++i) {
    if (i) os << ", ";
    os << s.cluster_endpoints[i];
  }
  return os << "]";
}

}  // namespace knode::proxy
