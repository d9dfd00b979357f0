// core/v1 Service, discovery.k8s.io/v1 EndpointSlice and core/v1 Endpoints.
#pragma once

#include "knode/api/box.h"
#include "knode/api/meta.h"

namespace knode::api {

struct ServicePortSpec {
  std::string name, protocol, app_protocol;  // protocol defaulted to TCP
  int32_t port = 0;
  IntOrString target_port;  // defaulted to port
  int32_t node_port = 0;
  KNODE_FIELDS(v("name", name); v("protocol", protocol); v("appProtocol", app_protocol);
               v("port", port); v("targetPort", target_port); v("nodePort", node_port))
  bool operator==(const ServicePortSpec&) const = default;
};
struct ClientIPConfig {
  std::optional<int32_t> timeout_seconds;  // defaulted to 10800
  KNODE_FIELDS(v("timeoutSeconds", timeout_seconds))
  bool operator==(const ClientIPConfig&) const = default;
};
struct SessionAffinityConfig {
  std::optional<ClientIPConfig> client_ip;
  KNODE_FIELDS(v("clientIP", client_ip))
  bool operator==(const SessionAffinityConfig&) const = default;
};
struct ServiceSpec {
  std::string type;  // defaulted to ClusterIP
  std::string cluster_ip;
  std::vector<std::string> cluster_ips;
  std::vector<ServicePortSpec> ports;
  StringMap selector;
  std::string session_affinity;  // defaulted to None
  std::optional<SessionAffinityConfig> session_affinity_config;
  std::vector<std::string> external_ips;
  std::string load_balancer_ip;
  std::vector<std::string> load_balancer_source_ranges;
  std::optional<std::string> load_balancer_class;
  std::string external_traffic_policy;  // Cluster (default) or Local
  std::optional<std::string> internal_traffic_policy;
  int32_t health_check_node_port = 0;
  std::string external_name;
  std::vector<std::string> ip_families;
  std::optional<std::string> ip_family_policy;
  bool publish_not_ready_addresses = false;
  std::optional<bool> allocate_load_balancer_node_ports;
  KNODE_FIELDS(v("type", type); v("clusterIP", cluster_ip); v("clusterIPs", cluster_ips);
               v("ports", ports); v("selector", selector);
               v("sessionAffinity", session_affinity);
               v("sessionAffinityConfig", session_affinity_config);
               v("externalIPs", external_ips); v("loadBalancerIP", load_balancer_ip);
               v("loadBalancerSourceRanges", load_balancer_source_ranges);
               v("loadBalancerClass", load_balancer_class);
               v("externalTrafficPolicy", external_traffic_policy);
               v("internalTrafficPolicy", internal_traffic_policy);
               v("healthCheckNodePort", health_check_node_port);
               v("externalName", external_name); v("ipFamilies", ip_families);
               v("ipFamilyPolicy", ip_family_policy);
               v("publishNotReadyAddresses", publish_not_ready_addresses);
               v("allocateLoadBalancerNodePorts", allocate_load_balancer_node_ports))
  bool operator==(const ServiceSpec&) const = default;
};
struct PortStatus {
  int32_t port = 0;
  std::string protocol;
  std::optional<std::string> error;
  KNODE_FIELDS(v("port", port); v("protocol", protocol); v("error", error))
  bool operator==(const PortStatus&) const = default;
};
struct LoadBalancerIngress {
  std::string ip, hostname;
  std::optional<std::string> ip_mode;
  std::vector<PortStatus> ports;
  KNODE_FIELDS(v("ip", ip); v("hostname", hostname); v("ipMode", ip_mode); v("ports", ports))
  bool operator==(const LoadBalancerIngress&) const = default;
};
struct LoadBalancerStatus {
  std::vector<LoadBalancerIngress> ingress;
  KNODE_FIELDS(v("ingress", ingress))
  bool operator==(const LoadBalancerStatus&) const = default;
};
struct ServiceStatus {
  LoadBalancerStatus load_balancer;
  KNODE_FIELDS(v("loadBalancer", load_balancer))
  bool operator==(const ServiceStatus&) const = default;
};
struct Service {
  static constexpr const char* kKind = "Service";
  static constexpr const char* kApiVersion = "v1";
  static constexpr bool kNamespaced = true;
  ObjectMeta metadata;
  ServiceSpec spec;
  ServiceStatus status;
  KNODE_FIELDS(v("metadata", metadata); v("spec", spec); v("status", status))
  bool operator==(const Service&) const = default;
};

// --- discovery.k8s.io/v1 ---
struct EndpointConditions {
  std::optional<bool> ready, serving, terminating;
  KNODE_FIELDS(v("ready", ready); v("serving", serving); v("terminating", terminating))
  bool operator==(const EndpointConditions&) const = default;
};
struct ForZone {
  std::string name;
  KNODE_FIELDS(v("name", name))
  bool operator==(const ForZone&) const = default;
};
struct EndpointHints {
  std::vector<ForZone> for_zones, for_nodes;
  KNODE_FIELDS(v("forZones", for_zones); v("forNodes", for_nodes))
  bool operator==(const EndpointHints&) const = default;
};
struct Endpoint {
  std::vector<std::string> addresses;
  EndpointConditions conditions;
  // Boxed: a proxy keeps 100,000s of endpoints, and an unset optional string cost 40
  // bytes where a Box costs 8 (set, about the same as the optional).
  Box<std::string> hostname, node_name, zone;
  Box<ObjectReference> target_ref;
  Box<EndpointHints> hints;
  KNODE_FIELDS(v("addresses", addresses); v("conditions", conditions); v("hostname", hostname);
               v("targetRef", target_ref); v("nodeName", node_name); v("zone", zone);
               v("hints", hints))
  bool operator==(const Endpoint&) const = default;
};
struct EndpointPort {
  std::optional<std::string> name, protocol, app_protocol;
  std::optional<int32_t> port;
  KNODE_FIELDS(v("name", name); v("protocol", protocol); v("port", port);
               v("appProtocol", app_protocol))
  bool operator==(const EndpointPort&) const = default;
};
struct EndpointSlice {
  static constexpr const char* kKind = "EndpointSlice";
  static constexpr const char* kApiVersion = "discovery.k8s.io/v1";
  static constexpr bool kNamespaced = true;
  static constexpr const char* kServiceNameLabel = "kubernetes.io/service-name";
  ObjectMeta metadata;
  std::string address_type;  // IPv4, IPv6, FQDN
  std::vector<Endpoint> endpoints;
  std::vector<EndpointPort> ports;
  KNODE_FIELDS(v("metadata", metadata); v("addressType", address_type);
               v("endpoints", endpoints); v("ports", ports))
  bool operator==(const EndpointSlice&) const = default;
};

// --- core/v1 Endpoints (legacy; converted to slices by endpoints_to_slices) ---
struct EndpointAddress {
  std::string ip, hostname;
  std::optional<std::string> node_name;
  Box<ObjectReference> target_ref;
  KNODE_FIELDS(v("ip", ip); v("hostname", hostname); v("nodeName", node_name);
               v("targetRef", target_ref))
  bool operator==(const EndpointAddress&) const = default;
};
struct LegacyEndpointPort {
  std::string name, protocol;
  int32_t port = 0;
  std::optional<std::string> app_protocol;
  KNODE_FIELDS(v("name", name); v("port", port); v("protocol", protocol);
               v("appProtocol", app_protocol))
  bool operator==(const LegacyEndpointPort&) const = default;
};
struct EndpointSubset {
  std::vector<EndpointAddress> addresses, not_ready_addresses;
  std::vector<LegacyEndpointPort> ports;
  KNODE_FIELDS(v("addresses", addresses); v("notReadyAddresses", not_ready_addresses);
               v("ports", ports))
  bool operator==(const EndpointSubset&) const = default;
};
struct Endpoints {
  static constexpr const char* kKind = "Endpoints";
  static constexpr const char* kApiVersion = "v1";
  static constexpr bool kNamespaced = true;
  ObjectMeta metadata;
  std::vector<EndpointSubset> subsets;
  KNODE_FIELDS(v("metadata", metadata); v("subsets", subsets))
  bool operator==(const Endpoints&) const = default;
};

}  // namespace knode::api
