#include "pod/resources.h"

#include <gtest/gtest.h>

#include "kubelet/pod/decode.h"
#include "pod/static_pod.h"

using namespace knode;
using namespace knode::kubelet;
using knode::kubelet::testing::decode;

namespace {

constexpr int64_t kGi = 1LL << 30;

api::Pod pod_with(const std::string& containers, const std::string& init = "") {
  std::string yaml = R"(apiVersion: v1
kind: Pod
metadata: {name: p, namespace: default, uid: 3f1a9c2e-7b4d-4e21-9a0b-5c6d7e8f9a01}
spec:
  containers:
)" + containers;
  if (!init.empty()) yaml += "  initContainers:\n" + init;
  return decode<api::Pod>(yaml);
}

std::string container(const std::string& name, const std::string& resources) {
  return "  - name: " + name + "\n    image: busybox:1.36\n    resources: " + resources + "\n";
}

}  // namespace

TEST(QosClass, NothingRequestedIsBestEffort) {
  EXPECT_EQ(compute_qos_class(pod_with(container("a", "{}"))), QosClass::kBestEffort);
  // Zero quantities and resources QoS ignores do not count.
  EXPECT_EQ(
      compute_qos_class(pod_with(container("a", "{requests: {cpu: '0', ephemeral-storage: 1Gi}}"))),
      QosClass::kBestEffort);
}

TEST(QosClass, LimitsOnlyIsGuaranteedBecauseRequestsDefaultToThem) {
  auto pod = pod_with(container("a", "{limits: {cpu: 500m, memory: 128Mi}}"));
  EXPECT_EQ(compute_qos_class(pod), QosClass::kGuaranteed);
  EXPECT_EQ(to_string(compute_qos_class(pod)), std::string("Guaranteed"));
}

TEST(QosClass, EveryContainerIncludingInitMustMatch) {
  std::string g = "{requests: {cpu: 1, memory: 1Gi}, limits: {cpu: 1, memory: 1Gi}}";
  EXPECT_EQ(compute_qos_class(pod_with(container("a", g) + container("b", g), container("i", g))),
            QosClass::kGuaranteed);
  // An init container without limits makes the pod burstable.
  EXPECT_EQ(
      compute_qos_class(pod_with(container("a", g), container("i", "{requests: {cpu: 100m}}"))),
      QosClass::kBurstable);
  // Requests below limits.
  EXPECT_EQ(compute_qos_class(pod_with(container(
                "a", "{requests: {cpu: 500m, memory: 1Gi}, limits: {cpu: 1, memory: 1Gi}}"))),
            QosClass::kBurstable);
  // A memory limit alone.
  EXPECT_EQ(compute_qos_class(pod_with(container("a", "{limits: {memory: 1Gi}}"))),
            QosClass::kBurstable);
}

TEST(QosClass, ReportedClassIsKept) {
  auto pod = pod_with(container("a", "{}"));
  pod.status.qos_class = "Burstable";
  EXPECT_EQ(qos_class(pod), QosClass::kBurstable);
  EXPECT_EQ(compute_qos_class(pod), QosClass::kBestEffort);
}

TEST(CpuShares, MilliCpuToSharesWithKernelBounds) {
  EXPECT_EQ(milli_cpu_to_shares(0), 2);
  EXPECT_EQ(milli_cpu_to_shares(1), 2);
  EXPECT_EQ(milli_cpu_to_shares(250), 256);
  EXPECT_EQ(milli_cpu_to_shares(1000), 1024);
  EXPECT_EQ(milli_cpu_to_shares(256000), 262144);
  EXPECT_EQ(milli_cpu_to_shares(300000), 262144);
}

TEST(CpuQuota, MilliCpuToQuotaWithMinimum) {
  EXPECT_EQ(milli_cpu_to_quota(0, 100000), 0);
  EXPECT_EQ(milli_cpu_to_quota(5, 100000), 1000);
  EXPECT_EQ(milli_cpu_to_quota(250, 100000), 25000);
  EXPECT_EQ(milli_cpu_to_quota(1500, 100000), 150000);
}

TEST(LinuxResources, BurstableContainer) {
  auto pod = pod_with(
      container("a", "{requests: {cpu: 250m, memory: 1Gi}, limits: {cpu: 500m, memory: 2Gi}}"));
  auto r = linux_resources(pod, pod.spec.containers[0], 16 * kGi);
  EXPECT_EQ(r.cpu_shares, 256);
  EXPECT_EQ(r.cpu_period, 100000);
  EXPECT_EQ(r.cpu_quota, 50000);
  EXPECT_EQ(r.memory_limit_in_bytes, 2 * kGi);
  EXPECT_EQ(r.oom_score_adj, 938);  // 1000 - 1000 * 1Gi / 16Gi
}

TEST(LinuxResources, NoRequestUsesMinimumSharesAndNoQuota) {
  auto pod = pod_with(container("a", "{}"));
  auto r = linux_resources(pod, pod.spec.containers[0], 16 * kGi);
  EXPECT_EQ(r.cpu_shares, 2);
  EXPECT_EQ(r.cpu_quota, 0);
  EXPECT_EQ(r.cpu_period, 100000);
  EXPECT_EQ(r.memory_limit_in_bytes, 0);
  EXPECT_EQ(r.oom_score_adj, 1000);
}

