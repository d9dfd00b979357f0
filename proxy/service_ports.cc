#include "service_ports.h"

#include <algorithm>
#include <set>

#include "knode/log.h"

namespace knode::proxy {

bool should_skip_service(const api::Service& svc) {
  const auto& s = svc.spec;
  return s.type == "ExternalName" || s.cluster_ip.empty() || s.cluster_ip == "None";
}

std::string service_port_name(const api::Service& svc, const api::ServicePortSpec& port) {
  std::string name = svc.metadata.namespace_ + "/" + svc.metadata.name;
  if (!port.name.empty()) name += ":" + port.name;
  return name;
}

namespace {

net::Protocol protocol_of(const std::string& p) {
  if (p == "UDP") return net::Protocol::kUDP;
  if (p == "SCTP") return net::Protocol::kSCTP;
  return net::Protocol::kTCP;
}

// Endpoints of one service port from all slices, de-duplicated by address:port.
std::vector<proxy::Endpoint> collect_endpoints(const ServiceInfo::Port& port, const std::vector<const SliceInfo*>& slices) {
  std::vector<proxy::Endpoint> out;
  std::set<std::pair<net::IPAddress, uint16_t>> seen;
  for (const auto* es : slices) {
    // The slice port that serves this service port: same name and protocol.
    std::optional<int32_t> target;
    for (const auto& p : es->ports) {
      if (p.name == port.name && p.protocol == port.protocol) target = p.port;
    }
    if (!target || *target <= 0) continue;
    for (const auto& ep : es->endpoints) {
      const net::IPAddress ip = ep.ip();
      auto key = std::make_pair(ip, static_cast<uint16_t>(*target));
      if (!seen.insert(key).second) continue;
      proxy::Endpoint b;
      b.ip = ip;
      b.port = static_cast<uint16_t>(*target);
      b.ready = ep.ready;
      b.serving = ep.serving;
      b.terminating = ep.terminating;
      b.local = ep.local;
      out.push_back(b);
    }
  }
  std::sort(out.begin(), out.end(), [](const proxy::Endpoint& a, const proxy::Endpoint& b) {
    return std::tie(a.ip, a.port) < std::tie(b.ip, b.port);
  });
  return out;
}

// Ready endpoints; when there are none, serving-but-terminating ones (so connections
// drain gracefully instead of failing).
template <typename Pred>
std::vector<proxy::Endpoint> usable(const std::vector<proxy::Endpoint>& all, Pred keep) {
  std::vector<proxy::Endpoint> out;
  for (const auto& b : all) {
    if (keep(b) && b.ready) out.push_back(b);
  }
  if (out.empty()) {
    for (const auto& b : all) {
      if (keep(b) && b.serving && b.terminating) out.push_back(b);
    }
  }
  out.shrink_to_fit();  // the model keeps it: 10 endpoints in room for 16 is 1.7 MB at 10,000 services
  return out;
}

}  // namespace

ServiceInfo service_info(const api::Service& svc) {
  ServiceInfo out;
  if (should_skip_service(svc)) return out;
  const auto& s = svc.spec;
  auto cluster_ip = net::IPAddress::Parse(s.cluster_ip);
  if (!cluster_ip || !cluster_ip->is_v4()) {
    KLOGV(2, "skipping service without an IPv4 cluster IP")
        .kv("service", svc.metadata.namespace_ + "/" + svc.metadata.name);
    return out;
  }
  bool external_types = s.type == "NodePort" || s.type == "LoadBalancer";
  for (const auto& port : s.ports) {
    proxy::ServicePort sp;
    sp.name = service_port_name(svc, port);
    sp.protocol = protocol_of(port.protocol);
    sp.cluster_ip = *cluster_ip;
    sp.port = static_cast<uint16_t>(port.port);
    if (external_types) sp.node_port = static_cast<uint16_t>(port.node_port);
    for (const auto& e : s.external_ips) {
      if (auto ip = net::IPAddress::Parse(e); ip && ip->is_v4()) sp.external_ips.push_back(*ip);
    }
    if (s.type == "LoadBalancer") {
      for (const auto& ing : svc.status.load_balancer.ingress) {
        if (ing.ip_mode && *ing.ip_mode == "Proxy") continue;  // the LB proxies; nothing to do here
        if (auto ip = net::IPAddress::Parse(ing.ip); ip && ip->is_v4()) sp.load_balancer_ips.push_back(*ip);
      }
      for (const auto& r : s.load_balancer_source_ranges) {
        if (auto c = net::Cidr::Parse(r); c && c->address().is_v4()) sp.load_balancer_source_ranges.push_back(*c);
      }
    }
    sp.external_policy_local = sp.has_external() && s.external_traffic_policy == "Local";
    sp.internal_policy_local = s.internal_traffic_policy.value_or("Cluster") == "Local";
    if (sp.external_policy_local && s.type == "LoadBalancer") {
      sp.health_check_node_port = static_cast<uint16_t>(s.health_check_node_port);
    }
    if (s.session_affinity == "ClientIP") {
      sp.affinity_timeout_seconds = 10800;
      if (s.session_affinity_config && s.session_affinity_config->client_ip &&
          s.session_affinity_config->client_ip->timeout_seconds) {
        sp.affinity_timeout_seconds =
            static_cast<uint32_t>(*s.session_affinity_config->client_ip->timeout_seconds);
      }
    }
    out.ports.push_back(ServiceInfo::Port{std::move(sp), port.name, port.protocol});
  }
  out.ports.shrink_to_fit();
  return out;
}

SliceInfo slice_info(const api::EndpointSlice& es, const NodeContext& node) {
  SliceInfo out;
  for (const auto& p : es.ports) out.ports.push_back(SliceInfo::Port{p.name.value_or(""), p.protocol.value_or("TCP"), p.port});
  out.ports.shrink_to_fit();
  if (es.address_type != "IPv4") return out;
  for (const auto& ep : es.endpoints) {
    if (ep.addresses.empty()) continue;
    auto ip = net::IPAddress::Parse(ep.addresses.front());
    if (!ip || !ip->is_v4()) continue;
    SliceInfo::Endpoint e;
    e.ipv4 = ip->v4_host();
    // Unset conditions mean ready (and serving = ready), as EndpointSlice consumers read them.
    e.ready = ep.conditions.ready.value_or(true);
    e.serving = ep.conditions.serving.value_or(e.ready);
    e.terminating = ep.conditions.terminating.value_or(false);
    e.local = ep.node_name && !node.node_name.empty() && *ep.node_name == node.node_name;
    out.endpoints.push_back(e);
  }
  out.endpoints.shrink_to_fit();
  return out;
}

std::vector<proxy::ServicePort> build_service_ports(const ServiceInfo& svc, const std::vector<const SliceInfo*>& slices) {
  std::vector<proxy::ServicePort> out;
  out.reserve(svc.ports.size());
  for (const auto& port : svc.ports) {
    proxy::ServicePort sp = port.model;
    auto all = collect_endpoints(port, slices);
    bool internal_local = sp.internal_policy_local;
    sp.cluster_endpoints = usable(all, [&](const proxy::Endpoint& b) { return !internal_local || b.local; });
    sp.local_endpoints = usable(all, [](const proxy::Endpoint& b) { return b.local; });
    sp.has_any_endpoint = std::any_of(all.begin(), all.end(), [](const proxy::Endpoint& b) {
      return b.ready || (b.serving && b.terminating);
    });
    out.push_back(std::move(sp));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.name, a.protocol) < std::tie(b.name, b.protocol);
  });
  return out;
}

std::vector<proxy::ServicePort> build_service_ports(const api::Service& svc,
                                                    const std::vector<const api::EndpointSlice*>& slices,
                                                    const NodeContext& node) {
  std::vector<SliceInfo> infos;
  infos.reserve(slices.size());
  for (const auto* es : slices) infos.push_back(slice_info(*es, node));
  std::vector<const SliceInfo*> ptrs;
  for (const auto& i : infos) ptrs.push_back(&i);
  return build_service_ports(service_info(svc), ptrs);
}

}  // namespace knode::proxy
