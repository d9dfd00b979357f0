#include "knode/proxy/model.h"

#include <algorithm>
#include <map>
#include <sstream>
#include <string_view>
#include <type_traits>

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

namespace {

// "ns/name" of "ns/name:port" (a port without a name has no colon).
std::string_view service_of(std::string_view port_name) { return port_name.substr(0, port_name.find(':')); }

}  // namespace

std::vector<const ServicePort*> find_ports(const ProxyState& state, const std::set<std::string>& names) {
  const auto& v = state.services;
  std::vector<const ServicePort*> found(names.size(), nullptr);
  size_t missing = 0, i = 0;
  for (const auto& name : names) {
    const std::string_view svc = service_of(name);
    // The first position whose service is not before `svc` (in an ordered state).
    size_t lo = 0, hi = v.size();
    while (lo < hi) {
      const size_t mid = lo + (hi - lo) / 2;
      if (service_of(v[mid].name) < svc) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    for (size_t j = lo; j < v.size() && service_of(v[j].name) == svc; ++j) {
      if (v[j].name == name) {
        found[i] = &v[j];
        break;
      }
    }
    if (found[i] == nullptr) ++missing;
    ++i;
  }
  if (missing > 0) {
    std::map<std::string_view, size_t> wanted;  // name -> its place in `found`
    i = 0;
    for (const auto& name : names) {
      if (found[i] == nullptr) wanted.emplace(name, i);
      ++i;
    }
    for (const auto& sp : v) {
      if (auto it = wanted.find(sp.name); it != wanted.end() && found[it->second] == nullptr) found[it->second] = &sp;
    }
  }
  std::erase(found, nullptr);
  std::sort(found.begin(), found.end());  // the state's order (they all point into one vector)
  return found;
}

namespace {

template <typename T>
void put(std::string& out, T v) {
  static_assert(std::is_trivially_copyable_v<T>);
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void put(std::string& out, const net::IPAddress& ip) {
  put(out, static_cast<uint8_t>(ip.family()));
  out.append(reinterpret_cast<const char*>(ip.bytes().data()), ip.is_v6() ? 16 : ip.is_v4() ? 4 : 0);
}
void put(std::string& out, const Endpoint& e) {
  put(out, e.ip);
  put(out, e.port);
  put(out, e.weight);
  put(out, static_cast<uint8_t>(e.ready | e.serving << 1 | e.terminating << 2 | e.local << 3));
}
void put(std::string& out, const net::Cidr& c) {
  put(out, c.address());
  put(out, static_cast<uint8_t>(c.prefix()));
}
template <typename T>
void put(std::string& out, const std::vector<T>& v) {
  put(out, static_cast<uint32_t>(v.size()));
  for (const auto& x : v) put(out, x);
}

}  // namespace

// Every field of ServicePort and Endpoint is written: one added to either must be added
// here too (these catch the sizes changing; the unit test, each field).
static_assert(sizeof(Endpoint) == 28, "a field added to proxy::Endpoint: encode it");
static_assert(sizeof(ServicePort) == 192, "a field added to proxy::ServicePort: encode it");

std::string encode(const ServicePort& s) {
  std::string out;
  out.reserve(64 + s.name.size() + 28 * (s.cluster_endpoints.size() + s.local_endpoints.size()));
  put(out, static_cast<uint32_t>(s.name.size()));
  out += s.name;
  put(out, static_cast<uint8_t>(s.protocol));
  put(out, s.cluster_ip);
  put(out, s.port);
  put(out, s.node_port);
  put(out, s.external_ips);
  put(out, s.load_balancer_ips);
  put(out, s.load_balancer_source_ranges);
  put(out, static_cast<uint8_t>(s.external_policy_local | s.internal_policy_local << 1 | s.has_any_endpoint << 2));
  put(out, s.health_check_node_port);
  put(out, s.affinity_timeout_seconds);
  put(out, s.cluster_endpoints);
  put(out, s.local_endpoints);
  out.shrink_to_fit();
  return out;
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
