// The EndpointSlices a Service should have, given the pods of its namespace: the pure part
// of the standalone EndpointSlice controller, following upstream's endpointslice
// reconciler (k8s.io/endpointslice). No store, no I/O; the caller passes what the previous
// computation produced, so names and the placement of endpoints stay stable.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "knode/api/object.h"

namespace knode::kubelet {

inline constexpr const char* kManagedByLabel = "endpointslice.kubernetes.io/managed-by";
// The managed-by value of the slices knode computes (upstream's controller writes
// "endpointslice-controller.k8s.io").
inline constexpr const char* kEndpointSliceControllerName = "endpointslice-controller.knode.io";
inline constexpr const char* kHeadlessServiceLabel = "service.kubernetes.io/headless";
inline constexpr const char* kZoneLabel = "topology.kubernetes.io/zone";
inline constexpr size_t kDefaultMaxEndpointsPerSlice = 100;  // --max-endpoints-per-slice

// Whether slices are computed for `svc`: it has a selector and is not ExternalName.
// Services without a selector get their slices (or Endpoints) from manifests.
bool manages_endpoint_slices(const api::Service& svc);

// spec.selector (equality terms, all must hold) against a pod's labels.
bool selector_matches(const api::StringMap& selector, const api::StringMap& labels);

// The pod's Ready condition is True.
bool is_pod_ready(const api::Pod& pod);

// The port `port` reaches on `pod`: targetPort when it is a number; when it is a name, the
// container port of that name and protocol (containers, then sidecar init containers).
// nullopt when the pod has no such port.
std::optional<int32_t> find_target_port(const api::Pod& pod, const api::ServicePortSpec& port);

// "IPv4" and/or "IPv6": spec.ipFamilies; without them, the families of the cluster IPs
// (as the API server defaults them); headless or unallocated services get both.
std::vector<std::string> service_address_types(const api::Service& svc);

struct SliceContext {
  // The nodeName of pods that have none. In standalone mode every pod in the store runs
  // on this node; empty leaves nodeName unset.
  std::string node_name;
  // The topology.kubernetes.io/zone label of a node, if any.
  std::function<std::optional<std::string>(const std::string& node)> zone_of;
  size_t max_endpoints_per_slice = kDefaultMaxEndpointsPerSlice;
};

// The endpoints of one address type that share one port list: the slices of a service are
// these groups cut into pieces of at most max_endpoints_per_slice.
struct EndpointGroup {
  std::string address_type;
  std::vector<api::EndpointPort> ports;  // by name, then protocol, then port
  std::vector<api::Endpoint> endpoints;  // by address, then pod
  bool operator==(const EndpointGroup&) const = default;
};

// The groups of `svc` from the pods of its namespace (any order; pods the selector does not
// match, terminal pods and pods without an IP are left out), by address type then ports.
// A pod whose named targetPort resolves differently lands in another group, as upstream.
// `problems` (if given) receives one line per input that could not be used, naming the
// pod or service and the field.
std::vector<EndpointGroup> desired_endpoints(const api::Service& svc,
                                             const std::vector<const api::Pod*>& pods,
                                             const SliceContext& ctx,
                                             std::vector<std::string>* problems = nullptr);

// What a computation starts from.
struct SliceState {
  // The slices the previous computation produced for this service (as held now).
  std::vector<api::EndpointSlice> current;
  // Whether a name in the service's namespace is held by a slice other than `current`
  // (another service's, or one a manifest provides). Unset means none is.
  std::function<bool(const std::string& name)> name_taken;
};

// The groups cut into named slices, as upstream places them: an endpoint stays in the
// slice it was in, new endpoints fill slices that have room, then new slices are made;
// a new slice takes the name of a dropped one of the same address type before a fresh
// name. An address type without endpoints gets one placeholder slice (no ports, no
// endpoints). Slices carry the service's labels, kubernetes.io/service-name, managed-by
// and an owner reference to the service. Sorted by name.
std::vector<api::EndpointSlice> place_endpoints(const api::Service& svc,
                                                const std::vector<EndpointGroup>& groups,
                                                const SliceState& state, size_t max_endpoints);

// desired_endpoints, then place_endpoints; empty when !manages_endpoint_slices(svc).
std::vector<api::EndpointSlice> desired_endpoint_slices(
    const api::Service& svc, const std::vector<const api::Pod*>& pods, const SliceContext& ctx,
    const SliceState& state, std::vector<std::string>* problems = nullptr);

// A fresh slice name for a service: "<service>-" and five characters derived from the
// service and `attempt`, so the same service gets the same names in the same order.
std::string generated_slice_name(const api::Service& svc, int attempt);

}  // namespace knode::kubelet
