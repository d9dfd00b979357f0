// Turns a Service and its EndpointSlices into the neutral model's ServicePorts: the one
// place where Kubernetes semantics (skipped service types, endpoint conditions, traffic
// policies, session affinity) become plain dataplane values.
#pragma once

#include <optional>
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

// What the proxy keeps of a Service, in place of the object: its ServicePorts without
// endpoints, each with the port's name and protocol as the slices name them.
struct ServiceInfo {
  struct Port {
    ServicePort model;  // cluster_endpoints, local_endpoints and has_any_endpoint unset
    std::string name, protocol;  // the Service's port name and protocol
  };
  std::vector<Port> ports;  // empty: a service with nothing to program
};

// What the proxy keeps of an EndpointSlice: its ports and its IPv4 endpoints, with their
// conditions read (unset ready is ready, unset serving is ready) and whether they run on
// this node.
struct SliceInfo {
  struct Port {
    std::string name, protocol;  // unset: "" and TCP
    std::optional<int32_t> port;
  };
  struct Endpoint {  // 8 bytes: the proxy keeps 100,000s
    uint32_t ipv4 = 0;  // host order
    bool ready = true, serving = true, terminating = false, local = false;
    net::IPAddress ip() const { return net::IPAddress::V4(ipv4); }
  };
  std::vector<Port> ports;
  std::vector<Endpoint> endpoints;  // empty unless the slice's addressType is IPv4
};

ServiceInfo service_info(const api::Service& svc);
SliceInfo slice_info(const api::EndpointSlice& slice, const NodeContext& node);

// One ServicePort per port of the service (IPv4), with endpoints taken from `slices` (the
// service's slices: same namespace, kubernetes.io/service-name label), sorted by name.
std::vector<ServicePort> build_service_ports(const ServiceInfo& svc, const std::vector<const SliceInfo*>& slices);
std::vector<ServicePort> build_service_ports(const api::Service& svc,
                                             const std::vector<const api::EndpointSlice*>& slices,
                                             const NodeContext& node);

}  // namespace knode::proxy
