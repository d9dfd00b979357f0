// The neutral service model: what the proxy wants the kernel to do, with no Kubernetes
// API types in it. Built by proxy/service_ports.cc from Services and EndpointSlices,
// consumed by every proxy mode (proxy/iptables, proxy/ipvs). Plain values, comparable
// and printable.
#pragma once

#include <cstdint>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "knode/net.h"

namespace knode::proxy {

using net::Protocol;

// One endpoint of a service port, as traffic reaches it.
struct Endpoint {
  net::IPAddress ip;
  uint16_t port = 0;
  uint32_t weight = 1;
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  bool local = false;  // runs on this node

  std::string str() const;  // "10.244.0.5:8080"
  bool operator==(const Endpoint&) const = default;
};

// One port of one service: a cluster IP:port with everything that reaches the same
// endpoints (NodePort, external IPs, load-balancer IPs).
struct ServicePort {
  // Stable identity, "namespace/name:portname" (portname may be empty). Modes derive
  // their chain names from it and the protocol, as kube-proxy does.
  std::string name;
  Protocol protocol = Protocol::kTCP;
  net::IPAddress cluster_ip;
  uint16_t port = 0;
  uint16_t node_port = 0;  // 0: none
  std::vector<net::IPAddress> external_ips;
  std::vector<net::IPAddress> load_balancer_ips;
  std::vector<net::Cidr> load_balancer_source_ranges;  // empty: any source
  bool external_policy_local = false;  // externalTrafficPolicy: Local
  bool internal_policy_local = false;  // internalTrafficPolicy: Local
  uint16_t health_check_node_port = 0;
  uint32_t affinity_timeout_seconds = 0;  // 0: no ClientIP affinity

  // Endpoints usable for traffic from inside the cluster: ready ones, else
  // serving-but-terminating ones; only local ones when internal_policy_local.
  std::vector<Endpoint> cluster_endpoints;
  // Endpoints usable for external traffic when external_policy_local: the local subset,
  // chosen with the same ready/terminating rule.
  std::vector<Endpoint> local_endpoints;
  // True when the service has usable endpoints anywhere (local or not): with none, traffic
  // is rejected ("has no endpoints"); with some but none for a local policy, dropped.
  bool has_any_endpoint = false;

  bool has_external() const {
    return node_port != 0 || !external_ips.empty() || !load_balancer_ips.empty();
  }
  // Endpoints external traffic goes to.
  const std::vector<Endpoint>& external_endpoints() const {
    return external_policy_local ? local_endpoints : cluster_endpoints;
  }
  std::string str() const;  // "default/kubia:http 10.96.0.10:80/TCP"
  bool operator==(const ServicePort&) const = default;
};

// Everything a proxy mode needs for one sync.
struct ProxyState {
  // By service (namespace/name), each service's ports by (name, protocol): not sorted by
  // ServicePort::name across services ("ns/a-b:x" comes after "ns/a:x").
  std::vector<ServicePort> services;
  bool operator==(const ProxyState&) const = default;
};

// The service ports of `state` named in `names`, in the state's order; a name the state
// does not have (a port that went away) has none. The proxier's states are ordered by
// service ("ns/name", as a std::map orders strings) with each service's ports together:
// there a name is found by bisection on its service, O(log n). Names not found so (absent,
// or a state in another order) are looked for in one scan, so the result does not depend
// on the order, only its cost does.
std::vector<const ServicePort*> find_ports(const ProxyState& state, const std::set<std::string>& names);

// The service port as a compact byte string: two are equal exactly when the ServicePorts
// are (every field, the name included). For a mode that remembers what it programmed
// without keeping a copy of the model (~100 bytes a port for 10 endpoints, where the
// ServicePort with its vectors takes ~600).
std::string encode(const ServicePort& s);

std::ostream& operator<<(std::ostream& os, const Endpoint& e);
std::ostream& operator<<(std::ostream& os, const ServicePort& s);

}  // namespace knode::proxy
