// Resources as the kubelet turns them into cgroup settings: the pod's QoS class, a
// container's CRI LinuxResources (CPU shares and CFS quota, memory limit, oom_score_adj)
// and the pod's cgroup parent for either cgroup driver.
#pragma once

#include <cstdint>
#include <string>

#include "knode/api/pod.h"
#include "knode/runtime.h"

namespace knode::kubelet {

enum class QosClass { kGuaranteed, kBurstable, kBestEffort };
const char* to_string(QosClass q);  // "Guaranteed", "Burstable", "BestEffort"

// Upstream's cgroup constants (pkg/kubelet/cm).
inline constexpr int64_t kMinShares = 2;
inline constexpr int64_t kMaxShares = 262144;
inline constexpr int64_t kSharesPerCpu = 1024;
inline constexpr int64_t kCfsPeriodUs = 100000;
inline constexpr int64_t kMinCfsQuotaUs = 1000;
inline constexpr int64_t kGuaranteedOomScoreAdj = -997;
inline constexpr int64_t kBestEffortOomScoreAdj = 1000;

// The class from the spec alone (ComputePodQOS): every container, init ones included.
QosClass compute_qos_class(const api::Pod& pod);
// status.qosClass when set (it never changes once reported), else computed.
QosClass qos_class(const api::Pod& pod);

// The container's requests as the API server defaults them: a resource with a limit and
// no request requests its limit.
api::ResourceList effective_requests(const api::Container& c);

int64_t milli_cpu_to_shares(int64_t milli_cpu);
// 0 for no limit; otherwise at least kMinCfsQuotaUs.
int64_t milli_cpu_to_quota(int64_t milli_cpu, int64_t period_us);

// Static and mirror pods, or pods at system-critical priority, whose priority class is
// system-node-critical.
bool is_node_critical(const api::Pod& pod);

// `memory_capacity` is the machine's memory in bytes.
int64_t oom_score_adj(const api::Pod& pod, const api::Container& c, int64_t memory_capacity);

runtime::LinuxResources linux_resources(const api::Pod& pod, const api::Container& c,
                                        int64_t memory_capacity);

// The pod's cgroup, as the kubelet hands it to the runtime: "/kubepods/burstable/pod<uid>"
// with cgroupfs, "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<u_i_d>.slice"
// with systemd.
std::string pod_cgroup_parent(const api::Pod& pod, runtime::CgroupDriver driver);

}  // namespace knode::kubelet
