#include "runtime_config.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "knode/api/field_codec.h"
#include "knode/json_get.h"
#include "labels.h"
#include "pod/env.h"
#include "pod/etc_hosts.h"
#include "pod/log_paths.h"
#include "pod/resources.h"

namespace knode::kubelet {
namespace {

using runtime::NamespaceMode;

// procMount Default, as upstream's kubelet sends for unprivileged containers.
const std::vector<std::string> kMaskedPaths = {"/proc/asound",       "/proc/acpi",        "/proc/kcore",
                                               "/proc/keys",         "/proc/latency_stats", "/proc/timer_list",
                                               "/proc/timer_stats",  "/proc/sched_debug", "/proc/scsi",
                                               "/sys/firmware",      "/sys/devices/virtual/powercap"};
const std::vector<std::string> kReadonlyPaths = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                                 "/proc/sysrq-trigger"};

runtime::Labels pod_labels(const api::Pod& pod) {
  runtime::Labels l = pod.metadata.labels;
  l[kPodUidLabel] = pod.metadata.uid;
  l[kPodNameLabel] = pod.metadata.name;
  l[kPodNamespaceLabel] = pod.metadata.namespace_;
  return l;
}

runtime::NamespaceOptions namespaces(const api::Pod& pod) {
  runtime::NamespaceOptions n;
  n.network = pod.spec.host_network ? NamespaceMode::kNode : NamespaceMode::kPod;
  n.ipc = pod.spec.host_ipc ? NamespaceMode::kNode : NamespaceMode::kPod;
  n.pid = pod.spec.host_pid                                            ? NamespaceMode::kNode
          : pod.spec.share_process_namespace.value_or(false)           ? NamespaceMode::kPod
                                                                       : NamespaceMode::kContainer;
  return n;
}

runtime::Protocol protocol(const std::string& p) {
  if (p == "UDP") return runtime::Protocol::kUDP;
  if (p == "SCTP") return runtime::Protocol::kSCTP;
  return runtime::Protocol::kTCP;
}

std::vector<std::string> split_words(const std::string& line) {
  std::istringstream is(line);
  std::vector<std::string> out;
  for (std::string w; is >> w;) out.push_back(w);
  return out;
}

// The pod's supplementalGroups and then its fsGroup, as upstream's kubelet gives both the
// sandbox and every container: files a volume hands to the fsGroup (a secret's 0440) are
// readable by a container running as another user.
std::vector<int64_t> pod_supplemental_groups(const api::PodSecurityContext& sc) {
  std::vector<int64_t> out = sc.supplemental_groups;
  if (sc.fs_group && std::find(out.begin(), out.end(), *sc.fs_group) == out.end()) out.push_back(*sc.fs_group);
  return out;
}

}  // namespace

runtime::DnsConfig pod_dns(const api::Pod& pod, const NodeSettings& node, const std::string& host) {
  runtime::DnsConfig host_dns;
  std::istringstream is(host);
  for (std::string line; std::getline(is, line);) {
    auto w = split_words(line);
    if (w.size() < 2) continue;
    if (w[0] == "nameserver") host_dns.servers.push_back(w[1]);
    if (w[0] == "search") host_dns.searches.assign(w.begin() + 1, w.end());
    if (w[0] == "options") host_dns.options.assign(w.begin() + 1, w.end());
  }
  std::string policy = pod.spec.dns_policy.empty() ? "ClusterFirst" : pod.spec.dns_policy;
  // ClusterFirst on the host network is Default, unless asked (ClusterFirstWithHostNet).
  if (policy == "ClusterFirst" && pod.spec.host_network) policy = "Default";
  // Without cluster DNS, ClusterFirst falls back to Default, as upstream does.
  if ((policy == "ClusterFirst" || policy == "ClusterFirstWithHostNet") && node.cluster_dns.empty()) policy = "Default";
  runtime::DnsConfig out;
  if (policy == "ClusterFirst" || policy == "ClusterFirstWithHostNet") {
    out.servers = node.cluster_dns;
    const std::string& d = node.cluster_domain;
    out.searches = {pod.metadata.namespace_ + ".svc." + d, "svc." + d, d};
    out.searches.insert(out.searches.end(), host_dns.searches.begin(), host_dns.searches.end());
    out.options = {"ndots:5"};
  } else if (policy == "Default") {
    out = host_dns;
  }
  if (pod.spec.dns_config) {
    const auto& c = *pod.spec.dns_config;
    out.servers.insert(out.servers.end(), c.nameservers.begin(), c.nameservers.end());
    out.searches.insert(out.searches.end(), c.searches.begin(), c.searches.end());
    for (const auto& o : c.options) out.options.push_back(o.value ? o.name + ":" + *o.value : o.name);
  }
  return out;
}

