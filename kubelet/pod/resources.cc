#include "pod/resources.h"

#include <algorithm>
#include <map>

#include "pod/static_pod.h"

namespace knode::kubelet {
namespace {

constexpr char kSystemNodeCritical[] = "system-node-critical";
constexpr int32_t kSystemCriticalPriority = 2000000000;

bool qos_resource(const std::string& name) { return name == "cpu" || name == "memory"; }

int64_t milli_of(const api::ResourceList& list, const char* name) {
  auto it = list.find(name);
  return it == list.end() ? 0 : it->second.milli_value();
}

int64_t value_of(const api::ResourceList& list, const char* name) {
  auto it = list.find(name);
  return it == list.end() ? 0 : it->second.value();
}

// Sums of the positive cpu/memory quantities over all containers, in milli-units, and
// whether every container limits both.
struct QosTotals {
  std::map<std::string, int64_t> requests, limits;
  bool every_container_limits_both = true;
};

void add_container(const api::Container& c, QosTotals& t) {
  for (const auto& [name, q] : effective_requests(c)) {
    if (qos_resource(name) && q.milli_value() > 0) t.requests[name] += q.milli_value();
  }
  int limited = 0;
  for (const auto& [name, q] : c.resources.limits) {
    if (!qos_resource(name) || q.milli_value() <= 0) continue;
    t.limits[name] += q.milli_value();
    ++limited;
  }
  if (limited < 2) t.every_container_limits_both = false;
}

bool is_sidecar(const api::Pod& pod, const api::Container& c) {
  if (c.restart_policy.value_or("") != "Always") return false;
  return std::any_of(pod.spec.init_containers.begin(), pod.spec.init_containers.end(),
                     [&](const api::Container& i) { return i.name == c.name; });
}

int64_t min_regular_memory_request(const api::Pod& pod) {
  int64_t min = -1;
  for (const auto& c : pod.spec.containers) {
    int64_t m = value_of(effective_requests(c), "memory");
    if (min < 0 || m < min) min = m;
  }
  return std::max<int64_t>(min, 0);
}

int64_t burstable_score(int64_t memory_request, int64_t memory_capacity) {
  if (memory_capacity <= 0) return kBestEffortOomScoreAdj;
  __extension__ __int128 scaled = static_cast<__int128>(1000) * memory_request;
  return 1000 - static_cast<int64_t>(scaled / memory_capacity);
}

// systemd's unit path of a slice: "a-b.slice" -> "/a.slice/a-b.slice".
std::string expand_slice(const std::vector<std::string>& parts) {
  std::string path, prefix;
  for (const auto& part : parts) {
    path += "/" + prefix + part + ".slice";
    prefix += part + "-";
  }
  return path;
}

}  // namespace

const char* to_string(QosClass q) {
  switch (q) {
    case QosClass::kGuaranteed:
      return "Guaranteed";
    case QosClass::kBurstable:
      return "Burstable";
    case QosClass::kBestEffort:
      return "BestEffort";
  }
  return "";
}

api::ResourceList effective_requests(const api::Container& c) {
  api::ResourceList out = c.resources.requests;
  for (const auto& [name, q] : c.resources.limits) out.emplace(name, q);
  return out;
}

QosClass compute_qos_class(const api::Pod& pod) {
  QosTotals t;
  for (const auto& c : pod.spec.containers) add_container(c, t);
  for (const auto& c : pod.spec.init_containers) add_container(c, t);
  if (t.requests.empty() && t.limits.empty()) return QosClass::kBestEffort;
  bool guaranteed = t.every_container_limits_both;
  for (const auto& [name, total] : t.requests) {
    auto it = t.limits.find(name);
    if (it == t.limits.end() || it->second != total) guaranteed = false;
  }
  return guaranteed && t.requests.size() == t.limits.size() ? QosClass::kGuaranteed
                                                            : QosClass::kBurstable;
}

QosClass qos_class(const api::Pod& pod) {
  const std::string& s = pod.status.qos_class;
  if (s == "Guaranteed") return QosClass::kGuaranteed;
  if (s == "Burstable") return QosClass::kBurstable;
  if (s == "BestEffort") return QosClass::kBestEffort;
  return compute_qos_class(pod);
}

int64_t milli_cpu_to_shares(int64_t milli_cpu) {
  // Zero means "unset" to Docker, which the kernel would read as 1024; 2 is what the
  // kernel gives a group that asked for nothing.
  if (milli_cpu == 0) return kMinShares;
  int64_t shares = milli_cpu * kSharesPerCpu / 1000;
  return std::clamp(shares, kMinShares, kMaxShares);
}

int64_t milli_cpu_to_quota(int64_t milli_cpu, int64_t period_us) {
  if (milli_cpu == 0) return 0;
  return std::max(milli_cpu * period_us / 1000, kMinCfsQuotaUs);
}

bool is_node_critical(const api::Pod& pod) {
  bool critical = is_static_pod(pod) || is_mirror_pod(pod) ||
                  pod.spec.priority.value_or(0) >= kSystemCriticalPriority;
  return critical && pod.spec.priority_class_name == kSystemNodeCritical;
}

int64_t oom_score_adj(const api::Pod& pod, const api::Container& c, int64_t memory_capacity) {
  if (is_node_critical(pod)) return kGuaranteedOomScoreAdj;
  switch (qos_class(pod)) {
    case QosClass::kGuaranteed:
      return kGuaranteedOomScoreAdj;
    case QosClass::kBestEffort:
      return kBestEffortOomScoreAdj;
    case QosClass::kBurstable:
      break;
  }
  // A burstable container using more than it requested should be killed first, so the
  // score falls as the share of memory it requested grows.
  int64_t adj = burstable_score(value_of(effective_requests(c), "memory"), memory_capacity);
  // A sidecar must not outlive the regular containers it serves.
  if (is_sidecar(pod, c)) {
    adj = std::min(adj, burstable_score(min_regular_memory_request(pod), memory_capacity));
  }
  // Keep burstable strictly between guaranteed (-997 -> 3 once scaled) and best effort.
  if (adj < 1000 + kGuaranteedOomScoreAdj) return 1000 + kGuaranteedOomScoreAdj;
  if (adj == kBestEffortOomScoreAdj) return adj - 1;
  return adj;
}

runtime::LinuxResources linux_resources(const api::Pod& pod, const api::Container& c,
                                        int64_t memory_capacity) {
  runtime::LinuxResources r;
  int64_t cpu_request = milli_of(c.resources.requests, "cpu");
  int64_t cpu_limit = milli_of(c.resources.limits, "cpu");
  // The API server defaults a missing request to the limit; pods from before that
  // defaulting get the same treatment here.
  r.cpu_shares = milli_cpu_to_shares(cpu_request == 0 && cpu_limit != 0 ? cpu_limit : cpu_request);
  r.memory_limit_in_bytes = value_of(c.resources.limits, "memory");
  r.cpu_period = kCfsPeriodUs;
  r.cpu_quota = milli_cpu_to_quota(cpu_limit, kCfsPeriodUs);
  r.oom_score_adj = oom_score_adj(pod, c, memory_capacity);
  return r;
}

std::string pod_cgroup_parent(const api::Pod& pod, runtime::CgroupDriver driver) {
  std::vector<std::string> parts = {"kubepods"};
  switch (qos_class(pod)) {
    case QosClass::kBurstable:
      parts.push_back("burstable");
      break;
    case QosClass::kBestEffort:
      parts.push_back("besteffort");
      break;
    case QosClass::kGuaranteed:
      break;  // guaranteed pods sit directly under kubepods
  }
  parts.push_back("pod" + pod.metadata.uid);
  if (driver == runtime::CgroupDriver::kCgroupfs) {
    std::string path;
    for (const auto& p : parts) path += "/" + p;
    return path;
  }
  // systemd reads '-' as the slice hierarchy, so it cannot appear inside a part.
  for (auto& p : parts) std::replace(p.begin(), p.end(), '-', '_');
  return expand_slice(parts);
}

}  // namespace knode::kubelet