TEST(LinuxResources, LimitWithoutRequestGivesSharesOfTheLimit) {
  api::Pod pod = pod_with(container("a", "{limits: {cpu: 2}}"));
  EXPECT_EQ(linux_resources(pod, pod.spec.containers[0], 16 * kGi).cpu_shares, 2048);
}

TEST(OomScoreAdj, ByQosClass) {
  auto guaranteed = pod_with(container("a", "{limits: {cpu: 1, memory: 1Gi}}"));
  EXPECT_EQ(oom_score_adj(guaranteed, guaranteed.spec.containers[0], 16 * kGi), -997);
  auto best_effort = pod_with(container("a", "{}"));
  EXPECT_EQ(oom_score_adj(best_effort, best_effort.spec.containers[0], 16 * kGi), 1000);
}

TEST(OomScoreAdj, BurstableIsClampedBetweenGuaranteedAndBestEffort) {
  // No memory request: 1000, one below best effort.
  auto cpu_only = pod_with(container("a", "{requests: {cpu: 100m}}"));
  EXPECT_EQ(oom_score_adj(cpu_only, cpu_only.spec.containers[0], 16 * kGi), 999);
  // Requesting the whole machine would be 0: kept above guaranteed's 3.
  auto huge = pod_with(container("a", "{requests: {memory: 16Gi}}"));
  EXPECT_EQ(oom_score_adj(huge, huge.spec.containers[0], 16 * kGi), 3);
  auto most = pod_with(container("a", "{requests: {memory: 15Gi}}"));
  EXPECT_EQ(oom_score_adj(most, most.spec.containers[0], 16 * kGi), 63);  // 1000 - 937
}

TEST(OomScoreAdj, SidecarIsNoSaferThanTheLeastProtectedRegularContainer) {
  auto pod = pod_with(container("app", "{requests: {memory: 1Gi}}") +
                          container("tiny", "{requests: {memory: 4Gi}}"),
                      "  - name: proxy\n    image: envoy:1\n    restartPolicy: Always\n    "
                      "resources: {requests: {cpu: 10m}}\n");
  const auto& sidecar = pod.spec.init_containers[0];
  // Its own request gives 999; the smallest regular request (1Gi) gives 938.
  EXPECT_EQ(oom_score_adj(pod, sidecar, 16 * kGi), 938);
  EXPECT_EQ(oom_score_adj(pod, pod.spec.containers[1], 16 * kGi), 750);
}

TEST(OomScoreAdj, NodeCriticalPodsAreProtected) {
  auto pod = pod_with(container("a", "{}"));
  pod.spec.priority_class_name = "system-node-critical";
  // Critical by class name alone is not enough: it must also be static, mirror or at
  // system-critical priority.
  EXPECT_FALSE(is_node_critical(pod));
  EXPECT_EQ(oom_score_adj(pod, pod.spec.containers[0], 16 * kGi), 1000);
  pod.metadata.annotations[kConfigSourceAnnotation] = "file";
  EXPECT_TRUE(is_node_critical(pod));
  EXPECT_EQ(oom_score_adj(pod, pod.spec.containers[0], 16 * kGi), -997);
  pod.metadata.annotations.clear();
  pod.spec.priority = 2000001000;
  EXPECT_TRUE(is_node_critical(pod));
}

TEST(CgroupParent, CgroupfsByQosClass) {
  const std::string uid = "3f1a9c2e-7b4d-4e21-9a0b-5c6d7e8f9a01";
  auto guaranteed = pod_with(container("a", "{limits: {cpu: 1, memory: 1Gi}}"));
  auto burstable = pod_with(container("a", "{requests: {cpu: 1}}"));
  auto best_effort = pod_with(container("a", "{}"));
  EXPECT_EQ(pod_cgroup_parent(guaranteed, runtime::CgroupDriver::kCgroupfs), "/kubepods/pod" + uid);
  EXPECT_EQ(pod_cgroup_parent(burstable, runtime::CgroupDriver::kCgroupfs),
            "/kubepods/burstable/pod" + uid);
  EXPECT_EQ(pod_cgroup_parent(best_effort, runtime::CgroupDriver::kCgroupfs),
            "/kubepods/besteffort/pod" + uid);
}

TEST(CgroupParent, SystemdSlicesWithDashesEscaped) {
  const std::string u = "3f1a9c2e_7b4d_4e21_9a0b_5c6d7e8f9a01";
  auto burstable = pod_with(container("a", "{requests: {cpu: 1}}"));
  EXPECT_EQ(pod_cgroup_parent(burstable, runtime::CgroupDriver::kSystemd),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + u + ".slice");
  auto best_effort = pod_with(container("a", "{}"));
  EXPECT_EQ(pod_cgroup_parent(best_effort, runtime::CgroupDriver::kSystemd),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + u + ".slice");
  auto guaranteed = pod_with(container("a", "{limits: {cpu: 1, memory: 1Gi}}"));
  EXPECT_EQ(pod_cgroup_parent(guaranteed, runtime::CgroupDriver::kSystemd),
            "/kubepods.slice/kubepods-pod" + u + ".slice");
}