Result<runtime::PodSandboxConfig> sandbox_config(const api::Pod& pod, uint32_t attempt, const NodeSettings& node) {
  runtime::PodSandboxConfig c;
  c.metadata = {pod.metadata.name, pod.metadata.uid, pod.metadata.namespace_, attempt};
  if (!pod.spec.host_network) {
    c.hostname = pod_hostname(pod);
  }
  c.log_directory = node.pod_logs_dir + "/" + pod.metadata.namespace_ + "_" + pod.metadata.name + "_" +
                    pod.metadata.uid;
  std::ifstream resolv(node.resolv_conf);
  std::stringstream host;
  host << resolv.rdbuf();
  c.dns = pod_dns(pod, node, host.str());
  for (const auto& ctr : pod.spec.containers) {
    for (const auto& p : ctr.ports) {
      if (p.host_port == 0) continue;
      c.port_mappings.push_back({protocol(p.protocol), p.container_port, p.host_port, p.host_ip});
    }
  }
  c.labels = pod_labels(pod);
  c.annotations = pod.metadata.annotations;
  std::string root = node.cgroup_root == "/" ? "" : node.cgroup_root;
  c.cgroup_parent = root + pod_cgroup_parent(pod, node.cgroup_driver);
  if (pod.spec.security_context) {
    const auto& sc = *pod.spec.security_context;
    for (const auto& s : sc.sysctls) c.sysctls[s.name] = s.value;
    c.run_as_user = sc.run_as_user;
    c.run_as_group = sc.run_as_group;
    c.supplemental_groups = pod_supplemental_groups(sc);
  }
  c.namespaces = namespaces(pod);
  for (const auto& ctr : pod.spec.containers) {
    if (ctr.security_context && ctr.security_context->privileged.value_or(false)) c.privileged = true;
  }
  c.seccomp = runtime::SecurityProfile{runtime::SecurityProfile::Type::kUnconfined, ""};
  return c;
}

runtime::ContainerConfig container_config(const api::Pod& pod, const api::Container& c, uint32_t attempt,
                                          const std::string& image, const std::vector<runtime::KeyValue>& env,
                                          const std::vector<runtime::Mount>& mounts, const NodeSettings& node) {
  runtime::ContainerConfig out;
  out.metadata = {c.name, attempt};
  out.image.image = image;
  CommandLine cmd = expand_command(c, env);
  out.command = std::move(cmd.command);
  out.args = std::move(cmd.args);
  out.working_dir = c.working_dir;
  out.envs = env;
  out.mounts = mounts;
  out.labels = {{kPodUidLabel, pod.metadata.uid},
                {kPodNameLabel, pod.metadata.name},
                {kPodNamespaceLabel, pod.metadata.namespace_},
                {kContainerNameLabel, c.name}};
  out.annotations = {{kContainerHashAnnotation, container_hash(c)},
                     {kContainerHashWithoutResourcesAnnotation, container_hash_without_resources(c)},
                     {kContainerResourcesAnnotation, encode_resources(c.resources)},
                     {kRestartCountAnnotation, std::to_string(attempt)},
                     {kPodTerminationGracePeriodAnnotation, std::to_string(termination_grace_seconds(pod))}};
  out.log_path = container_log_path(c.name, static_cast<int32_t>(attempt));
  out.stdin_ = c.stdin_;
  out.tty = c.tty;
  out.resources = linux_resources(pod, c, node.memory_capacity);
  auto& sec = out.security;
  const auto* psc = pod.spec.security_context ? &*pod.spec.security_context : nullptr;
  const auto* csc = c.security_context ? &*c.security_context : nullptr;
  sec.privileged = csc && csc->privileged.value_or(false);
  if (csc && csc->capabilities) {
    sec.add_capabilities = csc->capabilities->add;
    sec.drop_capabilities = csc->capabilities->drop;
  }
  sec.run_as_user = csc && csc->run_as_user ? csc->run_as_user : (psc ? psc->run_as_user : std::nullopt);
  sec.run_as_group = csc && csc->run_as_group ? csc->run_as_group : (psc ? psc->run_as_group : std::nullopt);
  if (psc) sec.supplemental_groups = pod_supplemental_groups(*psc);
  sec.readonly_rootfs = csc && csc->read_only_root_filesystem.value_or(false);
  sec.no_new_privs = csc && csc->allow_privilege_escalation && !*csc->allow_privilege_escalation;
  sec.namespaces = namespaces(pod);
  sec.seccomp = runtime::SecurityProfile{runtime::SecurityProfile::Type::kUnconfined, ""};
  if (!sec.privileged) {
    sec.masked_paths = kMaskedPaths;
    sec.readonly_paths = kReadonlyPaths;
  }
  return out;
}

std::string container_hash_without_resources(const api::Container& c) {
  api::Container bare = c;
  bare.resources = {};
  bare.resize_policy.clear();
  return container_hash(bare);
}

std::string encode_resources(const api::ResourceRequirements& r) {
  auto encoded = api::detail::encode(r);
  return encoded ? jget::dump(*encoded) : "{}";
}

std::optional<api::ResourceRequirements> decode_resources(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  api::ResourceRequirements r;
  if (!api::decode_fields(j, r).ok()) return std::nullopt;
  return r;
}

std::string container_hash(const api::Container& c) {
  // FNV-1a over the container's canonical JSON: any change of the spec changes it.
  auto encoded = api::detail::encode(c);
  std::string json = encoded ? jget::dump(*encoded) : "{}";
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : json) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

int64_t termination_grace_seconds(const api::Pod& pod) {
  // A deletion through the API sets its own grace period (kubectl delete --grace-period).
  if (pod.metadata.deletion_grace_period_seconds) return std::max<int64_t>(*pod.metadata.deletion_grace_period_seconds, 1);
  return std::max<int64_t>(pod.spec.termination_grace_period_seconds.value_or(30), 1);
}

}  // namespace knode::kubelet
