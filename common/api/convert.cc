#include "knode/api/convert.h"

#include "knode/net.h"

namespace knode::api {

std::vector<EndpointSlice> endpoints_to_slices(const Endpoints& ep) {
  std::vector<EndpointSlice> out;
  for (size_t i = 0; i < ep.subsets.size(); ++i) {
    const auto& ss = ep.subsets[i];
    for (const char* family : {"IPv4", "IPv6"}) {
      EndpointSlice es;
      es.metadata.namespace_ = ep.metadata.namespace_;
      es.metadata.name = ep.metadata.name + "-mirror-" + std::to_string(i) +
                         (std::string(family) == "IPv6" ? "-v6" : "");
      es.metadata.labels[EndpointSlice::kServiceNameLabel] = ep.metadata.name;
      es.address_type = family;
      auto add = [&](const EndpointAddress& a, bool ready) {
        auto ip = net::IPAddress::Parse(a.ip);
        if (!ip || ip->is_v4() != (std::string(family) == "IPv4")) return;
        Endpoint e;
        e.addresses.push_back(a.ip);
        e.conditions.ready = ready;
        e.conditions.serving = ready;
        e.conditions.terminating = false;
        if (!a.hostname.empty()) e.hostname = a.hostname;
        e.node_name = a.node_name;
        e.target_ref = a.target_ref;
        es.endpoints.push_back(std::move(e));
      };
      for (const auto& a : ss.addresses) add(a, true);
      for (const auto& a : ss.not_ready_addresses) add(a, false);
      if (es.endpoints.empty()) continue;
      for (const auto& p : ss.ports) {
        EndpointPort port;
        port.name = p.name;
        port.port = p.port;
        port.protocol = p.protocol;
        port.app_protocol = p.app_protocol;
        es.ports.push_back(std::move(port));
      }
      out.push_back(std::move(es));
    }
  }
  return out;
}

}  // namespace knode::api
