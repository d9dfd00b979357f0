// The runtime's view of a pod, as the upstream kubelet generates it
// (kuberuntime_sandbox.go, kuberuntime_container.go): the sandbox config (hostname, DNS,
// port mappings, log directory, cgroup parent, namespaces, labels) and each container's
// config (command, env, mounts, resources, security, labels that let a restarted knode
// find its pods). Pure: the caller resolves the environment and the mounts.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "knode/api/pod.h"
#include "knode/runtime.h"

namespace knode::kubelet {

// What the node tells every pod.
struct NodeSettings {
  std::string node_name;
  std::vector<std::string> cluster_dns;  // --cluster-dns
  std::string cluster_domain = "cluster.local";
  std::string resolv_conf = "/etc/resolv.conf";  // what dnsPolicy Default copies
  runtime::CgroupDriver cgroup_driver = runtime::CgroupDriver::kCgroupfs;
  std::string cgroup_root = "/";  // --cgroup-root: pods live under <root>/kubepods
  std::string pod_logs_dir = "/var/log/pods";
  int64_t memory_capacity = 0;  // bytes, for oom_score_adj
  std::vector<std::string> host_ips;  // the node's IPs, primary first (status.hostIPs)
};

// The sandbox config of `pod`; an error names the field knode cannot honour.
Result<runtime::PodSandboxConfig> sandbox_config(const api::Pod& pod, uint32_t attempt, const NodeSettings& node);

// The pod's DNS as dnsPolicy, dnsConfig and the node's settings make it; `host` is the
// node's resolv.conf contents.
runtime::DnsConfig pod_dns(const api::Pod& pod, const NodeSettings& node, const std::string& host_resolv_conf);

// A container's config: `image` as resolved, `env` its final environment, `mounts` its
// volume mounts.
runtime::ContainerConfig container_config(const api::Pod& pod, const api::Container& c, uint32_t attempt,
                                          const std::string& image, const std::vector<runtime::KeyValue>& env,
                                          const std::vector<runtime::Mount>& mounts, const NodeSettings& node);

// The hash that tells whether a running container still matches its spec.
std::string container_hash(const api::Container& c);
// The same without resources and resizePolicy: what must match for a resize in place.
std::string container_hash_without_resources(const api::Container& c);
// The resources a container carries in kContainerResourcesAnnotation, and back.
std::string encode_resources(const api::ResourceRequirements& r);
std::optional<api::ResourceRequirements> decode_resources(const std::string& json);

// The grace period of a pod's termination: the spec's, 30 s by default, at least 1 s
// (upstream's minimum when stopping containers is 2 s).
int64_t termination_grace_seconds(const api::Pod& pod);

}  // namespace knode::kubelet
