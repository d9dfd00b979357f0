// Turns a Service and its EndpointSlices into the neutral model's ServicePorts: the one
// place where Kubernetes semantics (skipped service types, endpoint conditions, traffic
// policies, session affinity) become plain dataplane values.
#pragma once

#include <string>
#include <vector>

#include "knode/api/service.h"
#include "knode/proxy/model.h"

namespace knode::proxy {

struct NodeContext {
  std::string node_name;  // endpoints with this nodeName are local
};

// True for services a proxy programs nothing for: ExternalName, headless (clusterIP
// None) and not-yet-allocated ones (no clusterIP).
bool should_skip_service(const api::Service& svc);

// ServicePort name as kube-proxy prints it: "ns/name:port", or "ns/name" for an unnamed port.
std::string service_port_name(const api::Service& svc, const api::ServicePortSpec& port);

// One ServicePort per port of `svc` (IPv4), with endpoints taken from `slices` (the
// service's slices: same namespace, kubernetes.io/service-name label), sorted by name.
std::vector<ServicePort> build_service_ports(const api::Service& svc,
                                                 const std::vector<const api::EndpointSlice*>& slices,
                                                 const NodeContext& node);

}  // namespace knode::proxy
