// core/v1 Node, ConfigMap, Secret, Namespace.
#pragma once

#include "knode/api/meta.h"
#include "knode/api/pod.h"

namespace knode::api {

struct Taint {
  std::string key, value, effect;
  Time time_added;
  KNODE_FIELDS(v("key", key); v("value", value); v("effect", effect); v("timeAdded", time_added))
  bool operator==(const Taint&) const = default;
};
struct NodeSpec {
  std::string pod_cidr, provider_id;
  std::vector<std::string> pod_cidrs;
  bool unschedulable = false;
  std::vector<Taint> taints;
  KNODE_FIELDS(v("podCIDR", pod_cidr); v("podCIDRs", pod_cidrs); v("providerID", provider_id);
               v("unschedulable", unschedulable); v("taints", taints))
  bool operator==(const NodeSpec&) const = default;
};
struct NodeCondition {
  std::string type, status, reason, message;
  Time last_heartbeat_time, last_transition_time;
  KNODE_FIELDS(v("type", type); v("status", status); v("lastHeartbeatTime", last_heartbeat_time);
               v("lastTransitionTime", last_transition_time); v("reason", reason);
               v("message", message))
  bool operator==(const NodeCondition&) const = default;
};
struct NodeAddress {
  std::string type, address;
  KNODE_FIELDS(v("type", type); v("address", address))
  bool operator==(const NodeAddress&) const = default;
};
struct NodeSystemInfo {
  std::string machine_id, system_uuid, boot_id, kernel_version, os_image,
      container_runtime_version, kubelet_version, kube_proxy_version, operating_system,
      architecture;
  KNODE_FIELDS(v("machineID", machine_id); v("systemUUID", system_uuid); v("bootID", boot_id);
               v("kernelVersion", kernel_version); v("osImage", os_image);
               v("containerRuntimeVersion", container_runtime_version);
               v("kubeletVersion", kubelet_version); v("kubeProxyVersion", kube_proxy_version);
               v("operatingSystem", operating_system); v("architecture", architecture))
  bool operator==(const NodeSystemInfo&) const = default;
};
struct DaemonEndpoint {
  int32_t port = 0;
  KNODE_FIELDS(v("Port", port))
  bool operator==(const DaemonEndpoint&) const = default;
};
struct NodeDaemonEndpoints {
  DaemonEndpoint kubelet_endpoint;
  KNODE_FIELDS(v("kubeletEndpoint", kubelet_endpoint))
  bool operator==(const NodeDaemonEndpoints&) const = default;
};
struct NodeStatus {
  ResourceList capacity, allocatable;
  std::string phase;
  std::vector<NodeCondition> conditions;
  std::vector<NodeAddress> addresses;
  NodeDaemonEndpoints daemon_endpoints;
  NodeSystemInfo node_info;
  KNODE_FIELDS(v("capacity", capacity); v("allocatable", allocatable); v("phase", phase);
               v("conditions", conditions); v("addresses", addresses);
               v("daemonEndpoints", daemon_endpoints); v("nodeInfo", node_info))
  bool operator==(const NodeStatus&) const = default;
};
struct Node {
  static constexpr const char* kKind = "Node";
  static constexpr const char* kApiVersion = "v1";
  static constexpr bool kNamespaced = false;
  ObjectMeta metadata;
  NodeSpec spec;
  NodeStatus status;
  KNODE_FIELDS(v("metadata", metadata); v("spec", spec); v("status", status))
  bool operator==(const Node&) const = default;
};

struct ConfigMap {
  static constexpr const char* kKind = "ConfigMap";
  static constexpr const char* kApiVersion = "v1";
  static constexpr bool kNamespaced = true;
  ObjectMeta metadata;
  StringMap data;
  StringMap binary_data;  // base64, as on the wire
  std::optional<bool> immutable;
  KNODE_FIELDS(v("metadata", metadata); v("data", data); v("binaryData", binary_data);
               v("immutable", immutable))
  bool operator==(const ConfigMap&) const = default;
};

struct Secret {
  static constexpr const char* kKind = "Secret";
  static constexpr const char* kApiVersion = "v1";
  static constexpr bool kNamespaced = true;
  ObjectMeta metadata;
  std::string type;  // defaulted to Opaque
  StringMap data;         // base64, as on the wire
  StringMap string_data;  // write-only convenience; merged into data on decode
  std::optional<bool> immutable;
  KNODE_FIELDS(v("metadata", metadata); v("type", type); v("data", data);
               v("stringData", string_data); v("immutable", immutable))
  bool operator==(const Secret&) const = default;
};

struct NamespaceSpec {
  std::vector<std::string> finalizers;
  KNODE_FIELDS(v("finalizers", finalizers))
  bool operator==(const NamespaceSpec&) const = default;
};
struct NamespaceStatus {
  std::string phase;
  KNODE_FIELDS(v("phase", phase))
  bool operator==(const NamespaceStatus&) const = default;
};
struct Namespace {
  static constexpr const char* kKind = "Namespace";
  static constexpr const char* kApiVersion = "v1";
  static constexpr bool kNamespaced = false;
  ObjectMeta metadata;
  NamespaceSpec spec;
  NamespaceStatus status;
  KNODE_FIELDS(v("metadata", metadata); v("spec", spec); v("status", status))
  bool operator==(const Namespace&) const = default;
};

}  // namespace knode::api
